"""Image -> tensor conversion shared by the datasets and the search engine."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def square_resize(image: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` (bilinear, antialiased), then centre-crop to
    ``size x size``."""
    w, h = image.size
    scale = size / min(w, h)
    if (w, h) != (size, size):
        image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def image_to_tensor(image: Image.Image | np.ndarray, size: int) -> torch.Tensor:
    """A PIL image or uint8 array (``(H, W)`` or ``(H, W, 3)``) as a float tensor
    ``(3, size, size)`` in [0, 1]; single-channel images are replicated to 3 channels."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    array = np.asarray(square_resize(image, size), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array)
    if tensor.ndim == 2:
        tensor = tensor.unsqueeze(0).expand(3, -1, -1)
    else:
        tensor = tensor.permute(2, 0, 1)
    return tensor.contiguous()
