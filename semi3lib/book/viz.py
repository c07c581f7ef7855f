"""Figures for the book: one saving helper with stable names, and the plots the notebooks show.

Every figure is drawn here and saved by :func:`save_figure` under ``figures/<name>.png``
(the folder is a notebook parameter, so a smoke run can write elsewhere). Notebooks call
these functions; they do not carry plotting code of their own.

Images may be PIL images, ``uint8`` arrays ``(H, W)`` / ``(H, W, 3)`` or float tensors
``(3, H, W)`` / ``(1, H, W)`` in [0, 1].
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

FIGURES_DIR = Path("figures")
CORRECT_COLOR = "#1a9850"
WRONG_COLOR = "#d73027"
DOMAIN_COLORS = {"sketch": "#e66101", "photo": "#5e3c99", "edgemap": "#1b7837"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")

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


def _show(ax: plt.Axes, image: Any) -> None:
    array = as_image_array(image)
    if array.ndim == 2:
        vmax = 255 if array.dtype == np.uint8 else 1.0
        ax.imshow(array, cmap="gray", vmin=0, vmax=vmax)
    else:
        ax.imshow(array)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _frame(ax: plt.Axes, color: str | None, width: float = 4.0) -> None:
    for spine in ax.spines.values():
        spine.set_visible(color is not None)
        if color is not None:
            spine.set_edgecolor(color)
            spine.set_linewidth(width)


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
            _show(ax, image)
            _frame(ax, "#bbbbbb", 0.8)
            if i == 0 and col_labels:
                ax.set_title(col_labels[j], fontsize=10)
            if j == 0 and row_labels:
                ax.set_ylabel(row_labels[i], fontsize=9, rotation=0, ha="right", va="center", labelpad=6)
    if title:
        fig.suptitle(title)
    return fig


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
        _show(ax, queries[i])
        _frame(ax, "black", 2.0)
        label = query_labels[i] if query_labels is not None else "query"
        ax.set_ylabel("\n".join(_short(line, 14) for line in label.split("\n")), fontsize=9, rotation=0, ha="right", va="center", labelpad=4)
        if i == 0:
            ax.set_title("query", fontsize=10)
        for j in range(k):
            ax = axes[i, j + 1]
            _show(ax, results[i][j])
            _frame(ax, CORRECT_COLOR if correct[i, j] else WRONG_COLOR, 3.5)
            if i == 0:
                ax.set_title(f"#{j + 1}", fontsize=10)
            if scores is not None:
                ax.set_xlabel(f"{scores[i, j]:.2f}", fontsize=8, labelpad=1)
    fig.suptitle(title or "Top-%d photos per query sketch (green: same category, red: other)" % k)
    return fig


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


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


def plot_training_curves(history: Sequence[Mapping[str, Any]], metric: str = "mAP@all",
                         title: str | None = None, steps: Sequence[Mapping[str, Any]] | None = None) -> Figure:
    """Left: every ``loss_*`` term (the hybrid loss's parts and their sum), per epoch from
    ``history`` or, when the run's per-step log is given (``steps``, rows of
    :func:`semi3lib.engine.train.read_steps`), per logged step with the epoch ends dotted; right:
    the query-split ``metric`` at the epochs where it was evaluated."""
    epochs = [row["epoch"] for row in history]
    rows = steps if steps else history
    # A term that is 0 throughout was switched off: leave it out.
    loss_keys = [k for k in rows[0] if k.startswith("loss_") and any(row.get(k) for row in rows)] if rows else []
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    xs = [row["step"] for row in steps] if steps else epochs
    for key in loss_keys:
        values = [row.get(key, np.nan) for row in rows]
        style = {"lw": 2.6, "color": "black"} if key in ("loss_total", "loss_loss") else {"lw": 1.8}
        ax_loss.plot(xs, values, marker="." if steps else "o", label=key.removeprefix("loss_"), **style)
    if steps:
        for row in history:
            ax_loss.axvline(row["step"], color="0.6", lw=0.8, ls=":")
        ax_loss.set_xlabel("step (dotted: end of an epoch)")
        ax_loss.set_ylabel("mean loss since the previous point")
    else:
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("mean loss over the epoch")
        ax_loss.set_xticks(epochs)
    ax_loss.set_title("Hybrid loss terms")
    if loss_keys:
        ax_loss.legend(frameon=False)
    evaluated = [(row["epoch"], row["query"][metric]) for row in history if metric in row.get("query", {})]
    if evaluated:
        ex, ey = zip(*evaluated)
        ax_metric.plot(ex, ey, marker="o", lw=2, color="#2c7bb6", label="query split")
        for x, y in evaluated:
            ax_metric.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=9)
        ax_metric.set_ylim(0, max(1e-3, max(ey)) * 1.25)
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel(metric)
    only_last = len(evaluated) == 1 and evaluated[0][0] == epochs[-1]
    ax_metric.set_title(f"Retrieval {metric} after the last epoch (scored only then)" if only_last
                        else f"Retrieval {metric} during training")
    ax_metric.set_xticks(epochs)
    if title:
        fig.suptitle(title)
    return fig


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


def plot_study(runs: Any, metric: str = "mAP@all", title: str = "", reference: str | None = None) -> Figure:
    """One line per study row, best mean on top: each seed's ``metric`` as a dot, the mean as
    a bar. ``runs`` is :func:`semi3lib.study.reporting.load_study`'s table (columns ``run``,
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


