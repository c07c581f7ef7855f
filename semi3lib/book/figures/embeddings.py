"""Chapter 7 (embeddings): sketches and photos in a 2-d projection of the embedding space."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from semi3lib.book.figures.common import DOMAIN_COLORS, shorten


def _category_colors(n: int) -> list[Any]:
    """``n`` distinguishable colours (tab10, or tab20 past ten categories)."""
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def scatter_embedding(ax: plt.Axes, xy: np.ndarray, colour_by: np.ndarray, names: Sequence[str],
                      markers: np.ndarray | None = None, colors: Sequence[Any] | None = None,
                      legend: bool = True, point_size: float = 14) -> None:
    """Scatter 2-D points ``(N, 2)`` coloured by an integer code ``(N,)`` whose names are
    ``names``; ``markers`` (``(N,)`` 0/1) draws sketches (``x``) apart from photos (``o``)."""
    colors = list(colors) if colors is not None else _category_colors(len(names))
    marker_kinds = ((0, "o"), (1, "x")) if markers is not None else ((None, "o"),)
    for code, name in enumerate(names):
        for m_code, marker in marker_kinds:
            sel = colour_by == code
            if markers is not None:
                sel &= markers == m_code
            if not sel.any():
                continue
            ax.scatter(xy[sel, 0], xy[sel, 1], s=point_size, marker=marker, color=colors[code], alpha=0.75,
                       linewidths=1.0, label=shorten(name, 16) if m_code in (None, 0) or markers is None else None)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), frameon=False, fontsize=8, markerscale=1.5,
                  loc="center left", bbox_to_anchor=(1.0, 0.5))


def plot_umap_panels(panels: Mapping[str, Mapping[str, np.ndarray]], category_names: Sequence[str],
                     title: str | None = None) -> Figure:
    """UMAP projections side by side (one column per entry, e.g. before/after training), two
    rows: coloured by category (sketches ``x``, photos ``o``) and coloured by domain.

    ``panels[col]`` holds ``xy`` ``(N, 2)``, ``category`` ``(N,)`` codes into
    ``category_names`` and ``is_sketch`` ``(N,)`` bool.
    """
    cols = list(panels)
    fig, axes = plt.subplots(2, len(cols), figsize=(5.2 * len(cols) + 1.8, 9.4), squeeze=False, layout="constrained")
    domain_colors = [DOMAIN_COLORS["photo"], DOMAIN_COLORS["sketch"]]
    for j, col in enumerate(cols):
        panel = panels[col]
        is_sketch = np.asarray(panel["is_sketch"]).astype(int)
        scatter_embedding(axes[0, j], panel["xy"], np.asarray(panel["category"]), category_names,
                          markers=is_sketch, legend=j == len(cols) - 1)
        axes[0, j].set_title(f"{col}\ncoloured by category (x sketch, o photo)", fontsize=11)
        scatter_embedding(axes[1, j], panel["xy"], is_sketch, ["photo", "sketch"], colors=domain_colors,
                          legend=j == len(cols) - 1)
        axes[1, j].set_title(f"{col}\ncoloured by domain", fontsize=11)
    if title:
        fig.suptitle(title)
    return fig

