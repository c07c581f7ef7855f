"""Quick, Draw! doodles in Google's ``numpy_bitmap`` format, read as sketches of Sketchy categories.

A folder such as ``../shared/data/quickdraw5`` holds ``<class>.npy`` files, each ``(N, 784)``
uint8 (a 28 x 28 bitmap a row, 0 background, 255 ink), and ``split.json``: the row ranges of
the ``adapt`` and ``test`` parts and ``sketchy_category``, the Sketchy category of each class
(``coffee_cup`` is Sketchy's ``cup``). The arrays are read with ``allow_pickle=False``: a file
that is not a plain uint8 array is refused, never unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from semi3lib.paths import find_dataset_root

BITMAP_SIDE = 28
PARTS = ("adapt", "test")


class QuickDrawError(ValueError):
    """A Quick, Draw! folder that is missing, malformed or asked for what it does not hold."""


@dataclass(frozen=True)
class QuickDraw:
    """One Quick, Draw! folder: its classes, their Sketchy categories and the row range of each part."""

    root: Path
    categories: dict[str, str]  # class -> Sketchy category
    parts: dict[str, tuple[int, int]]  # part -> [start, stop) rows

    @property
    def classes(self) -> list[str]:
        return sorted(self.categories)

    def bitmaps(self, cls: str, part: str, limit: int | None = None) -> np.ndarray:
        """The ``(n, 28, 28)`` uint8 ink bitmaps of ``cls`` in ``part`` (the first ``limit``)."""
        if cls not in self.categories:
            raise QuickDrawError(f"{self.root}: no class {cls!r}; it has {', '.join(self.classes)}")
        if part not in self.parts:
            raise QuickDrawError(f"{self.root}: no part {part!r}; it has {', '.join(self.parts)}")
        path = self.root / f"{cls}.npy"
        try:
            rows = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise QuickDrawError(f"{path}: not a readable numpy array ({err})") from None
        if rows.dtype != np.uint8 or rows.ndim != 2 or rows.shape[1] != BITMAP_SIDE**2:
            raise QuickDrawError(f"{path}: expected (N, {BITMAP_SIDE**2}) uint8 bitmaps, got {rows.dtype} {rows.shape}")
        start, stop = self.parts[part]
        if stop > len(rows):
            raise QuickDrawError(f"{path}: split.json's {part} rows [{start}, {stop}) pass its {len(rows)} rows")
        if limit is not None:
            stop = min(stop, start + limit)
        return np.asarray(rows[start:stop]).reshape(-1, BITMAP_SIDE, BITMAP_SIDE)


    def bitmap(self, cls: str, row: int) -> np.ndarray:
        """The ``(28, 28)`` bitmap in row ``row`` of ``cls``'s file (a record's ``row``)."""
        part = next((p for p, (a, b) in self.parts.items() if a <= row < b), None)
        if part is None:
            raise QuickDrawError(f"{self.root}: row {row} is in no part of split.json")
        return self.bitmaps(cls, part, row - self.parts[part][0] + 1)[-1]


def load_quickdraw(root: str | Path | None = None, name: str = "quickdraw5") -> QuickDraw:
    """Read a Quick, Draw! folder's ``split.json`` (``root`` given, or ``name`` found where the
    datasets are: $SEMI3_DATA, ./data, ../shared/data)."""
    folder = Path(root) if root is not None else find_dataset_root(name)
    meta_path = folder / "split.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QuickDrawError(f"{folder}: no split.json; is this a Quick, Draw! numpy_bitmap folder?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise QuickDrawError(f"{meta_path}: cannot be read as JSON ({err})") from None
    try:
        categories = {str(k): str(v) for k, v in meta["sketchy_category"].items()}
        parts = {p: (int(meta[p][0]), int(meta[p][1])) for p in PARTS}
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        raise QuickDrawError(f"{meta_path}: expected 'sketchy_category' and [start, stop) rows for "
                             f"{' and '.join(PARTS)} ({err!r})") from None
    if any(not 0 <= a < b for a, b in parts.values()):
        raise QuickDrawError(f"{meta_path}: a part's rows are not a [start, stop) range: {parts}")
    missing = [c for c in categories if not (folder / f"{c}.npy").is_file()]
    if missing:
        raise QuickDrawError(f"{folder}: split.json names {', '.join(missing)} but the .npy files are missing")
    return QuickDraw(folder, categories, parts)


def doodle_image(bitmap: np.ndarray) -> Image.Image:
    """A 28 x 28 ink bitmap -> a greyscale sketch (dark ink on white), as a sketch file reads."""
    return Image.fromarray(255 - np.asarray(bitmap, dtype=np.uint8), mode="L")


def parse_classes(text: str, known: Sequence[str]) -> list[str]:
    """``"airplane, shoe"`` -> ``["airplane", "shoe"]``, each checked against ``known``."""
    names = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in names if c not in known]
    if unknown:
        raise QuickDrawError(f"unknown Quick, Draw! class(es) {', '.join(unknown)}; known: {', '.join(known)}")
    return names
