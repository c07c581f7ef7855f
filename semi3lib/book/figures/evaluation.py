"""Chapter 5 (evaluation): precision-recall, the ranked photos of a query, the study's seeds."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from semi3lib.book.figures.common import CORRECT_COLOR, WRONG_COLOR, frame_axes, show_image, shorten


def retrieval_grid(queries: Sequence[Any], results: Sequence[Sequence[Any]], correct: np.ndarray,
                   query_labels: Sequence[str] | None = None, scores: np.ndarray | None = None,
                   cell_size: float = 0.9, title: str | None = None) -> Figure:
    """One row per query: the query sketch, then its top-k photos framed green (same
    category as the query) or red (another category). ``correct`` is ``(Q, k)`` bool;
    ``scores`` (optional, ``(Q, k)``) are printed under each photo."""
    correct = np.asarray(correct, dtype=bool)
    n_q, k = correct.shape
    fig, axes = plt.subplots(n_q, k + 1, figsize=(cell_size * (k + 1) + 0.6, cell_size * n_q + 0.7),
                             squeeze=False, layout="constrained")
    for i in range(n_q):
        ax = axes[i, 0]
        show_image(ax, queries[i])
        frame_axes(ax, "black", 2.0)
        label = query_labels[i] if query_labels is not None else "query"
        ax.set_ylabel("\n".join(shorten(line, 14) for line in label.split("\n")), fontsize=9, rotation=0, ha="right", va="center", labelpad=4)
        if i == 0:
            ax.set_title("query", fontsize=10)
        for j in range(k):
            ax = axes[i, j + 1]
            show_image(ax, results[i][j])
            frame_axes(ax, CORRECT_COLOR if correct[i, j] else WRONG_COLOR, 3.5)
            if i == 0:
                ax.set_title(f"#{j + 1}", fontsize=10)
            if scores is not None:
                ax.set_xlabel(f"{scores[i, j]:.2f}", fontsize=8, labelpad=1)
    fig.suptitle(title or "Top-%d photos per query sketch (green: same category, red: other)" % k)
    return fig


def plot_pr_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = "Precision-recall",
                   chance: float | None = None) -> Figure:
    """Mean precision-recall curves, one line per model: ``{name: (recall, precision)}``.
    ``chance`` draws the precision of a random ranking (the share of positives)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6), layout="constrained")
    for name, (recall, precision) in curves.items():
        ax.plot(recall, precision, lw=2, label=name)
    if chance is not None:
        ax.axhline(chance, color="gray", ls=":", lw=1.5, label=f"chance ({chance:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.legend(loc="upper right", frameon=False)
    return fig


def plot_study(runs: Any, metric: str = "mAP@all", title: str = "", reference: str | None = None) -> Figure:
    """One line per study row, best mean on top: each seed's ``metric`` as a dot, the mean as
    a bar. ``runs`` is :func:`semi3lib.study.records.load_study`'s table (columns ``run``,
    ``seed``, ``metric``). With ``reference`` (a row name) a dashed line marks that row's
    mean, so what beats it stands out."""
    values = {name: group[metric].astype(float).to_numpy() for name, group in runs.groupby("run", sort=False)}
    names = sorted(values, key=lambda name: -values[name].mean())
    top = max(float(v.max()) for v in values.values())
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(names) + 1.4), layout="constrained")
    for i, name in enumerate(names):
        v = values[name]
        ax.barh(i, v.mean(), color="#c6dbef", height=0.6)
        ax.plot(v, np.full(len(v), i), "o", color="#08519c", markersize=4)
        label = f"{v.mean():.3f}" + (f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else "")
        ax.text(v.max() + 0.01 * top, i, f" {label}", va="center", fontsize=8)
    if reference is not None and reference in values:
        ax.axvline(values[reference].mean(), color="0.3", linestyle="--", linewidth=1, label=f"{reference} (mean)")
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} (dots: seeds; bars: mean)")
    ax.set_xlim(0, max(1e-9, top) * 1.3)
    ax.set_title(title)
    return fig



def doodle_grids(doodles: Sequence[Any], examples: Mapping[str, Sequence[Mapping[str, Any]]],
                 photo: Callable[[str], Any], top: int = 5) -> Figure:
    """Doodle queries with their top photos, one block of rows per model, stacked so that the
    figure stays six images wide (``examples``: model name -> a record's ``examples``, the same
    doodles in the same order): the doodle, then its top photos framed green (its category) or red."""
    n_q = len(doodles)
    fig = plt.figure(layout="constrained", figsize=(0.7 * (top + 1) + 0.9, (0.75 * n_q + 0.35) * len(examples)))
    for block, (subfig, (name, shown)) in enumerate(zip(np.atleast_1d(fig.subfigures(len(examples), 1)),
                                                        examples.items())):
        axes = subfig.subplots(n_q, top + 1, squeeze=False)
        subfig.suptitle(name, fontsize=10)
        for i, example in enumerate(shown):
            show_image(axes[i, 0], doodles[i])
            frame_axes(axes[i, 0], "black", 2.0)
            axes[i, 0].set_ylabel(example["class"].replace("_", " "), fontsize=9, rotation=0, ha="right",
                                  va="center", labelpad=4)
            for j in range(top):
                show_image(axes[i, j + 1], photo(example["photos"][j]))
                frame_axes(axes[i, j + 1], CORRECT_COLOR if example["hits"][j] else WRONG_COLOR, 3.0)
    return fig
