"""The one image preprocessing shared by training, evaluation and search: shorter side to S,
centre crop, float tensor in [0, 1], one-channel images repeated to 3 channels. Normalisation
(mean/std) belongs to the model, not here. A sketch of a model trained with
``data.strokes: normalised`` is also redrawn with strokes of one width
(:func:`semi3lib.data.strokes.normalise_strokes`) after the crop."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from semi3lib.data.strokes import STROKE_MODES, normalise_strokes


def resize_center_crop(img: Image.Image, size: int) -> Image.Image:
    """Shorter side to ``size`` (bicubic, antialiased), then a centre ``size`` x ``size`` crop."""
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL ``RGB`` or ``L`` -> (3, H, W) float in [0, 1] (``L`` repeated to 3 channels).
    Converted in numpy: torch's multi-threaded elementwise ops cost milliseconds on tensors
    this small when DataLoader workers compete for the cores."""
    arr = np.asarray(img, dtype=np.float32) * np.float32(1.0 / 255.0)
    arr = np.repeat(arr[None], 3, axis=0) if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))
    return torch.from_numpy(arr)


def image_to_tensor(image: Image.Image | np.ndarray, size: int) -> torch.Tensor:
    """A photo (PIL RGB / (H, W, 3) uint8), sketch or edgemap (PIL L / (H, W) uint8) ->
    (3, size, size) float in [0, 1], exactly as the Datasets prepare them."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image_to_uint8(image))
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    return to_tensor(resize_center_crop(image, size))


def prepare_sketch(sketch: Image.Image, strokes: str = "raw") -> Image.Image:
    """A greyscale sketch already at the model's size -> what the model sees: itself (``raw``)
    or redrawn with strokes of one width (``normalised``)."""
    if strokes not in STROKE_MODES:
        raise ValueError(f"strokes must be one of {', '.join(STROKE_MODES)}, got {strokes!r}")
    if strokes == "raw":
        return sketch
    return Image.fromarray(normalise_strokes(np.asarray(sketch.convert("L"))), mode="L")


def sketch_to_tensor(image: Image.Image | np.ndarray, size: int, strokes: str = "raw") -> torch.Tensor:
    """A sketch in any mode or size -> (3, size, size) float in [0, 1], as query sketches are
    prepared in evaluation, ``semi3 search``, the widget and (ported) the book's page."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image_to_uint8(image))
    return to_tensor(prepare_sketch(resize_center_crop(image.convert("L"), size), strokes))


def image_to_uint8(image: np.ndarray) -> np.ndarray:
    """Check that an array is a uint8 image, (H, W) or (H, W, 3)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 (H, W) or (H, W, 3) array, got {image.dtype} {image.shape}")
    return image
