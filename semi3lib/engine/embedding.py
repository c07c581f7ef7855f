"""Embedding images in batches: the one loop behind evaluation, ``semi3 index``, ``semi3
export`` and the search widget.

:func:`embed_photos` embeds gallery photos, each with its own edgemap when the model has an
edgemap branch (co-attention recalibrates a photo with its edgemap; ``photo+edge`` galleries
add the edgemap's embedding). Its photos come from a Dataset: a split's
:class:`~semi3lib.data.datasets.GalleryPhotos` (evaluation, edgemaps from the cache) or
:class:`PhotoFiles`, any list of image files (indexes, exports, the widget), which skips
unreadable files with a warning. An unreadable file's item is a placeholder marked ``valid``
False; its row is embedded (batches keep their shape) and then left out by the callers
(:func:`embed_dataset` leaves it out itself), never scored.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from semi3lib.data.edgemaps import compute_edgemap
from semi3lib.data.images import UnreadableImageError, load_image
from semi3lib.data.transforms import image_to_tensor

if TYPE_CHECKING:
    from semi3lib.models import Semi3Net

EVAL_BATCH_SIZE = 64


@dataclass
class ItemEmbeddings:
    """What :func:`embed_items` returns, one row per item of its dataset, in order."""

    embeddings: np.ndarray  # (N, D) float32
    labels: np.ndarray  # (N,) int64
    valid: np.ndarray  # (N,) bool: False for an unreadable file (its row embeds a placeholder)

    def readable(self) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and labels of the readable items only."""
        return self.embeddings[self.valid], self.labels[self.valid]


@torch.no_grad()
def embed_items(dataset: Dataset, embed: Callable[[dict[str, torch.Tensor]], torch.Tensor],
                device: torch.device, desc: str = "embed", progress: bool = False,
                num_workers: int = 0) -> ItemEmbeddings:
    """Run ``embed`` over a dataset of labelled items in batches: every item's row, with
    ``valid`` from the items (all True for a dataset whose items do not say)."""
    loader = DataLoader(dataset, batch_size=EVAL_BATCH_SIZE, shuffle=False, num_workers=num_workers)
    embeds, labels, valid = [], [], []
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        embeds.append(embed(batch).float().cpu())
        labels.append(batch["label"].cpu())
        readable = batch.get("valid")
        valid.append(readable.bool().cpu() if readable is not None else torch.ones(len(labels[-1]), dtype=torch.bool))
    return ItemEmbeddings(torch.cat(embeds).numpy(), torch.cat(labels).numpy(), torch.cat(valid).numpy())


def embed_dataset(dataset: Dataset, embed: Callable[[dict[str, torch.Tensor]], torch.Tensor],
                  device: torch.device, desc: str = "embed", progress: bool = False,
                  num_workers: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Run ``embed`` over a dataset in batches. Returns embeddings ``(N, D)`` float32 and
    labels ``(N,)`` int64 of its readable items, in dataset order: an item marked unreadable
    (``valid`` False) has no row (see :func:`embed_items` for which ones they were)."""
    return embed_items(dataset, embed, device, desc, progress, num_workers).readable()


class PhotoFiles(Dataset):
    """Image files as a gallery: item ``i`` is ``photo`` and ``edge`` (3, S, S) in [0, 1], as
    the training Datasets prepare them, and ``valid`` (False: the file could not be read; it is
    warned about and returned white, to be dropped). ``edge_method=None`` computes no edgemap
    (``edge`` is white): for models without an edgemap branch."""

    def __init__(self, paths: Sequence[str | os.PathLike], image_size: int, edge_method: str | None) -> None:
        self.paths = [Path(p) for p in paths]
        self.image_size = image_size
        self.edge_method = edge_method

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        blank = torch.ones(3, self.image_size, self.image_size)
        try:
            image = load_image(self.paths[i], "RGB")
        except UnreadableImageError as err:
            warnings.warn(f"skipping {err}")
            return {"photo": blank, "edge": blank, "valid": torch.tensor(False)}
        # the edgemap of the full photo, then cropped with it: the same pixels as the photo's crop
        edge = (image_to_tensor(compute_edgemap(np.asarray(image), self.edge_method), self.image_size)
                if self.edge_method else blank)
        return {"photo": image_to_tensor(image, self.image_size), "edge": edge, "valid": torch.tensor(True)}


@dataclass
class PhotoEmbeddings:
    """What :func:`embed_photos` returns, one row per item of its dataset, in order."""

    embeddings: np.ndarray  # (N, D) float32, L2-normalised
    valid: np.ndarray  # (N,) bool: False for an unreadable file (its row embeds a white image)
    labels: np.ndarray | None = None  # (N,) int64, when the dataset labels its items
    attention: np.ndarray | None = None  # (N, Cb): the co-attention channel weights applied, if any


@torch.no_grad()
def embed_photos(model: Semi3Net, photos: Dataset, device: torch.device | str, *,
                 batch_size: int = EVAL_BATCH_SIZE, num_workers: int = 0, desc: str = "photos",
                 progress: bool = False) -> PhotoEmbeddings:
    """Gallery embeddings of ``photos`` (items with ``photo``, ``edge``, ``valid`` and maybe
    ``label``) by ``model`` in eval mode, ``batch_size`` at a time; each photo goes with its own
    edgemap when the model has an edgemap branch. The model's mode is restored afterwards."""
    device = torch.device(device)
    use_edge = model.cfg.edge_branch
    was_training = model.training
    model.eval()
    loader = DataLoader(photos, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    embeds, valid, labels, attention = [], [], [], []
    try:
        for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
            edge = batch["edge"].to(device) if use_edge else None
            embedding, weights = model.embed_photo_with_attention(batch["photo"].to(device), edge)
            embeds.append(embedding.float().cpu())
            valid.append(batch["valid"].bool())
            if "label" in batch:
                labels.append(batch["label"])
            if weights is not None:
                attention.append(weights.float().cpu())
    finally:
        model.train(was_training)
    if not embeds:
        return PhotoEmbeddings(np.zeros((0, model.cfg.embed_dim), np.float32), np.zeros(0, bool))
    return PhotoEmbeddings(embeddings=torch.cat(embeds).numpy(), valid=torch.cat(valid).numpy(),
                           labels=torch.cat(labels).numpy() if labels else None,
                           attention=torch.cat(attention).numpy() if attention else None)


__all__ = ["EVAL_BATCH_SIZE", "ItemEmbeddings", "PhotoEmbeddings", "PhotoFiles", "embed_dataset", "embed_items",
           "embed_photos"]
