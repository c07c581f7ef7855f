"""Chapter 4 (training): the loss terms and the retrieval score as a run goes."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


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

