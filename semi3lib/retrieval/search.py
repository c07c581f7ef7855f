"""Photo-folder indexing and sketch search with a trained checkpoint (``semi3 index`` /
``semi3 search``). The index stores the model's identity (architecture settings and a
digest of its weights), so a sketch is never embedded by a different model than the
photos were."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from semi3lib.io import check_output_file
from semi3lib.data.images import UnreadableImageError, load_image
from semi3lib.data.transforms import image_to_tensor
from semi3lib.data.edgemaps import compute_edgemap
from semi3lib.engine.evaluate import load_model
from semi3lib.retrieval.index import RetrievalIndex, check_compatible, load_index, save_index, search
from semi3lib.engine.device import select_device
from semi3lib.engine.checkpoints import model_identity

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def find_images(folder: str | Path) -> list[Path]:
    """All image files under ``folder``, recursively, in sorted order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"photo folder not found: {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return paths


@torch.no_grad()
def embed_photo_files(model, cfg, paths: list[Path], device: torch.device, batch_size: int = 32,
                      progress: bool = True) -> tuple[np.ndarray, list[str], int]:
    """Embed photo files (each with its own edgemap, as in training): ``(N, D)`` float32
    embeddings, the N resolved paths embedded, and how many files were unreadable (skipped,
    with a warning)."""
    size, method = cfg.data.image_size, cfg.data.edge_method
    kept, embeds, skipped = [], [], 0
    batch_photos, batch_edges, batch_paths = [], [], []

    def flush() -> None:
        if not batch_paths:
            return
        photo = torch.stack(batch_photos).to(device)
        edge = torch.stack(batch_edges).to(device) if cfg.model.edge_branch else None
        embeds.append(model.embed_photo(photo, edge).float().cpu())
        kept.extend(batch_paths)
        batch_photos.clear(), batch_edges.clear(), batch_paths.clear()

    for path in tqdm(paths, desc="index photos", disable=not progress, dynamic_ncols=True):
        try:
            image = load_image(path, "RGB")
        except UnreadableImageError as err:
            warnings.warn(f"skipping {err}")
            skipped += 1
            continue
        batch_photos.append(image_to_tensor(image, size))
        edge = compute_edgemap(np.asarray(image), method)
        batch_edges.append(image_to_tensor(edge, size))
        batch_paths.append(str(Path(path).resolve()))
        if len(batch_paths) == batch_size:
            flush()
    flush()
    dim = cfg.model.embed_dim
    matrix = torch.cat(embeds).numpy().astype(np.float32) if embeds else np.zeros((0, dim), np.float32)
    return matrix, kept, skipped


@torch.no_grad()
def index_photo_folder(checkpoint: str | Path, photos: str | Path, out: str | Path, device: str = "auto",
                       batch_size: int = 32, progress: bool = True, overwrite: bool = False) -> RetrievalIndex:
    """Embed every readable image under ``photos`` (each with its own edgemap, as in
    training) and write the index to ``out``. Unreadable files are skipped and counted.

    ``out`` is checked first: it may not be a folder, the checkpoint or an image under
    ``photos``, nor (unless ``overwrite``) an existing file."""
    images = find_images(photos)
    check_output_file(out, inputs=[checkpoint, *images], overwrite=overwrite, what="index")
    dev = select_device(device)
    model, cfg, _ = load_model(checkpoint, dev)
    embeddings, paths, skipped = embed_photo_files(model, cfg, images, dev, batch_size, progress)
    if not paths:
        raise ValueError(f"no readable images under {photos} ({skipped} unreadable)")
    identity = model_identity(model, cfg)
    identity.update(checkpoint=str(Path(checkpoint).resolve()), skipped=skipped)
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
    query = model.embed_sketch(image_to_tensor(image, cfg.data.image_size).unsqueeze(0).to(dev))
    return search(index, query[0].float().cpu().numpy(), k=k)