def plot_channel_weights(weights: np.ndarray, row_labels: Sequence[str], channels: Sequence[int],
                         title: str = "Co-attention channel weights") -> Figure:
    """Heatmap of mean channel weights ``(R, len(channels))``: rows (categories) against the
    channels shown (their indices on the x axis)."""
    weights = np.asarray(weights)
    fig, ax = plt.subplots(figsize=(min(16, 2.5 + 0.28 * weights.shape[1]), 1.2 + 0.36 * weights.shape[0]),
                           layout="constrained")
    im = ax.imshow(weights, aspect="auto", cmap="viridis", vmin=0, vmax=max(1e-6, float(weights.max())))
    ax.set_yticks(range(len(row_labels)), [_short(r, 18) for r in row_labels])
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
        _show(axes[i, 0], photo)
        axes[i, 0].set_ylabel(_short(row_labels[i], 14), fontsize=9, rotation=0, ha="right", va="center")
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


def _category_colors(n: int) -> list[Any]:
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
                       linewidths=1.0, label=_short(name, 16) if m_code in (None, 0) or markers is None else None)
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


def _bar_labels(ax: plt.Axes, bars: Any, labels: Sequence[str], fontsize: int = 9) -> None:
    ax.bar_label(bars, labels=labels, padding=3, fontsize=fontsize)


