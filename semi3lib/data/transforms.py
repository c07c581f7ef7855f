"""The one image preprocessing shared by training, evaluation and search: shorter side to S,
centre crop, float tensor in [0, 1], one-channel images repeated to 3 channels. Normalisation
(mean/std) belongs to the model, not here."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


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
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f"expected a uint8 (H, W) or (H, W, 3) array, got {image.dtype} {image.shape}")
        image = Image.fromarray(image)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    return to_tensor(resize_center_crop(image, size))
