"""Embedding a split and scoring it: trained checkpoints and the ImageNet baseline.

The batches go through :mod:`semi3lib.engine.embedding`, which ``semi3 index``, ``semi3
export`` and the widget use too. Metrics come from
:func:`semi3lib.engine.metrics.retrieval_metrics` (plain, non-interpolated AP; see its
docstring): the query sketches rank the whole gallery by cosine similarity. An instance-level
split (``data.protocol: instance``) is scored by its own photos first (acc@1, acc@5, acc@10,
mean and median rank: :func:`semi3lib.engine.metrics.instance_metrics`), with the category
metrics of the same embeddings beside them.

A gallery photo or query sketch that cannot be read is out of the computation: its row is left
out of the embeddings and the labels before any metric (a blank stand-in with its category's
label would be scored, and inflates mAP when many such files sit in one category). The metrics
then count and name them (``gallery_unreadable``, ``queries_unreadable``, ``unreadable_files``;
present only when there are any), and ``max_unreadable`` refuses to score a split where more
than that fraction of the gallery or of the queries is unreadable (``semi3 eval`` allows
:data:`MAX_UNREADABLE` by default; training and study rescoring count them without refusing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from semi3lib.io import atomic_write_bytes
from semi3lib.engine.checkpoints import CheckpointError, load_checkpoint_file, weights_digest, weights_mismatch
from semi3lib.config import DataConfig, ExperimentConfig, config_from_dict
from semi3lib.data.experiment import ExperimentData, gallery_dataset, load_experiment_data, query_dataset
from semi3lib.data.layouts import printable_path
from semi3lib.engine.embedding import ItemEmbeddings, embed_dataset, embed_items, embed_photos
from semi3lib.data.instance import own_gallery_columns, own_photo_positions
from semi3lib.engine.metrics import INSTANCE_KS, own_photo_ranks_from_embeddings, rank_summary, retrieval_metrics
from semi3lib.models import Semi3Net, build_backbone

ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)

if TYPE_CHECKING:
    import pandas as pd

EMBEDDINGS_DIR = "embeddings"  # inside a run folder: cached embed_split results
# What a cached embed_split result holds; a file without all of them (one written before
# unreadable files were left out, when their blank rows were scored) is recomputed.
SPLIT_ARRAYS = ("query", "query_labels", "query_index", "query_unreadable",
                "gallery", "gallery_labels", "gallery_index", "gallery_unreadable")
# The default of `semi3 eval --max-unreadable`: the fraction of the gallery or of the queries
# that may be unreadable and left out. Beyond it a score says more about the copy of the data
# than about the model (a few bad files in a category move its AP visibly on small galleries).
MAX_UNREADABLE = 0.05
# How many unreadable files a metrics dict names (all are counted).
NAMED_UNREADABLE = 10
OWN_PHOTO_RANKS = "own photo ranks"  # instance metrics: each query's own-photo rank (a list, not a score)
EXAMPLES = "examples"  # instance metrics: a few queries with their top photos (:func:`instance_examples`)
EXAMPLE_TOP = 5


class UnreadableDataError(ValueError):
    """Too many of a split's gallery photos or query sketches cannot be read to score it."""


def _readable_rows(queries: ItemEmbeddings, query_positions: Sequence[int], gallery: ItemEmbeddings,
                   gallery_positions: Sequence[int]) -> dict[str, np.ndarray]:
    """The rows of readable items only, with where they come from: ``query_index`` /
    ``gallery_index`` are positions in ``index.sketches`` / ``index.photos`` of each row, and
    ``query_unreadable`` / ``gallery_unreadable`` those of the items left out."""
    out = {}
    for side, rows, positions in (("query", queries, query_positions), ("gallery", gallery, gallery_positions)):
        positions = np.asarray(positions, dtype=np.int64)
        out[side], out[f"{side}_labels"] = rows.readable()
        out[f"{side}_index"], out[f"{side}_unreadable"] = positions[rows.valid], positions[~rows.valid]
    return out


