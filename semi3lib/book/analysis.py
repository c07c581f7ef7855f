"""Reading a trained model: its co-attention weights and activation maps, the geometry of
the joint embedding space (which categories to show, UMAP projections, neighbourhoods) and
which queries to show its rankings for."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from semi3lib.config import DataConfig
from semi3lib.data.datasets import GalleryPhotos
from semi3lib.engine.evaluate import embed_dataset
from semi3lib.data.experiment import ExperimentData, edge_cache_dir
from semi3lib.models import Semi3Net

# --------------------------------------------------------------------------- co-attention


def coattention_weights(model: Semi3Net, data: ExperimentData, data_cfg: DataConfig,
                        photo_indices: Sequence[int] | None = None,
                        device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Co-attention weights ``(N, C)`` of gallery photos (all, or positions
    ``photo_indices`` into ``index.photos``), each with its own edgemap, and their labels
    ``(N,)``."""
    indices = list(data.split.gallery if photo_indices is None else photo_indices)
    dataset = GalleryPhotos(data.index, indices, image_size=data_cfg.image_size, edge_method=data_cfg.edge_method,
                            cache_dir=edge_cache_dir(data_cfg))
    model.eval()
    return embed_dataset(dataset, lambda b: model.coattention_weights(b["photo"], b["edge"]), torch.device(device))


def boosted_channels(weights: np.ndarray, labels: np.ndarray, categories: Sequence[str], top: int = 5) -> pd.DataFrame:
    """Per category, the channels whose mean weight for that category's photos most exceeds
    their mean over all photos: ``channel (+difference)`` strings, plus the category's mean
    weight and its spread across channels. ``weights`` ``(N, C)``, ``labels`` ``(N,)``."""
    weights, labels = np.asarray(weights), np.asarray(labels)
    overall = weights.mean(0)
    rows = {}
    for code, cat in enumerate(categories):
        sel = labels == code
        if not sel.any():
            continue
        mean = weights[sel].mean(0)
        lift = mean - overall
        best = np.argsort(-lift)[:top]
        rows[cat] = {"photos": int(sel.sum()), "mean weight": round(float(mean.mean()), 3),
                     **{f"#{i + 1}": f"{c} (+{lift[c]:.3f})" for i, c in enumerate(best)}}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "category"
    return table


def discriminative_channels(weights: np.ndarray, labels: np.ndarray, n: int) -> list[int]:
    """The ``n`` channels whose mean weight (over ``weights`` ``(N, C)``) varies most
    between categories."""
    weights, labels = np.asarray(weights), np.asarray(labels)
    means = np.stack([weights[labels == c].mean(0) for c in np.unique(labels)])
    return [int(c) for c in np.argsort(-means.var(0))[:n]]


def activation_maps(model: Semi3Net, photo: torch.Tensor, edge: torch.Tensor) -> dict[str, np.ndarray]:
    """Channel-mean activation maps ``(B, h, w)`` of the bottom features of photos and their
    edgemaps (``(B, 3, S, S)`` each), before and after co-attention recalibration."""
    with torch.no_grad():
        maps = model.photo_feature_maps(photo, edge)
    names = {"before_photo": "photo, before", "after_photo": "photo, after",
             "before_edge": "edgemap, before", "after_edge": "edgemap, after"}
    return {label: maps[key].abs().mean(1).cpu().numpy() for key, label in names.items()}


# --------------------------------------------------------------------------- embedding space


def select_categories(labels: Any, n: int, seed: int = 0) -> list[int]:
    """``n`` category codes present in ``labels``, seeded, sorted."""
    present = np.unique(np.asarray(labels))
    if n >= len(present):
        return [int(c) for c in present]
    return sorted(int(c) for c in np.random.default_rng(seed).choice(present, n, replace=False))


def joint_points(emb: Mapping[str, np.ndarray], categories: Sequence[int]) -> dict[str, np.ndarray]:
    """Query sketches and gallery photos of ``categories`` stacked: ``x`` ``(N, D)``,
    ``category`` (codes re-numbered 0..len-1), ``is_sketch`` ``(N,)`` bool."""
    remap = {c: i for i, c in enumerate(categories)}
    qs = np.isin(emb["query_labels"], categories)
    gs = np.isin(emb["gallery_labels"], categories)
    x = np.concatenate([emb["query"][qs], emb["gallery"][gs]])
    labels = np.concatenate([emb["query_labels"][qs], emb["gallery_labels"][gs]])
    return {"x": x, "category": np.array([remap[int(c)] for c in labels]),
            "is_sketch": np.concatenate([np.ones(qs.sum(), bool), np.zeros(gs.sum(), bool)])}


def umap_2d(x: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """A seeded cosine-metric UMAP of ``(N, D)`` to ``(N, 2)``."""
    import umap  # slow to import (numba): only when a projection is asked for

    reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, len(x) - 1), min_dist=min_dist,
                        metric="cosine", random_state=seed, n_jobs=1)
    return reducer.fit_transform(x)


def neighbourhood_stats(x: np.ndarray, category: np.ndarray, is_sketch: np.ndarray, k: int = 10) -> dict[str, float]:
    """In the embedding space itself (cosine over ``x`` ``(N, D)``, not the 2-D projection):
    among each point's ``k`` nearest neighbours, the share of the same category and the share
    of the other domain (0.5-ish: domains mixed; near 0: each domain in its own region)."""
    x = np.asarray(x, dtype=np.float32)
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    k = min(k, len(x) - 1)
    nn = np.argsort(-sims, axis=1)[:, :k]
    category, is_sketch = np.asarray(category), np.asarray(is_sketch)
    return {"same_category": float((category[nn] == category[:, None]).mean()),
            "other_domain": float((is_sketch[nn] != is_sketch[:, None]).mean()),
            "sketch_neighbours_same_category_photos": float(
                ((category[nn] == category[:, None]) & ~is_sketch[nn])[is_sketch].mean()),
            "k": float(k)}


# --------------------------------------------------------------------------- example queries


def spread_queries(ap: np.ndarray, labels: np.ndarray, n: int) -> list[int]:
    """``n`` query positions from distinct categories at evenly spaced AP ranks (best to
    worst), so a retrieval grid shows successes and failures in their real proportion.
    ``ap`` and ``labels`` are ``(Q,)``."""
    order = np.argsort(-np.asarray(ap), kind="stable")
    picked, seen = [], set()
    for target in np.linspace(0, len(order) - 1, num=n).round().astype(int):
        # The query at that rank, or the nearest one below (then above) of a new category.
        for pos in np.concatenate([order[target:], order[:target][::-1]]):
            if labels[pos] not in seen:
                picked.append(int(pos))
                seen.add(labels[pos])
                break
    return sorted(picked, key=lambda p: -ap[p])