def plot_eval_benchmark(result: Mapping[str, Any], target_speedup: float = 20.0,
                        target_memory_mb: float = 2048.0) -> Figure:
    """Evaluation benchmark (``results/benchmarks/eval.json``): wall time of the chunked
    metrics against the per-query scikit-learn loop (log scale, speed-ups written on the
    bars, the target time dashed), and the memory each adds at its peak."""
    ours, ref = result["ours"], result["reference"]
    names = ["ours\nmAP@all + P@200", "ours\nall 6 metrics", "scikit-learn loop\n(scaled)",
             "per-query matvec\n+ scikit-learn (scaled)"]
    seconds = [ours["seconds"], result["ours_all_metrics"]["seconds"], ref["scaled_seconds"],
               ref["scaled_seconds_per_query_matvec_loop"]]
    colors = ["#1b7837", "#5aae61", "#9970ab", "#c2a5cf"]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11.5, 4.4), width_ratios=[1.6, 1], layout="constrained")
    bars = ax_t.bar(names, seconds, color=colors)
    _bar_labels(ax_t, bars, [f"{s:.1f} s" + ("" if i else f"\n{ref['scaled_seconds'] / s:.1f}x faster")
                             for i, s in enumerate(seconds)])
    ax_t.axhline(ref["scaled_seconds"] / target_speedup, color="k", ls="--", lw=1)
    ax_t.text(-0.4, ref["scaled_seconds"] / target_speedup * 0.93, f"target: {target_speedup:g}x faster",
              ha="left", va="top", fontsize=9, bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    ax_t.set_yscale("log")
    ax_t.set_ylim(min(seconds) / 3, max(seconds) * 2.5)
    ax_t.set_ylabel("seconds (log scale)")
    cfg = result["config"]
    ax_t.set_title(f"mAP@all + P@200: {cfg['queries']:,} queries x {cfg['gallery']:,} gallery, {cfg['dim']}-d")
    ax_t.tick_params(axis="x", labelsize=9)
    mem = [ours["peak_rss_increase_mb"], ref["peak_rss_increase_mb"]]
    bars = ax_m.bar(["ours", "scikit-learn\nloop"], mem, color=[colors[0], colors[2]], width=0.55)
    _bar_labels(ax_m, bars, [f"+{m:.0f} MB" for m in mem])
    ax_m.axhline(target_memory_mb, color="k", ls="--", lw=1)
    ax_m.text(1.3, target_memory_mb, f"target: < {target_memory_mb / 1024:g} GB", ha="right", va="bottom", fontsize=9)
    ax_m.set_ylim(0, target_memory_mb * 1.15)
    ax_m.set_ylabel("peak memory added (MB)")
    ax_m.set_title("Peak memory above the inputs")
    return fig


SEARCH_BACKEND_COLORS = {"exact": "#d73027", "faiss-flat": "#fc8d59", "faiss-ivf": "#4575b4",
                         "faiss-hnsw": "#91bfdb"}


def plot_search_benchmark(result: Mapping[str, Any], target_ms: float = 50.0) -> Figure:
    """Search benchmark (``results/benchmarks/search.json``): median top-10 latency of one
    query against gallery size per backend (log-log, the target dashed; hollow markers: the
    wider embedding at the largest size), and recall@10 of the approximate backends."""
    dim = result["config"]["dim"]
    runs = sorted((r for r in result["runs"] if r["dim"] == dim), key=lambda r: r["gallery"])
    extra = [r for r in result["runs"] if r["dim"] != dim]
    backends = list(dict.fromkeys(b for r in runs for b in r["backends"]))
    fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(11.5, 4.4), width_ratios=[1.5, 1], layout="constrained")
    for b in backends:
        xs = [r["gallery"] for r in runs if b in r["backends"]]
        ys = [r["backends"][b]["median_ms"] for r in runs if b in r["backends"]]
        color = SEARCH_BACKEND_COLORS.get(b)
        ax_l.plot(xs, ys, "o-", color=color, label=b, lw=2)
        for r in extra:
            if b in r["backends"]:
                ax_l.plot(r["gallery"], r["backends"][b]["median_ms"], "o", mfc="white", mec=color, mew=2)
        if any("recall@10" in r["backends"].get(b, {}) for r in runs):
            rx = [r["gallery"] for r in runs if "recall@10" in r["backends"].get(b, {})]
            ry = [r["backends"][b]["recall@10"] for r in runs if "recall@10" in r["backends"].get(b, {})]
            ax_r.plot(rx, ry, "o-", color=color, label=b, lw=2)
    ax_l.axhline(target_ms, color="k", ls="--", lw=1)
    ax_l.text(runs[0]["gallery"], target_ms * 1.12, f"target {target_ms:g} ms", fontsize=9)
    ax_l.set(xscale="log", yscale="log", xlabel="gallery size (embeddings)", ylabel="median latency (ms, log)")
    ax_l.set_title(f"Top-10 for one query, {dim}-d embeddings")
    forward = result.get("forward")
    if forward:
        ax_l.text(0.98, 0.03, f"+ sketch forward pass: {forward['median_ms']:.1f} ms",
                  transform=ax_l.transAxes, ha="right", fontsize=9)
    ax_r.set(xscale="log", xlabel="gallery size (embeddings)", ylabel="recall@10 vs exact", ylim=(0, 1.05))
    ax_r.set_title("Recall against the exact top-10")
    handles, labels = ax_l.get_legend_handles_labels()
    if extra:
        handles.append(matplotlib.lines.Line2D([], [], marker="o", ls="", mfc="white", mec="0.3", mew=2))
        labels.append(f"{extra[0]['dim']}-d embeddings")
    ax_r.legend(handles, labels, loc="lower left", fontsize=9, title="backend (both panels)", title_fontsize=9)
    return fig


