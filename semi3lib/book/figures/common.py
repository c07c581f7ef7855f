"""What every chapter's figures share: the book's style and colours, :func:`save_figure`
(stable names, atomic writes) and the image helpers.

Images may be PIL images, ``uint8`` arrays ``(H, W)`` / ``(H, W, 3)`` or float tensors
``(3, H, W)`` / ``(1, H, W)`` in [0, 1].
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

# Where save_figure writes by default; the notebooks pass their own folder (a parameter).
FIGURES_DIR = Path("figures")
# Frames of a ranked result: same category as the query, or another.
CORRECT_COLOR = "#1a9850"
WRONG_COLOR = "#d73027"
DOMAIN_COLORS = {"sketch": "#e66101", "photo": "#5e3c99", "edgemap": "#1b7837"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")  # a figure's stable name (see save_figure)

BOOK_STYLE: dict[str, Any] = {
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "savefig.facecolor": "white",
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "figure.titlesize": 13,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "image.interpolation": "nearest",
}


def use_book_style() -> None:
    """Legible defaults for every figure of the book (sizes, grid, no top/right spines)."""
    matplotlib.rcParams.update(BOOK_STYLE)


def save_figure(fig: Figure, name: str, directory: str | Path = FIGURES_DIR) -> Path:
    """Save ``fig`` as ``<directory>/<name>.png`` and return the path.

    ``name`` is the figure's stable identity (lower case, digits, ``_`` and ``-``, e.g.
    ``"05_pr_curves"``): the same name always overwrites the same file, so the book and
    the tests can refer to it. The file is replaced atomically: a figure a reader or the site
    build opens is never half written.
    """
    from semi3lib.io import atomic_write

    if not _NAME.match(name):
        raise ValueError(f"figure name {name!r}: use lower-case letters, digits, '_' and '-' only")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    atomic_write(path, lambda handle: fig.savefig(handle, format="png"))
    return path


def as_image_array(image: Any) -> np.ndarray:
    """A displayable array: ``(H, W)`` or ``(H, W, 3)``, uint8 or float in [0, 1]."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().float().numpy()
        if image.ndim == 3 and image.shape[0] in (1, 3):
            image = np.transpose(image, (1, 2, 0))
        image = np.clip(image, 0.0, 1.0)
    else:
        image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return image


def show_image(ax: plt.Axes, image: Any) -> None:
    """Draw ``image`` (see the module docstring for the kinds) on ``ax``: grey levels for one
    channel, without ticks or grid."""
    array = as_image_array(image)
    if array.ndim == 2:
        vmax = 255 if array.dtype == np.uint8 else 1.0
        ax.imshow(array, cmap="gray", vmin=0, vmax=vmax)
    else:
        ax.imshow(array)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def frame_axes(ax: plt.Axes, color: str | None, width: float = 4.0) -> None:
    """Frame an image's axes in ``color`` (``None``: no frame)."""
    for spine in ax.spines.values():
        spine.set_visible(color is not None)
        if color is not None:
            spine.set_edgecolor(color)
            spine.set_linewidth(width)


def shorten(text: str, n: int) -> str:
    """``text`` cut to at most ``n`` characters, an ellipsis marking the cut."""
    return text if len(text) <= n else text[: n - 1] + "…"


def image_table(rows: Sequence[Sequence[Any]], col_labels: Sequence[str] | None = None,
                row_labels: Sequence[str] | None = None, cell_size: float = 1.7,
                title: str | None = None) -> Figure:
    """A grid of images: ``rows[i][j]`` at row i, column j (``None`` leaves a cell empty).
    Column labels go on top, row labels on the left."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    label_w = 1.3 if row_labels else 0.0
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(label_w + cell_size * n_cols, 0.5 + cell_size * n_rows),
                             squeeze=False, layout="constrained")
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i, j]
            image = row[j] if j < len(row) else None
            if image is None:
                ax.axis("off")
                continue
            show_image(ax, image)
            frame_axes(ax, "#bbbbbb", 0.8)
            if i == 0 and col_labels:
                ax.set_title(col_labels[j], fontsize=10)
            if j == 0 and row_labels:
                ax.set_ylabel(row_labels[i], fontsize=9, rotation=0, ha="right", va="center", labelpad=6)
    if title:
        fig.suptitle(title)
    return fig