def embed_split(model: Semi3Net, data: ExperimentData, data_cfg: DataConfig, which: str = "query",
                device: torch.device | str = "cpu", progress: bool = False,
                cache_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """Embeddings of the query (or validation) sketches and of the gallery photos, each
    photo with its own edgemap, readable files only. Returns ``query``, ``query_labels``,
    ``gallery``, ``gallery_labels``, the positions of their rows and of the unreadable files
    left out (see :func:`_readable_rows`: ``query_index``, ``query_unreadable``,
    ``gallery_index``, ``gallery_unreadable``) and, when the model has co-attention,
    ``gallery_attention`` (the channel weights of each gallery photo, ``(G, Cb)``, a by-product
    of embedding it).

    With ``cache_dir`` (a run folder) the result is kept in ``cache_dir/embeddings/`` under a
    key made of the model's weights digest, the split's files and the image settings, and read
    back instead of recomputed while all of these are unchanged: training stores its final
    evaluation there, so the notebooks that read the checkpoint do not embed it again.
    """
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / EMBEDDINGS_DIR / f"{_embedding_key(model, data, data_cfg, which)}.npz"
    if cache is not None and cache.is_file():
        with np.load(cache) as stored:
            if set(SPLIT_ARRAYS) <= set(stored.files):
                return {name: stored[name] for name in stored.files}
    device = torch.device(device)
    was_training = model.training
    model.eval()
    workers = min(2, data_cfg.num_workers)
    queries, photos = query_dataset(data, data_cfg, which), gallery_dataset(data, data_cfg)
    q = embed_items(queries, lambda b: model.embed_sketch(b["sketch"]), device, f"{which} sketches", progress, workers)
    gallery = embed_photos(model, photos, device, num_workers=workers, desc="gallery photos", progress=progress)
    model.train(was_training)
    out = _readable_rows(q, queries.sketch_indices, ItemEmbeddings(gallery.embeddings, gallery.labels, gallery.valid),
                         photos.photo_indices)
    if gallery.attention is not None:
        out["gallery_attention"] = gallery.attention[gallery.valid]
    if cache is not None:  # written atomically: readers never see a partial file
        buffer = io.BytesIO()
        np.savez(buffer, **out)
        atomic_write_bytes(cache, buffer.getvalue())
    return out


def _embedding_key(model: Semi3Net, data: ExperimentData, data_cfg: DataConfig, which: str) -> str:
    """What an :func:`embed_split` result depends on, hashed: the weights, the files of the
    split (in order), the image settings, and what becomes of unreadable files (left out: a
    cache written when they were scored as blanks has another key)."""
    queries = data.split.query if which == "query" else data.split.val
    digest = hashlib.sha256(json.dumps({
        "unreadable": "left out",
        "weights": weights_digest(model),
        "which": which,
        "image_size": data_cfg.image_size,
        "edge_method": data_cfg.edge_method if model.cfg.edge_branch else None,
        # only when not the default, so that caches written before the option existed still match
        **({"gallery_embedding": model.cfg.gallery_embedding} if model.cfg.gallery_embedding != "photo" else {}),
        **({"strokes": data_cfg.strokes} if data_cfg.strokes != "raw" else {}),
        "sketches": [str(data.index.sketches[k].path) for k in queries],
        "photos": [str(data.index.photos[j].path) for j in data.split.gallery],
    }).encode())
    return f"{which}-{digest.hexdigest()[:16]}"


def check_unreadable(emb: dict[str, np.ndarray], data: ExperimentData, max_unreadable: float | None) -> None:
    """Raise :class:`UnreadableDataError` when none of the gallery photos (or of the queries)
    of an :func:`embed_split` result is readable, or, with ``max_unreadable``, when more than
    that fraction of either is unreadable; the message counts them and names the first."""
    for side, what, records in (("query", "query sketches", data.index.sketches),
                                ("gallery", "gallery photos", data.index.photos)):
        lost, total = len(emb[f"{side}_unreadable"]), len(emb[f"{side}_unreadable"]) + len(emb[f"{side}_index"])
        if not lost:
            continue
        first = _relative(data, records[int(emb[f"{side}_unreadable"][0])].path)
        if lost == total:
            raise UnreadableDataError(f"none of the {total} {what} can be read (first: {first}): nothing to score")
        if max_unreadable is not None and lost > max_unreadable * total:
            raise UnreadableDataError(
                f"{lost} of {total} {what} ({lost / total:.1%}) cannot be read, more than the {max_unreadable * 100:g}% "
                f"allowed (first: {first}); repair or remove them (semi3 data info --verify lists them) or raise "
                "--max-unreadable")


def unreadable_summary(emb: dict[str, np.ndarray], data: ExperimentData) -> dict[str, Any]:
    """What an :func:`embed_split` result left out, for a metrics dict: ``queries_unreadable``
    and ``gallery_unreadable`` (counts, as floats like the other counts) and
    ``unreadable_files`` (the first :data:`NAMED_UNREADABLE` queries, then the first
    :data:`NAMED_UNREADABLE` gallery photos, relative to the dataset root); empty when every
    file was read."""
    lost_q, lost_g = emb["query_unreadable"], emb["gallery_unreadable"]
    if not len(lost_q) and not len(lost_g):
        return {}
    paths = ([data.index.sketches[int(k)].path for k in lost_q[:NAMED_UNREADABLE]]
             + [data.index.photos[int(j)].path for j in lost_g[:NAMED_UNREADABLE]])
    return {"queries_unreadable": float(len(lost_q)), "gallery_unreadable": float(len(lost_g)),
            "unreadable_files": [_relative(data, p) for p in paths]}


def _relative(data: ExperimentData, path: Path) -> str:
    """A dataset file's path relative to the root, printable whatever bytes its name holds."""
    try:
        return printable_path(data.index.relative(path))
    except ValueError:  # not under the root (an index built by hand)
        return printable_path(path)


def score_split(emb: dict[str, np.ndarray], data: ExperimentData, device: torch.device | str = "cpu",
                max_unreadable: float | None = None) -> dict[str, Any]:
    """Retrieval metrics of an :func:`embed_split` (or :func:`embed_split_imagenet`) result, with
    the unreadable files it left out counted and named; see :func:`check_unreadable` for
    ``max_unreadable``."""
    check_unreadable(emb, data, max_unreadable)
    metrics: dict[str, Any] = {}
    if data.split.protocol == "instance":
        metrics.update(instance_scores(emb, data))
    metrics.update(retrieval_metrics(emb["query"], emb["query_labels"], emb["gallery"],
                                     emb["gallery_labels"], device=torch.device(device)))
    metrics.update(unreadable_summary(emb, data))
    return metrics


def instance_scores(emb: dict[str, np.ndarray], data: ExperimentData) -> dict[str, Any]:
    """The instance metrics of an :func:`embed_split` result: each query row against its own
    photo's gallery row (acc@K, mean and median rank; see
    :func:`~semi3lib.engine.metrics.instance_metrics`). ``queries_without_own_photo`` counts
    the queries whose own photo is not among the gallery's readable rows (left out). Also
    :data:`OWN_PHOTO_RANKS` (each query's rank, in query order; 0: no own photo) and
    :data:`EXAMPLES` (:func:`instance_examples`), so that a record can show the rank
    distribution and what the model returned without the checkpoint."""
    own = own_gallery_columns(own_photo_positions(data.index, emb["query_index"]), emb["gallery_index"])
    ranks = own_photo_ranks_from_embeddings(emb["query"], emb["gallery"], own)
    scores = rank_summary(ranks, len(emb["gallery"]), INSTANCE_KS)
    return {**{k: v for k, v in scores.items() if k not in ("queries", "gallery")},
            OWN_PHOTO_RANKS: ranks.tolist(), EXAMPLES: instance_examples(emb, data, own, ranks)}


def instance_examples(emb: dict[str, np.ndarray], data: ExperimentData, own: np.ndarray, ranks: np.ndarray,
                      top: int = EXAMPLE_TOP) -> list[dict[str, Any]]:
    """The first query sketch of each category (index order: the same queries whatever the
    model), each with its own photo, that photo's rank and the ``top`` gallery photos, as
    paths relative to the dataset root."""
    first: dict[int, int] = {}
    for row, label in enumerate(emb["query_labels"]):
        first.setdefault(int(label), row)
    examples = []
    for label, row in sorted(first.items()):
        order = np.argsort(-(emb["gallery"] @ emb["query"][row]), kind="stable")[:top]
        sketch = data.index.sketches[int(emb["query_index"][row])]
        examples.append({
            "category": sketch.category, "query": _relative(data, sketch.path),
            "own": (_relative(data, data.index.photos[int(emb["gallery_index"][own[row]])].path)
                    if own[row] >= 0 else None),
            "rank": int(ranks[row]),
            "top": [_relative(data, data.index.photos[int(emb["gallery_index"][c])].path) for c in order]})
    return examples


def evaluate_model(model: Semi3Net, data: ExperimentData, data_cfg: DataConfig, which: str = "query",
                   device: torch.device | str = "cpu", progress: bool = False,
                   cache_dir: str | Path | None = None, max_unreadable: float | None = None) -> dict[str, Any]:
    """Retrieval metrics of :func:`embed_split` (which see for ``cache_dir``) by
    :func:`score_split` (which see for ``max_unreadable``; None: count, never refuse)."""
    emb = embed_split(model, data, data_cfg, which, device, progress, cache_dir)
    return score_split(emb, data, device, max_unreadable)


def for_inference(module: ModuleT, device: torch.device | str) -> ModuleT:
    """``module`` on ``device`` in eval mode, channels-last as in training: the same outputs,
    faster convolutions on CPU and GPU."""
    return module.to(torch.device(device), memory_format=torch.channels_last).eval()


def load_model(checkpoint: str | Path, device: torch.device | str = "cpu") -> tuple[Semi3Net, ExperimentConfig, dict[str, Any]]:
    """Rebuild the model a checkpoint was trained with and load its weights (the layers are
    built without fetching any pretrained weights, then overwritten). The checkpoint is read
    as data only (see :func:`load_checkpoint_file`); weights that do not fit the network its
    config describes are a :class:`CheckpointError`, not a traceback."""
    ckpt = load_checkpoint_file(checkpoint)
    cfg = config_from_dict(ckpt["config"])
    model = Semi3Net(cfg.model, num_classes=ckpt["num_classes"], load_weights=False)
    missing, unexpected = weights_mismatch(model, ckpt["model"])
    if missing or unexpected:
        examples = [f"{len(names)} {what}" + (f" (e.g. {names[0]})" if names else "")
                    for names, what in ((missing, "missing or of another shape"), (unexpected, "unexpected"))]
        raise CheckpointError(f"{checkpoint}: its weights do not fit the network its config describes: "
                              + "; ".join(examples))
    model.load_state_dict(ckpt["model"])
    return for_inference(model, device), cfg, ckpt


def load_trained(checkpoint: str | Path, device: torch.device | str = "cpu"
                 ) -> tuple[Semi3Net, ExperimentConfig, dict[str, Any], ExperimentData]:
    """:func:`load_model` plus the run's experiment data, with the split saved beside the
    checkpoint (``split.json``), so the queries and the gallery are the ones it was scored on."""
    model, cfg, ckpt = load_model(checkpoint, device)
    return model, cfg, ckpt, load_experiment_data(cfg.data, Path(checkpoint).parent / "split.json")


class ImageNetFeatures(torch.nn.Module):
    """The ImageNet-pretrained backbone with global average pooling: the no-training floor.
    Sketches and photos go through the same network; photo edgemaps are not used."""

    def __init__(self, backbone_name: str = "efficientnet_lite0", weights_path: str | None = None):
        super().__init__()
        self.backbone = build_backbone(backbone_name, pretrained=True, weights_path=weights_path)
        self.register_buffer("mean", torch.tensor(self.backbone.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(self.backbone.std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self.mean) / self.std
        for stage in self.backbone.stages:
            x = stage(x)
        return F.normalize(x.mean(dim=(2, 3)), dim=1)


def embed_split_imagenet(data: ExperimentData, data_cfg: DataConfig, backbone: str = "efficientnet_lite0",
                         weights_path: str | None = None, device: torch.device | str = "cpu",
                         which: str = "query", progress: bool = False) -> dict[str, np.ndarray]:
    """:func:`embed_split` for the no-training floor (:class:`ImageNetFeatures`): the query
    (or validation) sketches and the gallery photos (no edgemaps), readable files only.
    Returns ``query`` ``(Q, D)``, ``query_labels`` ``(Q,)``, ``gallery`` ``(G, D)``,
    ``gallery_labels`` ``(G,)`` and the positions of the rows and of the files left out, as
    :func:`embed_split`."""
    device = torch.device(device)
    features = for_inference(ImageNetFeatures(backbone, weights_path), device)
    workers = min(2, data_cfg.num_workers)
    queries, photos = query_dataset(data, data_cfg, which), gallery_dataset(data, data_cfg)
    q = embed_items(queries, lambda b: features(b["sketch"]), device, f"{which} sketches", progress, workers)
    g = embed_items(photos, lambda b: features(b["photo"]), device, "gallery photos", progress, workers)
    return _readable_rows(q, queries.sketch_indices, g, photos.photo_indices)


def evaluate_imagenet_baseline(data: ExperimentData, data_cfg: DataConfig, backbone: str = "efficientnet_lite0",
                               weights_path: str | None = None, device: torch.device | str = "cpu",
                               which: str = "query", progress: bool = False,
                               max_unreadable: float | None = None) -> dict[str, Any]:
    """Retrieval metrics of :func:`embed_split_imagenet` (see :func:`score_split`)."""
    emb = embed_split_imagenet(data, data_cfg, backbone, weights_path, device, which, progress)
    return score_split(emb, data, device, max_unreadable)


def edge_method_retrieval(data: ExperimentData, data_cfg: DataConfig, methods: Sequence[str],
                          backbone: str = "efficientnet_lite0", weights_path: str | None = None,
                          device: torch.device | str = "cpu") -> pd.DataFrame:
    """Untrained ImageNet features: query sketches against the gallery rendered as photos and
    as the edgemaps of each method. How sketch-like is each method to a network that has
    never seen a sketch? One row per gallery rendering (``photos``, ``<method> edgemaps``),
    columns mAP@all, mAP@200, P@10, P@25."""
    import pandas as pd  # only this table needs it; the training CLI imports this module

    device = torch.device(device)
    features = for_inference(ImageNetFeatures(backbone, weights_path), device)
    workers = min(2, data_cfg.num_workers)
    q, ql = embed_dataset(query_dataset(data, data_cfg), lambda b: features(b["sketch"]), device,
                          num_workers=workers)
    rows = []
    for domain, method in [("photo", None), *(("edge", m) for m in methods)]:
        cfg = dataclasses.replace(data_cfg, edge_method=method or data_cfg.edge_method)
        g, gl = embed_dataset(gallery_dataset(data, cfg), lambda b: features(b[domain]), device,
                              num_workers=workers)
        metrics = retrieval_metrics(q, ql, g, gl)
        rows.append({"gallery": "photos" if method is None else f"{method} edgemaps",
                     **{k: metrics[k] for k in ("mAP@all", "mAP@200", "P@10", "P@25")}})
    return pd.DataFrame(rows).set_index("gallery")
