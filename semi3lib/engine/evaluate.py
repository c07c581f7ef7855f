"""Embedding a split and scoring it: trained checkpoints and the ImageNet baseline.

The batches go through :mod:`semi3lib.engine.embedding`, which ``semi3 index``, ``semi3
export`` and the widget use too. Metrics come from
:func:`semi3lib.engine.metrics.retrieval_metrics` (plain, non-interpolated AP; see its
docstring): the query sketches rank the whole gallery by cosine similarity.
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
from semi3lib.engine.embedding import embed_dataset, embed_photos
from semi3lib.engine.metrics import retrieval_metrics
from semi3lib.models import Semi3Net, build_backbone

ModuleT = TypeVar("ModuleT", bound=torch.nn.Module)

if TYPE_CHECKING:
    import pandas as pd

EMBEDDINGS_DIR = "embeddings"  # inside a run folder: cached embed_split results


def embed_split(model: Semi3Net, data: ExperimentData, data_cfg: DataConfig, which: str = "query",
                device: torch.device | str = "cpu", progress: bool = False,
                cache_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """Embeddings of the query (or validation) sketches and of the gallery photos, each
    photo with its own edgemap. Returns ``query``, ``query_labels``, ``gallery``,
    ``gallery_labels`` and, when the model has co-attention, ``gallery_attention`` (the
    channel weights of each gallery photo, ``(G, Cb)``, a by-product of embedding it).

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
            return {name: stored[name] for name in stored.files}
    device = torch.device(device)
    was_training = model.training
    model.eval()
    workers = min(2, data_cfg.num_workers)
    q, ql = embed_dataset(query_dataset(data, data_cfg, which), lambda b: model.embed_sketch(b["sketch"]),
                          device, f"{which} sketches", progress, workers)
    gallery = embed_photos(model, gallery_dataset(data, data_cfg), device, num_workers=workers,
                           desc="gallery photos", progress=progress)
    model.train(was_training)
    out = {"query": q, "query_labels": ql, "gallery": gallery.embeddings, "gallery_labels": gallery.labels}
    if gallery.attention is not None:
        out["gallery_attention"] = gallery.attention
    if cache is not None:  # written atomically: readers never see a partial file
        buffer = io.BytesIO()
        np.savez(buffer, **out)
        atomic_write_bytes(cache, buffer.getvalue())
    return out


def _embedding_key(model: Semi3Net, data: ExperimentData, data_cfg: DataConfig, which: str) -> str:
    """What an :func:`embed_split` result depends on, hashed: the weights, the files of the
    split (in order) and the image settings."""
    queries = data.split.query if which == "query" else data.split.val
    digest = hashlib.sha256(json.dumps({
        "weights": weights_digest(model),
        "which": which,
        "image_size": data_cfg.image_size,
        "edge_method": data_cfg.edge_method if model.cfg.edge_branch else None,
        # only when not the default, so that caches written before the option existed still match
        **({"gallery_embedding": model.cfg.gallery_embedding} if model.cfg.gallery_embedding != "photo" else {}),
        "sketches": [str(data.index.sketches[k].path) for k in queries],
        "photos": [str(data.index.photos[j].path) for j in data.split.gallery],
    }).encode())
    return f"{which}-{digest.hexdigest()[:16]}"


def evaluate_model(model: Semi3Net, data: ExperimentData, data_cfg: DataConfig, which: str = "query",
                   device: torch.device | str = "cpu", progress: bool = False,
                   cache_dir: str | Path | None = None) -> dict[str, float]:
    """Retrieval metrics of :func:`embed_split` (which see for ``cache_dir``)."""
    emb = embed_split(model, data, data_cfg, which, device, progress, cache_dir)
    return retrieval_metrics(emb["query"], emb["query_labels"], emb["gallery"], emb["gallery_labels"],
                             device=torch.device(device))


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
    (or validation) sketches and the gallery photos (no edgemaps). Returns ``query``
    ``(Q, D)``, ``query_labels`` ``(Q,)``, ``gallery`` ``(G, D)``, ``gallery_labels`` ``(G,)``."""
    device = torch.device(device)
    features = for_inference(ImageNetFeatures(backbone, weights_path), device)
    workers = min(2, data_cfg.num_workers)
    q, ql = embed_dataset(query_dataset(data, data_cfg, which), lambda b: features(b["sketch"]), device,
                          f"{which} sketches", progress, workers)
    g, gl = embed_dataset(gallery_dataset(data, data_cfg), lambda b: features(b["photo"]), device,
                          "gallery photos", progress, workers)
    return {"query": q, "query_labels": ql, "gallery": g, "gallery_labels": gl}


def evaluate_imagenet_baseline(data: ExperimentData, data_cfg: DataConfig, backbone: str = "efficientnet_lite0",
                               weights_path: str | None = None, device: torch.device | str = "cpu",
                               which: str = "query", progress: bool = False) -> dict[str, float]:
    """Retrieval metrics of :func:`embed_split_imagenet`."""
    emb = embed_split_imagenet(data, data_cfg, backbone, weights_path, device, which, progress)
    return retrieval_metrics(emb["query"], emb["query_labels"], emb["gallery"], emb["gallery_labels"],
                             device=torch.device(device))


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
