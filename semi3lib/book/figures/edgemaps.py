"""Chapter 2 (edgemaps): retrieval with each edgemap method and what each costs."""

from __future__ import annotations

from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def plot_metric_bars(values: Mapping[str, Mapping[str, float]], title: str, ylabel: str = "",
                     value_fmt: str = "{:.3f}") -> Figure:
    """Grouped bars: ``{group: {series: value}}``, e.g. ``{"mAP@all": {"photo": 0.04, ...}}``,
    each bar labelled with its value."""
    groups = list(values)
    series = list(dict.fromkeys(s for g in groups for s in values[g]))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(5.5, 1.6 * len(groups) * max(1, len(series)) / 2 + 2), 4.2),
                           layout="constrained")
    x = np.arange(len(groups))
    for s_i, name in enumerate(series):
        ys = [values[g].get(name, np.nan) for g in groups]
        bars = ax.bar(x + (s_i - (len(series) - 1) / 2) * width, ys, width, label=name)
        ax.bar_label(bars, labels=[value_fmt.format(y) if np.isfinite(y) else "" for y in ys], fontsize=8, padding=2)
    ax.set_xticks(x, groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.margins(y=0.15)
    ax.legend(frameon=False, ncols=min(4, len(series)), loc="upper left")
    return fig


def plot_speed(seconds_per_image: Mapping[str, float], title: str = "Edgemap extraction speed") -> Figure:
    """Horizontal bars: milliseconds per image for each method."""
    names = list(seconds_per_image)
    ms = [1000 * seconds_per_image[n] for n in names]
    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.55 * len(names)), layout="constrained")
    bars = ax.barh(names, ms, color="#74add1")
    ax.bar_label(bars, labels=[f"{m:.1f} ms" for m in ms], padding=3, fontsize=9)
    ax.set_xlabel("milliseconds per 256x256 photo (one CPU thread)")
    ax.set_title(title)
    ax.margins(x=0.2)
    ax.invert_yaxis()
    return fig

