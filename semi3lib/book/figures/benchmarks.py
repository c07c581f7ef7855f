"""Chapter 8 (benchmarks): one figure per record under ``results/benchmarks/``."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from semi3lib.book.figures.common import WRONG_COLOR


def _bar_labels(ax: plt.Axes, bars: Any, labels: Sequence[str], fontsize: int = 9) -> None:
    """Write ``labels`` just above ``bars``."""
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
    runs = [r for r in result["runs"] if "synthetic" in r]  # a mode that failed has no times
    labels = [f"{r['backbone']}\n{r['size']} px" + ("" if r["mode"] == "fp32-eager"
                                                     else "\n" + r["mode"].replace("+", "\n+"))
              for r in runs]
    series = {"synthetic input": [r["synthetic"]["triplets_per_sec"] for r in runs]}
    if any("loader" in r for r in runs):  # modes timed without the loader leave a gap
        series["real data loader"] = [r["loader"]["triplets_per_sec"] if "loader" in r else np.nan for r in runs]
        series["data loader alone"] = [r.get("loader_only", {}).get("triplets_per_sec", np.nan) for r in runs]
    colors = ["#4575b4", "#fdae61", "#bababa"]
    x = np.arange(len(runs))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.9 * len(runs) + 2), 4.6), layout="constrained")
    for i, ((name, values), color) in enumerate(zip(series.items(), colors)):
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name, color=color)
        _bar_labels(ax, bars, ["" if np.isnan(v) else f"{v:.3g}" for v in values], fontsize=8)
    ax.set_xticks(x, labels, fontsize=8 if len(runs) > 6 else None)
    ax.set_yscale("log")
    ax.set_ylim(top=np.nanmax([np.nanmax(v) for v in series.values()]) * 4)
    ax.set_ylabel("triplets per second (log scale)")
    batch = runs[0]["batch"]
    ax.set_title(f"One training step, batch {batch}, {result['device']}")
    ax.legend(loc="upper right", fontsize=9, ncols=len(series))
    return fig


def plot_train_flops(result: Mapping[str, Any]) -> Figure:
    """The training benchmark against the machine's limit: per backbone and size (one panel
    each), the FLOP rate each mode's step achieves (FLOPs counted once per step, forward and
    backward, over the synthetic step's time), the fp32 dense-GEMM peak measured in the same
    run dashed, each bar labelled with its share of that peak (at the mode's thread count).
    Modes that failed (or were skipped) say so; emulated bf16 is marked. Needs a result with
    ``achieved_gflops`` (the benchmark writes it since FLOPs are counted)."""
    runs = [r for r in result["runs"] if "achieved_gflops" in r or "error" in r or "skipped" in r]
    if not any("achieved_gflops" in r for r in runs):
        raise ValueError("the training benchmark result has no achieved_gflops: it predates the FLOP count; "
                         "rerun benchmarks/bench_train_step.py")
    configs = list(dict.fromkeys((r["backbone"], r["size"]) for r in runs))
    fig, axes = plt.subplots(1, len(configs), figsize=(6.2 * len(configs), 0.55 * max(
        sum(1 for r in runs if (r["backbone"], r["size"]) == c) for c in configs) + 2.2),
        layout="constrained", squeeze=False)
    baseline = result.get("baseline_mode", "fp32-channels_last")
    for ax, (backbone, size) in zip(axes[0], configs):
        rows = [r for r in runs if (r["backbone"], r["size"]) == (backbone, size)]
        y = np.arange(len(rows))[::-1]
        values = [r.get("achieved_gflops", 0.0) for r in rows]
        colors = ["#bababa" if "achieved_gflops" not in r else "#1b7837" if r["mode"] == baseline else "#4575b4"
                  for r in rows]
        bars = ax.barh(y, values, color=colors)
        peaks = sorted({r["gemm_peak_gflops"] for r in rows if r.get("gemm_peak_gflops")})
        main_peak = next((r["gemm_peak_gflops"] for r in rows if r["mode"] == baseline and "gemm_peak_gflops" in r),
                         peaks[-1] if peaks else None)
        labels = []
        for r in rows:
            if "achieved_gflops" not in r:
                labels.append("failed" if "error" in r else "skipped")
                continue
            text = f"{r['achieved_gflops']:.3g} GFLOP/s, {100 * r['gemm_peak_ratio']:.1f}% of peak"
            if r.get("gemm_peak_gflops") != main_peak:  # another thread count: its own peak
                threads = r.get("threads", "?")
                text += f" ({r['gemm_peak_gflops']:.0f} at {threads} thread{'s' * (threads != 1)})"
            if r.get("bf16_emulated"):
                text += " (bf16 emulated)"
            labels.append(text)
        ax.bar_label(bars, labels=labels, padding=3, fontsize=8)
        if main_peak:
            ax.axvline(main_peak, color="k", ls="--", lw=1)
            ax.text(main_peak, len(rows) - 0.45, f" fp32 GEMM peak\n {main_peak:.0f} GFLOP/s", fontsize=8, va="top")
        ax.set_yticks(y, [r["mode"].replace("+", "\n+") for r in rows], fontsize=8)
        ax.set_xlim(0, max(values + [main_peak or 0]) * 1.9)
        ax.set_xlabel("achieved GFLOP/s (forward + backward matrix FLOPs / step time)")
        flops = next((r["flops_per_step"] for r in rows if "flops_per_step" in r), None)
        ax.set_title(f"{backbone}, {size} px, batch {rows[0]['batch']}"
                     + (f": {flops / 1e9:.1f} GFLOP per step" if flops else ""), fontsize=10)
    fig.suptitle(f"One training step against the dense matrix product, {result['device']}", fontsize=11)
    return fig


def plot_train_profile(result: Mapping[str, Any]) -> Figure:
    """Where one training step's CPU time goes (``results/benchmarks/train_profile.json``):
    milliseconds a step per kind of work, heaviest at the top, each bar labelled with its
    share; the depthwise convolutions' backward in the accent colour."""
    kinds = sorted((k for k in result["kinds"] if k["ms_per_step"] > 0), key=lambda k: k["ms_per_step"])
    fig, ax = plt.subplots(figsize=(7.6, 0.42 * len(kinds) + 1.6), layout="constrained")
    colors = [WRONG_COLOR if k["kind"] == "depthwise conv, backward" else "#4575b4" for k in kinds]
    bars = ax.barh(np.arange(len(kinds)), [k["ms_per_step"] for k in kinds], color=colors)
    ax.set_yticks(np.arange(len(kinds)), [k["kind"] for k in kinds])
    ax.bar_label(bars, labels=[f"{k['share']:.1%}" for k in kinds], padding=3, fontsize=8)
    ax.set_xlim(right=max(k["ms_per_step"] for k in kinds) * 1.18)
    cfg = result["config"]
    threads = f"{cfg['threads']} thread{'s' * (cfg['threads'] != 1)}"
    ax.set_xlabel(f"CPU milliseconds a step ({threads}; operators' own time under torch.profiler)")
    ax.set_title(f"Where a training step goes: {cfg['backbone']}, {cfg['size']} px, batch {cfg['batch']}")
    ax.grid(axis="x", alpha=0.3)
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

