"""Chapter 11's figure: each mechanism's gap to Semi3-Net, seed by seed."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def plot_seed_gaps(gaps: pd.DataFrame, rows: Sequence[str], verdicts: Mapping[str, str] | None = None,
                   labels: Mapping[str, str] | None = None, metric: str = "mAP@all") -> Figure:
    """One line per row of ``gaps`` (:func:`semi3lib.study.why_edgemap.seed_gaps`): each seed's
    gap to Semi3-Net's same seed as a dot (a colour per seed, so seed k can be followed down the
    rows), the mean gap as a bar, zero (Semi3-Net itself) as a line; ``verdicts`` (row -> the
    rule's word) are written at the right."""
    labels, verdicts = labels or {}, verdicts or {}
    present = [r for r in rows if r in set(gaps["run"])]
    seeds = sorted(int(s) for s in gaps["seed"].unique())
    colors = dict(zip(seeds, plt.get_cmap("tab10").colors))
    fig, ax = plt.subplots(figsize=(8.4, 0.6 * max(len(present), 1) + 1.9), layout="constrained")
    for i, row in enumerate(present):
        mine = gaps[gaps["run"] == row]
        mean = mine["gap"].mean()
        ax.barh(i, mean, color="#c6dbef" if mean >= 0 else "#fcbba1", height=0.6)
        for seed, gap in zip(mine["seed"], mine["gap"]):
            ax.plot(gap, i, "o", color=colors[int(seed)], markersize=6)
        if row in verdicts:
            ax.annotate(verdicts[row], (1.01, i), xycoords=("axes fraction", "data"), va="center", fontsize=9)
    ax.axvline(0, color="0.3", linewidth=1)
    reach = float(gaps["gap"].abs().max()) * 1.15 if len(gaps) else 0.01
    ax.set_xlim(-reach, reach)  # symmetric: which side of Semi3-Net a row sits on shows at a glance
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, symmetric=True))  # tick labels that do not overlap
    ax.set_ylim(len(present) - 0.5, -0.5)  # rows top-down, as listed
    ax.set_yticks(range(len(present)), [labels.get(r, r) for r in present])
    ax.set_xlabel(f"{metric} minus Semi3-Net's, same seed (right of 0: taking it out pays)")
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colors[s], label=f"seed {s}") for s in seeds]
    if handles:
        fig.legend(handles=handles, frameon=False, loc="outside lower center", ncol=len(handles), fontsize=9)
    fig.suptitle("The edgemap branch, taken apart: each mechanism out, against Semi3-Net")
    return fig


__all__ = ["plot_seed_gaps"]
