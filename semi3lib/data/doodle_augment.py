"""Doodle-like augmentation: make a careful Sketchy sketch look like a 20-second Quick, Draw! doodle.

What separates the two (see ``../shared/data/quickdraw5/README.md`` and the book's doodle section):
a doodle has fewer strokes, looser proportions and placement, and reaches the model through a
28 x 28 bitmap, so its fine detail is gone. :func:`doodle_like` imitates each, at random:

- **affine jitter**: rotation, anisotropic scale, shear and shift;
- **stroke erasure**: a few discs of paper laid over the drawing remove parts of strokes;
- **28 px rendering**: ink thickened, reduced to 28 x 28 by area and scaled back (bicubic), as
  a Quick, Draw! bitmap reads at the model's size;
- **thinning or thickening** of the ink by one pixel.

The randomness comes only from the generator passed in (seeded per item by the dataset), so a
training run stays reproducible.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

BITMAP_SIDE = 28

P_AFFINE = 0.8
P_ERASE = 0.5
P_RENDER_28 = 0.5
P_WIDTH = 0.3


def affine_jitter(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Rotate up to 12 degrees, scale each axis by 0.75-1.1, shear up to 0.15, shift up to 8 %."""
    size = img.size[0]
    angle = math.radians(rng.uniform(-12, 12))
    sx, sy = rng.uniform(0.75, 1.1, size=2)
    shear = rng.uniform(-0.15, 0.15)
    tx, ty = rng.uniform(-0.08, 0.08, size=2) * size
    cos, sin = math.cos(angle), math.sin(angle)
    # forward map A = R @ Shear @ Scale; PIL wants the inverse, about the centre
    a = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1, shear], [0, 1]]) @ np.diag([sx, sy])
    inv = np.linalg.inv(a)
    c = np.array([size / 2, size / 2])
    offset = c - inv @ (c + np.array([tx, ty]))
    coeffs = (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1])
    return img.transform(img.size, Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR, fillcolor=255)


def erase_strokes(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Lay 1-3 paper-coloured discs (radius 6-14 % of the side) over the drawing."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    size = img.size[0]
    for _ in range(int(rng.integers(1, 4))):
        x, y = rng.uniform(0.15, 0.85, size=2) * size
        r = rng.uniform(0.06, 0.14) * size
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return out


def render_28(img: Image.Image) -> Image.Image:
    """As a Quick, Draw! bitmap reads at this size: ink thickened, 28 x 28 by area, back by bicubic."""
    size = img.size[0]
    thick = img.filter(ImageFilter.MinFilter(max(3, (size // BITMAP_SIDE) | 1)))
    small = thick.resize((BITMAP_SIDE, BITMAP_SIDE), Image.Resampling.BOX)
    return small.resize((size, size), Image.Resampling.BICUBIC)


def doodle_like(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A greyscale sketch at the model's size (ink dark) -> a doodle-like version of it."""
    if img.mode != "L" or img.size[0] != img.size[1]:
        raise ValueError(f"expected a square greyscale sketch, got mode {img.mode} size {img.size}")
    draws = rng.random(5)
    if draws[0] < P_AFFINE:
        img = affine_jitter(img, rng)
    if draws[1] < P_ERASE:
        img = erase_strokes(img, rng)
    if draws[2] < P_RENDER_28:
        img = render_28(img)
    if draws[3] < P_WIDTH:
        img = img.filter(ImageFilter.MinFilter(3) if draws[4] < 0.5 else ImageFilter.MaxFilter(3))
    return img
