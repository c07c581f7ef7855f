"""Results as tables: a training history, the reproduction study's runs summarised over seeds,
the book's main results table and the paper's reported numbers; choosing example queries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from semi3lib.hardware import hardware_label

# Commonly quoted for Semi3-Net (Lei et al. 2020); not checked against the paper here.
PAPER_REPORTED = (
    {"dataset": "Sketchy (full: 6,250 queries, 73,002 photos)", "mAP@all": 0.916, "P@200": 0.930},
    {"dataset": "TU-Berlin Extension (2,500 queries, 204,489 photos)", "mAP@all": 0.800, "P@200": 0.813},
)
TABLE_METRICS = ("mAP@all", "mAP@200", "P@10", "P@25", "P@100", "P@200")


def history_table(history: Sequence[Mapping[str, Any]],
                  metrics: Sequence[str] = ("mAP@all", "P@25", "P@200")) -> pd.DataFrame:
    """One row per epoch: the loss terms that were used (a term that is 0 throughout was
    switched off), the learning rate, wall time and the query metrics where evaluated."""
    table = pd.json_normalize(list(history), sep=" ").set_index("epoch")
    losses = [c for c in table.columns if c.startswith("loss_") and (table[c] != 0).any()]
    queried = [f"query {m}" for m in metrics if f"query {m}" in table.columns]
    return table[losses + ["lr", "wall_seconds"] + queried].round(4)


def paper_reported_table() -> pd.DataFrame:
    """:data:`PAPER_REPORTED`, one row per dataset, columns labelled ``(paper)``."""
    table = pd.DataFrame(PAPER_REPORTED).set_index("dataset")
    table.columns = [f"{c} (paper)" for c in table.columns]
    return table


def load_study(study_dir: str | Path, split: str = "query") -> tuple[pd.DataFrame | None, str]:
    """The reproduction study's runs (``<study_dir>/*.json``, one per run and seed, each with
    ``run``, ``seed`` and ``metrics``) as one row per file, scored on ``split`` (``query``, or
    ``val`` for a tuning study), with its wall time and hardware (:func:`hardware_label`);
    ``(None, reason)`` when there are none. Files without ``metrics`` for that split are
    ignored (other outputs may share the folder)."""
    study_dir = Path(study_dir)
    files = sorted(study_dir.glob("*.json")) if study_dir.is_dir() else []
    rows = []
    for path in files:
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
            continue
        metrics = record["metrics"].get(split, record["metrics"] if split == "query" else None)
        if not isinstance(metrics, dict):
            continue
        rows.append({"run": record.get("run", path.stem), "seed": record.get("seed"),
                     **{k: metrics.get(k) for k in TABLE_METRICS if k in metrics},
                     "wall_seconds": record.get("wall_seconds"),
                     "hardware": hardware_label(record.get("machine")), "file": path.name})
    if not rows:
        why = "does not exist" if not study_dir.is_dir() else f"holds no run results (*.json with {split} metrics)"
        return None, f"{study_dir} {why}"
    return pd.DataFrame(rows), f"{len(rows)} run file(s) in {study_dir}"


def study_statistics(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per study row, in the order the runs first appear: the number of seeds, then the
    mean and sample std (ddof 1; NaN with one seed: unknown, not zero) of each metric and of
    the wall time. A seed without a value for a metric is left out of that metric's numbers."""
    columns = [m for m in (*TABLE_METRICS, "wall_seconds") if m in runs.columns]
    grouped = runs[["run", *columns]].astype({c: float for c in columns}).groupby("run", sort=False)
    table = grouped.agg(["mean", "std"])
    table.columns = [f"{column} {stat}" for column, stat in table.columns]
    seeds = runs.groupby("run", sort=False)["seed"].nunique() if "seed" in runs else grouped.size()
    table.insert(0, "seeds", seeds.astype(int))
    table.index.name = "run"
    return table


