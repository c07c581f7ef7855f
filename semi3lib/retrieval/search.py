"""Photo-folder indexing and sketch search with a trained checkpoint (``semi3 index`` /
``semi3 search``). The index stores the model's identity (architecture settings and a
digest of its weights), so a sketch is never embedded by a different model than the
photos were."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from semi3lib.io import check_output_file
from semi3lib.data.images import load_image
from semi3lib.data.layouts import printable_path
from semi3lib.data.transforms import sketch_to_tensor
from semi3lib.engine.embedding import PhotoFiles, embed_photos
from semi3lib.engine.evaluate import load_model
from semi3lib.retrieval.index import RetrievalIndex, check_compatible, load_index, save_index, search
from semi3lib.engine.device import select_device
from semi3lib.engine.checkpoints import model_identity

if TYPE_CHECKING:
    from semi3lib.config import ExperimentConfig
    from semi3lib.models import Semi3Net

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def _walk_error(err: OSError) -> None:
    """A sub-folder that cannot be listed is an error naming it, not photos silently left out."""
    raise err


def find_images(folder: str | Path) -> list[Path]:
    """All image files under ``folder``, recursively, in sorted order.

    Symbolic links to folders are followed (a photo collection assembled from links is
    indexed whole), each real folder once: a link back up the tree (a loop) or a second link
    to a folder already walked adds nothing. A sub-folder that cannot be listed is an
    OSError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"photo folder not found: {folder}")
    paths, walked = [], set()
    for current, dirs, files in os.walk(folder, followlinks=True, onerror=_walk_error):
        real = os.stat(current)
        if (real.st_dev, real.st_ino) in walked:  # reached again through a link: a loop or a duplicate
            dirs.clear()
            continue
        walked.add((real.st_dev, real.st_ino))
        dirs.sort()  # a fixed walk order: which of two links to one folder is walked is reproducible
        paths += [Path(current) / name for name in files
                  if Path(name).suffix.lower() in IMAGE_SUFFIXES and (Path(current) / name).is_file()]
    if not paths:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return sorted(paths)


def embed_photo_files(model: Semi3Net, cfg: ExperimentConfig, paths: Sequence[str | Path], device: torch.device | str,
                      batch_size: int = 32, progress: bool = True) -> tuple[np.ndarray, list[str], int]:
    """Embed photo files (each with its own edgemap, as in training and evaluation; by
    :func:`semi3lib.engine.embedding.embed_photos`): ``(N, D)`` float32 embeddings, the N
    resolved paths embedded, and how many files were unreadable (skipped, with a warning)."""
    edge_method = cfg.data.edge_method if cfg.model.edge_branch else None  # no edgemaps for a model without the branch
    photos = PhotoFiles(paths, cfg.data.image_size, edge_method)
    embedded = embed_photos(model, photos, device, batch_size=batch_size, desc="index photos", progress=progress)
    kept = [str(path.resolve()) for path, valid in zip(photos.paths, embedded.valid) if valid]
    return embedded.embeddings[embedded.valid], kept, int((~embedded.valid).sum())


@torch.no_grad()
def index_photo_folder(checkpoint: str | Path, photos: str | Path, out: str | Path, device: str = "auto",
                       batch_size: int = 32, progress: bool = True, overwrite: bool = False,
                       max_unreadable: float | None = None) -> RetrievalIndex:
    """Embed every readable image under ``photos`` (found by :func:`find_images`; each with
    its own edgemap, as in training) and write the index to ``out``. Unreadable files are left
    out, counted and the first named (the identity's ``skipped`` and ``first_skipped``); with
    ``max_unreadable``, more than that fraction of them is a ValueError and nothing is written.

    ``out`` is checked first: it may not be a folder, the checkpoint or an image under
    ``photos``, nor (unless ``overwrite``) an existing file."""
    images = find_images(photos)
    check_output_file(out, inputs=[checkpoint, *images], overwrite=overwrite, what="index")
    dev = select_device(device)
    model, cfg, _ = load_model(checkpoint, dev)
    embeddings, paths, skipped = embed_photo_files(model, cfg, images, dev, batch_size, progress)
    kept = set(paths)
    first = next((printable_path(p) for p in images if str(p.resolve()) not in kept), None)
    if not paths:
        raise ValueError(f"no readable images under {photos} ({skipped} unreadable, first: {first})")
    if max_unreadable is not None and skipped > max_unreadable * len(images):
        raise ValueError(f"{skipped} of {len(images)} images under {photos} ({skipped / len(images):.1%}) cannot be "
                         f"read, more than the {max_unreadable * 100:g}% allowed (first: {first}); repair or remove them "
                         "or raise --max-unreadable")
    identity = model_identity(model, cfg)
    identity.update(checkpoint=str(Path(checkpoint).resolve()), skipped=skipped)
    if skipped:
        identity["first_skipped"] = first
    index = RetrievalIndex(embeddings=embeddings, paths=paths, model_identity=identity)
    save_index(index, out)
    return index


@torch.no_grad()
def search_sketch(index_path: str | Path, sketch: str | Path, k: int = 10, checkpoint: str | Path | None = None,
                  device: str = "auto") -> list[tuple[str, float]]:
    """Top-``k`` photos of the index for one sketch file (any size or image mode)."""
    if k < 1:
        raise ValueError(f"-k must be at least 1, got {k}")
    index = load_index(index_path)
    checkpoint = checkpoint or index.model_identity.get("checkpoint")
    if not checkpoint or not Path(checkpoint).is_file():
        raise FileNotFoundError(f"the checkpoint that built {index_path} is not at {checkpoint!r}; pass --checkpoint")
    dev = select_device(device)
    model, cfg, _ = load_model(checkpoint, dev)
    check_compatible(index, model_identity(model, cfg))
    image = load_image(sketch, "L")
    query = model.embed_sketch(sketch_to_tensor(image, cfg.data.image_size, cfg.data.strokes).unsqueeze(0).to(dev))
    return search(index, query[0].float().cpu().numpy(), k=k)