def plot_train_benchmark(result: Mapping[str, Any]) -> Figure:
    """Training benchmark (``results/benchmarks/train_step.json``): triplets per second per
    backbone, image size and precision mode, with synthetic in-memory input, with the real
    data loader, and what the loader alone delivers (log scale)."""
    runs = result["runs"]
    labels = [f"{r['backbone']}\n{r['size']} px" + ("" if r["mode"] == "fp32-eager" else f"\n{r['mode']}")
              for r in runs]
    series = {"synthetic input": [r["synthetic"]["triplets_per_sec"] for r in runs]}
    if all("loader" in r for r in runs):
        series["real data loader"] = [r["loader"]["triplets_per_sec"] for r in runs]
        series["data loader alone"] = [r["loader_only"]["triplets_per_sec"] for r in runs]
    colors = ["#4575b4", "#fdae61", "#bababa"]
    x = np.arange(len(runs))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.9 * len(runs) + 2), 4.6), layout="constrained")
    for i, ((name, values), color) in enumerate(zip(series.items(), colors)):
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name, color=color)
        _bar_labels(ax, bars, [f"{v:.3g}" for v in values], fontsize=8)
    ax.set_xticks(x, labels)
    ax.set_yscale("log")
    ax.set_ylim(top=max(max(v) for v in series.values()) * 4)
    ax.set_ylabel("triplets per second (log scale)")
    batch = runs[0]["batch"]
    ax.set_title(f"One training step, batch {batch}, {result['device']}")
    ax.legend(loc="upper right", fontsize=9, ncols=len(series))
    return fig


def plot_edges_benchmark(result: Mapping[str, Any], target_speedup: float = 10.0) -> Figure:
    """Edgemap benchmark (``results/benchmarks/edges.json``): photos per second per method,
    first pass (compute and write) against cached pass (read back), log scale, with the
    speed-up of each method written above its pair."""
    methods = list(result["methods"])
    first = [result["methods"][m]["first_pass"]["photos_per_sec"] for m in methods]
    cached = [result["methods"][m]["cached_pass"]["photos_per_sec"] for m in methods]
    x = np.arange(len(methods))
    fig, ax = plt.subplots(figsize=(7.5, 4.4), layout="constrained")
    b1 = ax.bar(x - 0.2, first, 0.4, label="first pass (decode + compute + write)", color="#fdae61")
    b2 = ax.bar(x + 0.2, cached, 0.4, label="cached pass (read back)", color="#1b7837")
    _bar_labels(ax, b1, [f"{v:,.0f}" for v in first])
    _bar_labels(ax, b2, [f"{v:,.0f}" for v in cached])
    for i, m in enumerate(methods):
        speedup = result["methods"][m]["speedup"]
        ax.text(i, max(first[i], cached[i]) * 1.9, f"{speedup:.0f}x faster", ha="center", fontsize=11,
                fontweight="bold", color="#1b7837" if speedup >= target_speedup else WRONG_COLOR)
    ax.set_xticks(x, [f"{m}\n({', '.join(result['methods'][m]['cache_files'])}, "
                      f"{result['methods'][m]['cache_kb_per_photo']:.0f} KB/photo)" for m in methods])
    ax.set_yscale("log")
    ax.set_ylim(top=max(cached + first) * 5)
    ax.set_ylabel("photos per second (log scale)")
    ax.set_title(f"Edgemaps of {result['config']['photos']:,} photos, one process "
                 f"(target: cached >= {target_speedup:g}x)")
    ax.legend(loc="upper left", fontsize=9)
    return fig


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