def summarise_study(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`study_statistics` as text: ``"0.512 ± 0.010"`` for a metric measured on several
    seeds, the plain value for one, nothing for none."""
    return _as_text(study_statistics(runs))


def _as_text(stats: pd.DataFrame) -> pd.DataFrame:
    """The seeds and each metric's ``mean ± std`` text of a :func:`study_statistics` table."""

    def text(mean: float, std: float) -> str | None:
        if pd.isna(mean):
            return None
        return f"{mean:.3f}" if pd.isna(std) else f"{mean:.3f} ± {std:.3f}"

    table = stats[["seeds"]].copy()
    for m in (m for m in TABLE_METRICS if f"{m} mean" in stats):
        table[m] = [text(mean, std) for mean, std in zip(stats[f"{m} mean"], stats[f"{m} std"])]
    return table


def markdown_table(table: pd.DataFrame) -> str:
    """A table as GitHub Markdown, index first (for the README: ``semi3 study --markdown``)."""
    header = [table.index.name or "", *map(str, table.columns)]
    rows = [[str(i), *("" if pd.isna(v) else str(v) for v in row)] for i, row in zip(table.index, table.to_numpy())]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def study_overview(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`summarise_study` with the mean wall time of a run (minutes) after the seeds."""
    stats = study_statistics(runs)
    table = _as_text(stats)
    minutes = stats["wall_seconds mean"] / 60
    table.insert(1, "train min", minutes.map(lambda m: f"{m:.1f}"))
    return table


def ordered_runs(runs: pd.DataFrame, order: Sequence[str] = ()) -> pd.DataFrame:
    """The runs of :func:`load_study` by row (rows named in ``order`` first, the others in the
    order they appear), then by seed."""
    rank = {name: i for i, name in enumerate(dict.fromkeys([*order, *runs["run"]]))}
    return runs.sort_values(["run", "seed"], key=lambda c: c.map(rank) if c.name == "run" else c, kind="stable")


def study_runs_table(runs: pd.DataFrame, order: Sequence[str] = ()) -> pd.DataFrame:
    """Every run of a study on its own line, in :func:`ordered_runs` order: the seed, training
    minutes, mAP@all and the hardware it ran on (``semi3 study --markdown --per-run``)."""
    runs = ordered_runs(runs, order).set_index("run")
    return pd.DataFrame({"seed": runs["seed"],
                         "train min": (runs["wall_seconds"].astype(float) / 60).map(lambda m: f"{m:.1f}"),
                         "mAP@all": runs["mAP@all"].map(lambda v: f"{v:.3f}"),
                         "hardware": runs["hardware"]}, index=runs.index)


def results_table(book_metrics: pd.DataFrame, study: pd.DataFrame | None = None) -> pd.DataFrame:
    """The chapter's main table: the study's runs (already formatted by
    :func:`summarise_study`) then this book's models, with a ``source`` column, values as
    3-decimal strings so that ``mean ± std`` and single numbers line up."""
    columns = [c for c in TABLE_METRICS if c in book_metrics.columns]
    ours = book_metrics[columns].map(lambda v: f"{v:.3f}")
    ours.insert(0, "source", "this book")
    parts = [ours]
    if study is not None:
        theirs = study.reindex(columns=["seeds", *columns]).copy()
        theirs.insert(0, "source", "reproduction study")
        parts.insert(0, theirs)
    table = pd.concat(parts)
    table.index.name = "model"
    return table.astype(object).where(table.notna(), "")


def spread_queries(ap: np.ndarray, labels: np.ndarray, n: int) -> list[int]:
    """``n`` query positions from distinct categories at evenly spaced AP ranks (best to
    worst), so a retrieval grid shows successes and failures in their real proportion.
    ``ap`` and ``labels`` are ``(Q,)``."""
    order = np.argsort(-np.asarray(ap), kind="stable")
    picked, seen = [], set()
    for target in np.linspace(0, len(order) - 1, num=n).round().astype(int):
        # The query at that rank, or the nearest one below (then above) of a new category.
        for pos in np.concatenate([order[target:], order[:target][::-1]]):
            if labels[pos] not in seen:
                picked.append(int(pos))
                seen.add(labels[pos])
                break
    return sorted(picked, key=lambda p: -ap[p])


def margin_over(runs: pd.DataFrame, reference: str, challengers: Sequence[str] | None = None,
                metric: str = "mAP@all") -> pd.DataFrame:
    """Whether each challenger row of a study beats ``reference`` by more than the seed spread:
    its mean ``metric`` minus the reference's (``gap``) against the larger of the two sample
    stds (``spread``); ``beats`` is ``gap > spread``. A row with one seed has no known
    spread, so it never beats anything (``beats`` is False, ``spread`` NaN). Challengers
    default to every other row with several seeds. The rule of the tuning search for
    replacing a default (``configs/tuning-sketchy-mini.yaml``)."""
    stats = study_statistics(runs)
    if challengers is None:
        challengers = [r for r in stats.index[stats["seeds"] > 1] if r != reference]
    missing = [r for r in (reference, *challengers) if r not in stats.index]
    if missing:
        raise KeyError(f"no runs of {', '.join(missing)}; rows present: {', '.join(stats.index)}")
    mean, std = stats[f"{metric} mean"], stats[f"{metric} std"]
    rows = []
    for row in challengers:
        gap, spread = mean[row] - mean[reference], std[[row, reference]].max(skipna=False)
        rows.append({"row": row, "seeds": int(stats.at[row, "seeds"]), metric: mean[row],
                     f"{reference} {metric}": mean[reference], "gap": gap, "spread": spread,
                     "beats": bool(gap > spread)})
    return pd.DataFrame(rows).set_index("row").round(4)
