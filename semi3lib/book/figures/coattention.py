"""Chapter 6 (co-attention): the channel weights and where the recalibrated activations fall."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from semi3lib.book.figures.common import as_image_array, show_image, shorten


def plot_channel_weights(weights: np.ndarray, row_labels: Sequence[str], channels: Sequence[int],
                         title: str = "Co-attention channel weights") -> Figure:
    """Heatmap of mean channel weights ``(R, len(channels))``: rows (categories) against the
    channels shown (their indices on the x axis)."""
    weights = np.asarray(weights)
    fig, ax = plt.subplots(figsize=(min(16, 2.5 + 0.28 * weights.shape[1]), 1.2 + 0.36 * weights.shape[0]),
                           layout="constrained")
    im = ax.imshow(weights, aspect="auto", cmap="viridis", vmin=0, vmax=max(1e-6, float(weights.max())))
    ax.set_yticks(range(len(row_labels)), [shorten(r, 18) for r in row_labels])
    ax.set_xticks(range(len(channels)), [str(c) for c in channels], rotation=90, fontsize=8)
    ax.set_xlabel("channel")
    ax.grid(False)
    fig.colorbar(im, ax=ax, label="weight s (sigmoid)", shrink=0.9)
    ax.set_title(title)
    return fig


def plot_weight_histogram(weights: np.ndarray, title: str = "Distribution of co-attention weights") -> Figure:
    """Histogram of all channel weights ``(N, C)`` and of their per-channel spread."""
    weights = np.asarray(weights)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    a.hist(weights.ravel(), bins=50, color="#4575b4")
    a.set_xlabel("channel weight s")
    a.set_ylabel("count (pairs x channels)")
    a.set_title("all weights")
    order = np.argsort(weights.mean(0))
    a_mean, a_std = weights.mean(0)[order], weights.std(0)[order]
    b.plot(a_mean, color="black", lw=1.5, label="mean over pairs")
    b.fill_between(np.arange(len(order)), a_mean - a_std, a_mean + a_std, alpha=0.3, label="± 1 std")
    b.set_xlabel("channel (sorted by mean weight)")
    b.set_ylabel("weight s")
    b.set_title("per channel")
    b.legend(frameon=False)
    fig.suptitle(title)
    return fig


def plot_activation_maps(photos: Sequence[Any], maps: Mapping[str, np.ndarray], row_labels: Sequence[str],
                         cell_size: float = 1.9, title: str | None = None) -> Figure:
    """Photos with channel-summed activation maps overlaid: one row per photo, one column per
    entry of ``maps`` (``{column title: (N, h, w)}``). Maps in the same row share a colour
    scale so that before/after recalibration can be compared directly."""
    cols = list(maps)
    fig, axes = plt.subplots(len(photos), len(cols) + 1, figsize=(cell_size * (len(cols) + 1) + 1.2,
                                                                   cell_size * len(photos) + 0.6),
                             squeeze=False, layout="constrained")
    for i, photo in enumerate(photos):
        show_image(axes[i, 0], photo)
        axes[i, 0].set_ylabel(shorten(row_labels[i], 14), fontsize=9, rotation=0, ha="right", va="center")
        vmax = max(float(np.max(maps[c][i])) for c in cols) or 1.0
        base = as_image_array(photo)
        height, width = base.shape[:2]
        for j, col in enumerate(cols):
            ax = axes[i, j + 1]
            ax.imshow(base, cmap="gray" if base.ndim == 2 else None, alpha=1.0)
            ax.imshow(maps[col][i], cmap="inferno", alpha=0.6, vmin=0, vmax=vmax,
                      extent=(-0.5, width - 0.5, height - 0.5, -0.5), interpolation="bilinear")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if i == 0:
                ax.set_title(col, fontsize=10)
    if photos:
        axes[0, 0].set_title("input", fontsize=10)
    if title:
        fig.suptitle(title)
    return fig

