"""Chapter 1 (the data): how the splits and the sketch variants are distributed."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def plot_split_counts(counts: Mapping[str, Mapping[str, int]], title: str = "Items per category") -> Figure:
    """Distribution over categories of the items in each split: ``{split: {category: n}}``
    as one histogram panel per split (125 bars would be unreadable)."""
    names = list(counts)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), squeeze=False, layout="constrained")
    for ax, name in zip(axes[0], names):
        values = np.array(list(counts[name].values()))
        lo, hi = values.min(), values.max()
        bins = np.arange(lo - 0.5, hi + 1.5, max(1, (hi - lo + 1) // 15 or 1))
        ax.hist(values, bins=bins, color="#4575b4", edgecolor="white")
        ax.set_title(f"{name}\n{values.sum():,} in {len(values)} categories", fontsize=10)
        ax.set_xlabel("items per category")
    axes[0, 0].set_ylabel("categories")
    fig.suptitle(title)
    return fig


def plot_histograms(groups: Mapping[str, Sequence[float]], xlabel: str, title: str,
                    bins: int = 30, ax: plt.Axes | None = None, legend: bool = True) -> Figure:
    """Overlaid, density-normalised histograms of several groups on shared bins."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(6.4, 3.8), layout="constrained")
    ax = ax or fig.add_subplot()
    values = [np.asarray(v, dtype=float) for v in groups.values()]
    lo = min(v.min() for v in values if len(v))
    hi = max(v.max() for v in values if len(v))
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
    for (name, _), v in zip(groups.items(), values):
        ax.hist(v, bins=edges, alpha=0.55, density=True, label=f"{name} (n={len(v):,})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(loc="best", frameon=True, framealpha=0.85, fontsize=9)
    return fig


def plot_histogram_panels(table: Any, by: str, columns: Mapping[str, str], title: str) -> Figure:
    """One panel per column of a DataFrame (``{column: axis label}``), groups of ``by``
    overlaid as in :func:`plot_histograms`."""
    fig, axes = plt.subplots(1, len(columns), figsize=(5.6 * len(columns), 3.8), squeeze=False, layout="constrained")
    for ax, (column, label) in zip(axes[0], columns.items()):
        groups = {name: group[column].to_numpy() for name, group in table.groupby(by, sort=True)}
        plot_histograms(groups, label, "", ax=ax, legend=False)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    fig.suptitle(title)
    return fig

