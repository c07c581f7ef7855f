"""A compact copy of a dataset (same layout, smaller images) to move to a GPU machine.

File names are kept, so splits made on the copy select the same files as on the original
(split fingerprints ignore extensions: a photo stored as PNG in the source becomes ``.jpg``).

The copy is built in a temporary folder beside ``out`` and renamed to ``out`` once complete
(:func:`semi3lib.io.atomic_folder`): a pack that fails, is killed or fills the disk leaves no
half pack at ``out``, so running it again needs nothing cleared first.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from PIL import Image

from semi3lib.data.images import UnreadableImageError, load_image
from semi3lib.io import atomic_folder, atomic_write_text
from semi3lib.data.instance import PHOTO_SPLIT_FILE
from semi3lib.data.layouts import CATEGORY_MAP_FILE, DatasetIndex, read_dataset


def _shrink(img: Image.Image, size: int) -> Image.Image:
    """Shorter side to ``size``; never enlarges (the copy must not be bigger than the source)."""
    w, h = img.size
    if min(w, h) <= size:
        return img
    scale = size / min(w, h)
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


def pack_dataset(root: str | os.PathLike | None, out: str | os.PathLike, size: int = 224,
                 name: str = "sketchy-mini", quality: int = 90, progress: bool = True) -> dict[str, Any]:
    """Write ``out`` with the dataset's layout: photos as JPEG (``quality``), sketches as
    8-bit greyscale PNG, shorter side at most ``size``. Unreadable files are skipped and listed.
    Returns a summary (counts, bytes, seconds), also written (last) to ``out/PACKED.json``."""
    if size < 8:
        raise ValueError(f"pack size must be >= 8, got {size}")
    index = read_dataset(name, root)
    out = Path(out).resolve()
    if out == index.root or index.root in out.parents:
        raise ValueError(f"pack output {out} must be outside the dataset folder {index.root}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        # packing into another pack or dataset would mix the two
        raise ValueError(f"pack output {out} exists and is not an empty folder; give a new or empty folder")
    with atomic_folder(out) as build:
        summary = _pack_into(index, build, size=size, quality=quality, progress=progress)
        summary = {"dataset": name, "source": str(index.root), "out": str(out), **summary}
        atomic_write_text(build / "PACKED.json", json.dumps(summary, indent=1))
    return summary


def _pack_into(index: DatasetIndex, folder: Path, *, size: int, quality: int, progress: bool) -> dict[str, Any]:
    """Write the shrunk copy of every file of ``index`` (and its category map and photo split)
    into ``folder``;
    returns the summary's counts."""
    from tqdm.auto import tqdm

    jobs = [(p.path, "photo") for p in index.photos] + [(s.path, "sketch") for s in index.sketches]
    skipped = [str(s.path) for s in index.skipped]
    written = 0
    nbytes = 0
    start = time.perf_counter()
    for path, kind in tqdm(jobs, desc=f"pack {index.name} @{size}", unit="img", disable=not progress):
        rel = Path(index.relative(path))
        try:
            img = _shrink(load_image(path, "RGB" if kind == "photo" else "L"), size)
        except UnreadableImageError:
            skipped.append(str(path))
            continue
        if kind == "photo":
            target = folder / (rel if rel.suffix.lower() in (".jpg", ".jpeg") else rel.with_suffix(".jpg"))
            target.parent.mkdir(parents=True, exist_ok=True)
            img.save(target, "JPEG", quality=quality)
        else:
            target = folder / rel.with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            img.save(target, "PNG", optimize=False)
        written += 1
        nbytes += target.stat().st_size
    # the category map, and the photo split of the instance protocol: without it the copy would
    # get a seeded photo split, another split than the source's
    for name in (CATEGORY_MAP_FILE, PHOTO_SPLIT_FILE):
        if (index.root / name).is_file():
            (folder / name).write_text((index.root / name).read_text())
    return {
        "size": size,
        "photo_quality": quality,
        "photos": len(index.photos),
        "sketches": len(index.sketches),
        "written": written,
        "skipped": len(skipped),
        "skipped_files": skipped,
        "bytes": nbytes,
        "seconds": round(time.perf_counter() - start, 2),
    }
