"""Doodle queries: Quick, Draw! ``test`` doodles searched against a trained run's gallery.

The book's question (chapter 5, "A doodle, not a sketch"): does a quick doodle find photos of
its category? Each doodle is prepared as the model prepares any sketch (28 x 28 bitmap, scaled
to the model's size, strokes as the model's ``data.strokes`` says) and scored against the run's
own gallery (all sketchy-mini photos for the book's runs) with the book's metrics: relevant =
the photos of the doodle's Sketchy category. Classes used in adaptation and classes held out
of it are scored apart (``doodles-adapted``, ``doodles-held-out``), since a model tuned on five
classes must be judged on the ones it never saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from semi3lib.data.experiment import ExperimentData, with_overrides
from semi3lib.data.quickdraw import QuickDraw, QuickDrawError, doodle_image, load_quickdraw, parse_classes
from semi3lib.data.transforms import sketch_to_tensor
from semi3lib.engine.embedding import EVAL_BATCH_SIZE
from semi3lib.engine.hardware import machine_info
from semi3lib.engine.metrics import retrieval_metrics
from semi3lib.engine.records import RunRecord

GROUPS = ("doodles-adapted", "doodles-held-out")
SHOWCASE_TOP = 5


@dataclass
class DoodleQueries:
    """Embedded doodles: one row each, with its class, its Sketchy label and its row in the class file."""

    embeddings: np.ndarray  # (N, D) float32
    labels: np.ndarray  # (N,) int64, labels of the experiment's categories
    classes: list[str]
    rows: list[int]


@torch.no_grad()
def embed_doodles(model: torch.nn.Module, image_size: int, strokes: str, quickdraw: QuickDraw,
                  data: ExperimentData, part: str = "test", per_class: int | None = None,
                  device: torch.device | str = "cpu", progress: bool = False) -> DoodleQueries:
    """Embed the doodles of every class whose Sketchy category the experiment has."""
    known = set(data.index.categories)
    embeds, labels, classes, rows = [], [], [], []
    start = quickdraw.parts[part][0]
    for cls in quickdraw.classes:
        category = quickdraw.categories[cls]
        if category not in known:
            raise QuickDrawError(f"Quick, Draw! class {cls!r} is Sketchy's {category!r}, which this experiment lacks")
        bitmaps = quickdraw.bitmaps(cls, part, per_class)
        for first in tqdm(range(0, len(bitmaps), EVAL_BATCH_SIZE), desc=f"doodles {cls}", disable=not progress,
                          leave=False):
            batch = torch.stack([sketch_to_tensor(doodle_image(b), image_size, strokes)
                                 for b in bitmaps[first:first + EVAL_BATCH_SIZE]])
            embeds.append(model.embed_sketch(batch.to(device)).float().cpu().numpy())
        labels += [data.index.label_of(category)] * len(bitmaps)
        classes += [cls] * len(bitmaps)
        rows += list(range(start, start + len(bitmaps)))
    return DoodleQueries(np.concatenate(embeds), np.asarray(labels, dtype=np.int64), classes, rows)


def doodle_metrics(doodles: DoodleQueries, gallery: np.ndarray, gallery_labels: np.ndarray,
                   adapted: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The book's metrics of the adapted classes' doodles and of the held-out classes' doodles
    (a group without a class is left out), each with its classes named."""
    out: dict[str, dict[str, Any]] = {}
    in_adapted = np.array([c in set(adapted) for c in doodles.classes])
    for group, mask in zip(GROUPS, (in_adapted, ~in_adapted)):
        if not mask.any():
            continue
        metrics: dict[str, Any] = retrieval_metrics(doodles.embeddings[mask], doodles.labels[mask], gallery,
                                                    gallery_labels)
        metrics["classes"] = ",".join(sorted({c for c, m in zip(doodles.classes, mask) if m}))
        out[group] = metrics
    return out


def showcase(doodles: DoodleQueries, gallery: np.ndarray, gallery_labels: np.ndarray,
             gallery_paths: Sequence[str], per_class: int = 1, top: int = SHOWCASE_TOP) -> list[dict[str, Any]]:
    """The top photos of the first ``per_class`` doodles of each class: what the book shows
    before and after adaptation (photo paths relative to the dataset, hits marked)."""
    picked: list[int] = []
    for cls in sorted(set(doodles.classes)):
        picked += [i for i, c in enumerate(doodles.classes) if c == cls][:per_class]
    scores = doodles.embeddings[picked] @ gallery.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    return [{"class": doodles.classes[i], "row": doodles.rows[i],
             "photos": [gallery_paths[j] for j in order[n]],
             "hits": [bool(gallery_labels[j] == doodles.labels[i]) for j in order[n]],
             "scores": [round(float(scores[n, j]), 4) for j in order[n]]}
            for n, i in enumerate(picked)]


def score_doodles(checkpoint: str | Path, adapted: Sequence[str] | None = None, strokes: str | None = None,
                  quickdraw_root: str | Path | None = None, per_class: int | None = None,
                  device: torch.device | str = "cpu", progress: bool = False) -> RunRecord:
    """A run record of a checkpoint's doodle search: its Sketchy query metrics (``query``, from
    the run's embedding cache when there) and the doodle groups' (see :func:`doodle_metrics`),
    with the top photos of one doodle a class (``examples``). ``adapted`` defaults to the
    classes the checkpoint was adapted on; ``strokes`` overrides how its queries are prepared
    (the book's model scored with normalised strokes, without training for them)."""
    from semi3lib.engine.evaluate import embed_split, load_trained, score_split

    started = time.perf_counter()
    model, cfg, ckpt, data = load_trained(checkpoint, device)
    quickdraw = load_quickdraw(quickdraw_root or cfg.data.doodle_root)
    if adapted is None:
        adapted = parse_classes(cfg.data.doodle_adapt_classes, quickdraw.classes)
    else:
        parse_classes(",".join(adapted), quickdraw.classes)
    if strokes is not None and strokes != cfg.data.strokes:
        cfg = with_overrides(cfg, data={"strokes": strokes})
    run_dir = Path(checkpoint).parent
    emb = embed_split(model, data, cfg.data, "query", device, progress, cache_dir=run_dir)
    metrics = {"query": score_split(emb, data, device)}
    doodles = embed_doodles(model, cfg.data.image_size, cfg.data.strokes, quickdraw, data, "test", per_class,
                            device, progress)
    metrics.update(doodle_metrics(doodles, emb["gallery"], emb["gallery_labels"], adapted))
    paths = [data.index.relative(data.index.photos[j].path) for j in emb["gallery_index"]]
    history = list(ckpt.get("history") or [])
    return RunRecord(
        run=cfg.name, metrics=metrics, seed=cfg.train.seed,
        wall_seconds=history[-1].get("wall_seconds") if history else None,
        what=f"doodle search: {', '.join(adapted) or 'no class'} adapted; strokes {cfg.data.strokes}",
        history=history, config=cfg.to_dict(), machine=machine_info(), data=data.index.identity(),
        scoring_seconds=round(time.perf_counter() - started, 1), out_dir=str(run_dir),
        examples=showcase(doodles, emb["gallery"], emb["gallery_labels"], paths))
