"""Chapter 9 (the bridge): where the edgemap branch should help, as gaps to the two-branch network."""

from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from semi3lib.book.figures.common import DOMAIN_COLORS


def plot_bridge_gaps(gaps: Any, settings: Sequence[str], metric: str = "mAP@all") -> Figure:
    """Where the edgemap bridge should help: per setting (x), each row's ``metric`` minus the
    two-branch network's, seed by seed (dots, same seed paired) and their mean (a bar).
    ``gaps`` is :func:`semi3lib.study.bridge.gaps_to_baseline`'s table; a setting without runs gets
    an empty slot marked "not run yet", so the figure's layout does not depend on progress."""
    rows = {"semi3net": ("Semi3-Net", DOMAIN_COLORS["edgemap"]),
            "no-edgemap-branch": ("without the edgemap branch", DOMAIN_COLORS["photo"])}
    fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
    width = 0.36
    for k, (row, (label, color)) in enumerate(rows.items()):
        offset = (k - 0.5) * width
        labelled = False
        for i, setting in enumerate(settings):
            v = gaps[(gaps["setting"] == setting) & (gaps["row"] == row)]["gap"].to_numpy(float)
            if not len(v):
                continue
            ax.bar(i + offset, v.mean(), width * 0.9, color=color, alpha=0.35, label=None if labelled else label)
            labelled = True
            ax.plot(np.full(len(v), i + offset), v, "o", color=color, markersize=5)
            below = v.mean() < 0
            ax.annotate(f"{v.mean():+.3f}", (i + offset, v.min() if below else v.max()), xytext=(0, -4 if below else 4),
                        textcoords="offset points", ha="center", va="top" if below else "bottom", fontsize=8)
    values = gaps["gap"].to_numpy(float)
    low, high = min(0.0, *values) if len(values) else -0.01, max(0.0, *values) if len(values) else 0.01
    pad = max(high - low, 0.01) * 0.2
    ax.set_ylim(low - pad, high + pad)
    for i, setting in enumerate(settings):
        if setting not in set(gaps["setting"]):
            ax.text(i, 0, "not run yet", ha="center", va="center", fontsize=9, color="0.4",
                    bbox={"facecolor": "white", "edgecolor": "none"})
    ax.axhline(0, color="0.2", linewidth=1, zorder=0)
    ax.set_xticks(range(len(settings)), [s.replace(", ", ",\n", 1) for s in settings])
    ax.set_xlim(-0.6, len(settings) - 0.4)
    ax.set_ylabel(f"{metric} minus the two-branch network's")
    ax.set_title("Gap to the two-branch network, seed by seed (dots) and mean (bars)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, loc="best", fontsize=9)
    return fig

