"""Chapter 10's figures: the fine-grained study seed by seed, how far down the own photo sits
(acc@K for every K) and what the model returned for a few sketches."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from semi3lib.book.figures.common import CORRECT_COLOR, WRONG_COLOR, frame_axes, show_image

SAME_CATEGORY_COLOR = "#bdbdbd"  # a photo of the query's category, not its own


def plot_seed_scores(runs: pd.DataFrame, rows: Sequence[str], targets: Mapping[str, float],
                     labels: Mapping[str, str] | None = None) -> Figure:
    """One panel per metric of ``targets`` (acc@1, acc@10): each row's seeds as dots (a colour
    per seed, so seed k can be followed across rows), its mean as a bar, the target dashed."""
    labels = labels or {}
    present = [r for r in rows if r in set(runs["run"])]
    seeds = sorted(int(s) for s in runs["seed"].unique())
    colors = dict(zip(seeds, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets) + 1.5, 0.55 * len(present) + 1.6),
                             sharey=True, layout="constrained", squeeze=False)
    for ax, (metric, target) in zip(axes[0], targets.items()):
        for i, row in enumerate(present):
            mine = runs[runs["run"] == row]
            ax.barh(i, mine[metric].mean(), color="#c6dbef", height=0.6)
            for seed, value in zip(mine["seed"], mine[metric]):
                ax.plot(value, i, "o", color=colors[int(seed)], markersize=6)
        ax.axvline(target, color="0.3", linestyle="--", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"{metric} (dots: seeds; bars: mean)")
    axes[0, 0].set_yticks(range(len(present)), [labels.get(r, r) for r in present])
    axes[0, 0].invert_yaxis()
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colors[s], label=f"seed {s}") for s in seeds]
    handles.append(plt.Line2D([], [], color="0.3", linestyle="--", linewidth=1,
                              label="target: " + ", ".join(f"{m} {t:.2f}" for m, t in targets.items())))
    fig.legend(handles=handles, frameon=False, loc="outside lower center", ncol=len(handles), fontsize=9)
    fig.suptitle("Find this photo: each seed against the 200 test photos")
    return fig


def plot_rank_curves(curves: pd.DataFrame, rows: Sequence[str], labels: Mapping[str, str] | None = None,
                     gallery: int = 200) -> Figure:
    """acc@K against K (log scale), one line per row (:func:`semi3lib.study.fine_grained.rank_curves`):
    the share of test sketches whose own photo is among the first K. The dotted line is chance
    (K / gallery)."""
    labels = labels or {}
    fig, ax = plt.subplots(figsize=(6.8, 4.4), layout="constrained")
    for row in [r for r in rows if r in set(curves["run"])]:
        mine = curves[curves["run"] == row]
        seeds = int(mine["seeds"].iloc[0])
        ax.plot(mine["K"], mine["acc@K"], lw=2, label=f"{labels.get(row, row)} ({seeds} seed{'s' * (seeds != 1)})")
    ks = np.arange(1, gallery + 1)
    ax.plot(ks, ks / gallery, ":", color="gray", lw=1.5, label="chance")
    for k in (1, 10):
        ax.axvline(k, color="0.85", lw=1, zorder=0)
    ax.set_xscale("log")
    ax.set_xlim(1, gallery)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("K (the own photo among the first K of the gallery)")
    ax.set_ylabel("acc@K (share of test sketches)")
    ax.legend(frameon=False, loc="upper left", fontsize=9)
    return fig


def instance_grid(examples: Sequence[Mapping[str, Any]], image: Callable[[str], Any], top: int = 5) -> Figure:
    """One row per example query (a record's ``examples``): the sketch, then its top photos;
    the own photo framed green, another photo of the same category grey, another category red.
    Each row is labelled with the own photo's rank."""
    n = len(examples)
    fig, axes = plt.subplots(n, top + 1, figsize=(0.8 * (top + 1) + 1.2, 0.8 * n + 0.6), squeeze=False,
                             layout="constrained")
    for i, example in enumerate(examples):
        show_image(axes[i, 0], image(example["query"]))
        frame_axes(axes[i, 0], "black", 2.0)
        axes[i, 0].set_ylabel(f"{example['category'].replace('_', ' ')}\nown photo #{example['rank']}", fontsize=8,
                              rotation=0, ha="right", va="center", labelpad=4)
        category = example["query"].split("/")[-2]
        for j, path in enumerate(example["top"][:top]):
            show_image(axes[i, j + 1], image(path))
            color = (CORRECT_COLOR if path == example["own"]
                     else SAME_CATEGORY_COLOR if path.split("/")[-2] == category else WRONG_COLOR)
            frame_axes(axes[i, j + 1], color, 3.5)
            if i == 0:
                axes[i, j + 1].set_title(f"#{j + 1}", fontsize=10)
        if i == 0:
            axes[i, 0].set_title("sketch", fontsize=10)
    fig.suptitle(f"Top-{top} photos per sketch (green: its own photo; grey: same category; red: other)", fontsize=10)
    return fig


__all__ = ["instance_grid", "plot_rank_curves", "plot_seed_scores"]
