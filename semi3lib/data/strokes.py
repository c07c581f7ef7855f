"""Stroke-width normalisation: the sketch side's answer to "a doodle is not a Sketchy sketch".

A Sketchy sketch is drawn slowly with a thin pen; a Quick, Draw! doodle is a 28 x 28 bitmap whose
strokes, scaled up to the model's size, are blurred bands several pixels wide; a mouse drawing on
the book's page has whatever width its canvas pen has. :func:`normalise_strokes` takes any of them,
already at the model's size (after :func:`~semi3lib.data.transforms.resize_center_crop`), and
redraws its ink as centre lines of one fixed width:

1. ink = pixels darker than :data:`INK_THRESHOLD` (a sketch is dark ink on white);
2. thinning to one-pixel centre lines (Zhang & Suen 1984, the two-subiteration rule);
3. dilation by a ``(2 * radius + 1)`` diamond (``radius`` steps of the 4-neighbour cross);
4. ink 0, paper 255, as a greyscale sketch.

Everything is integer and order-independent within a subiteration, so the browser's port
(``semi3lib/interactive/web/strokes.mjs``) gives the same pixels; ``tests/test_strokes.py``
runs both on the same images. A model trained with ``data.strokes: normalised`` gets it on every
sketch it sees, in training, evaluation, ``semi3 search``, the widget and the page.
"""

from __future__ import annotations

import numpy as np

INK_THRESHOLD = 160  # a greyscale pixel below this is ink: keeps the faint edges of downscaled pen lines
STROKE_RADIUS = 2  # the redrawn stroke is 2 * radius + 1 = 5 px wide at 128 px (measured best: book/doodles)
STROKE_MODES = ("raw", "normalised")


def _neighbours(img: np.ndarray) -> list[np.ndarray]:
    """P2..P9 of Zhang & Suen (north, then clockwise) of every interior pixel of a padded image."""
    c = img
    return [c[:-2, 1:-1], c[:-2, 2:], c[1:-1, 2:], c[2:, 2:], c[2:, 1:-1], c[2:, :-2], c[1:-1, :-2], c[:-2, :-2]]


def thin(ink: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean ink mask to one-pixel-wide centre lines."""
    if ink.ndim != 2:
        raise ValueError(f"expected a 2-D ink mask, got shape {ink.shape}")
    img = np.pad(ink.astype(np.uint8), 1)
    centre = img[1:-1, 1:-1]  # a view: deleting here edits img
    while True:
        changed = False
        for first in (True, False):
            p = _neighbours(img)
            count = sum(x.astype(np.int32) for x in p)
            ring = p + [p[0]]
            transitions = sum(((ring[k] == 0) & (ring[k + 1] == 1)).astype(np.int32) for k in range(8))
            p2, p4, p6, p8 = p[0], p[2], p[4], p[6]
            if first:
                side = ((p2 & p4 & p6) == 0) & ((p4 & p6 & p8) == 0)
            else:
                side = ((p2 & p4 & p8) == 0) & ((p2 & p6 & p8) == 0)
            delete = (centre == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & side
            if delete.any():
                centre[delete] = 0
                changed = True
        if not changed:
            return centre.astype(bool)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``radius`` steps of 4-neighbour growth: a diamond of width ``2 * radius + 1``."""
    out = mask.astype(bool)
    for _ in range(radius):
        grown = out.copy()
        grown[1:, :] |= out[:-1, :]
        grown[:-1, :] |= out[1:, :]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def normalise_strokes(grey: np.ndarray, radius: int = STROKE_RADIUS, threshold: int = INK_THRESHOLD) -> np.ndarray:
    """A greyscale sketch ``(H, W)`` uint8 (ink dark) -> the same drawing redrawn with centre
    lines ``2 * radius + 1`` px wide, uint8, ink 0 and paper 255. A blank sketch stays blank."""
    if grey.dtype != np.uint8 or grey.ndim != 2:
        raise ValueError(f"expected a (H, W) uint8 greyscale sketch, got {grey.dtype} {grey.shape}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    lines = dilate(thin(grey < threshold), radius)
    return np.where(lines, 0, 255).astype(np.uint8)
