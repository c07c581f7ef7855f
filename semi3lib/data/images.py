"""Robust image loading for photos and sketches.

Real datasets mix greyscale, palette, RGBA, CMYK and 16-bit files, plus the odd truncated
download. :func:`load_image` turns all of them into 8-bit ``RGB`` or ``L`` and turns every
decoding failure into one exception type, :class:`UnreadableImageError`, that carries the path,
so callers can report, skip and count the file instead of crashing mid-epoch.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
SKETCH_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class UnreadableImageError(ValueError):
    """An image file could not be opened or decoded; ``.path`` names it."""

    def __init__(self, path: str | os.PathLike, reason: str = "") -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"unreadable image {self.path}" + (f": {reason}" if reason else ""))


def _to_8bit(img: Image.Image) -> Image.Image:
    """16/32-bit integer and float greyscale -> ``L``. 16-bit is scaled by 1/257 (full range
    maps to full range) rather than clipped, so a 16-bit scan does not come out all white."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16") or (img.mode == "I" and arr.max(initial=0) > 255):
        arr = arr.astype(np.float32) / 257.0
    elif img.mode == "F" and arr.max(initial=0) <= 1.0:
        arr = arr.astype(np.float32) * 255.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite a transparent image on white: sketches saved with transparent background
    would otherwise turn black where they are empty."""
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def load_image(path: str | os.PathLike, mode: str = "RGB") -> Image.Image:
    """Load any common image file as an 8-bit ``"RGB"`` or ``"L"`` PIL image.

    Handles greyscale, palette (with or without transparency), RGBA/LA (composited on white),
    CMYK and 16-bit images, and applies the EXIF orientation. Raises
    :class:`UnreadableImageError` (with the path) for a missing, truncated or corrupt file.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    try:
        with Image.open(path) as img:
            img.load()  # decode now: a truncated file fails here, inside this try
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                img = _to_8bit(img)
            elif img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
                img.mode == "P" and "transparency" in img.info
            ):
                img = _flatten_alpha(img)
            elif img.mode == "1":
                img = img.convert("L")
            return img.convert(mode)
    except (OSError, ValueError, SyntaxError, struct.error, zlib.error, EOFError,
            Image.DecompressionBombError) as err:
        raise UnreadableImageError(path, f"{type(err).__name__}: {err}") from err
