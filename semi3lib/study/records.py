"""A study's records read back: one row per run file, in the plan's order, each row's seeds and
their statistics, and a row's per-seed scores and hosts as the comparison rule takes them
(:func:`semi3lib.study.rule.compare`; :func:`compare_rows` passes both)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import pandas as pd

from semi3lib.engine.records import read_records
from semi3lib.study.hosts import recognised_hosts
from semi3lib.study.rule import Outcome, compare

TABLE_METRICS = ("mAP@all", "mAP@200", "P@10", "P@25", "P@100", "P@200")
# Instance-level runs (data.protocol: instance) carry the own-photo metrics too; a study's tables
# read them first where its records have them (a category study's records have none, so its
# tables and summary.csv keep their columns).
INSTANCE_METRICS = ("acc@1", "acc@5", "acc@10", "mean rank", "median rank")
STUDY_METRICS = (*INSTANCE_METRICS, *TABLE_METRICS)
LOWER_IS_BETTER = ("mean rank", "median rank")


def load_study(study_dir: str | Path, split: str = "query") -> tuple[pd.DataFrame | None, str]:
    """The reproduction study's runs (``<study_dir>/*.json``, one
    :class:`~semi3lib.engine.records.RunRecord` per run and seed, read by
    :func:`~semi3lib.engine.records.read_records`) as one row per file, scored on ``split``
    (``query``, or ``val`` for a tuning study), with its wall time, hardware and kind of host
    (``host``: :func:`~semi3lib.engine.hardware.host_kind`, what the rule matches; for a record
    without an instruction set that a recognition check recognised, the kind it ran as:
    :func:`semi3lib.study.hosts.recognised_hosts`, which its ``hardware`` then names too);
    ``(None, reason)`` when there are none. Files without ``metrics`` for that split are
    ignored (other outputs may share the folder)."""
    study_dir = Path(study_dir)
    rows = []
    recognised = recognised_hosts(study_dir)
    for path, record in read_records(study_dir):
        metrics = record.metrics.get(split)
        if metrics is None:
            continue
        ran_as = recognised.get(path.name)
        rows.append({"run": record.run, "seed": record.seed,
                     **{k: metrics.get(k) for k in STUDY_METRICS if k in metrics},
                     "wall_seconds": record.wall_seconds, "hardware": _hardware(record.hardware, ran_as),
                     "host": ran_as or record.host,
                     "file": path.name})
    if not rows:
        why = "does not exist" if not study_dir.is_dir() else f"holds no run results (*.json with {split} metrics)"
        return None, f"{study_dir} {why}"
    return pd.DataFrame(rows), f"{len(rows)} run file(s) in {study_dir}"


def _hardware(recorded: str | None, recognised_as: str | None) -> str | None:
    """The record's hardware words, and the kind a recognition check found it ran as, if any."""
    return f"{recorded}; recognised as {recognised_as}" if recognised_as else recorded


def study_statistics(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per study row, in the order the runs first appear: the number of seeds, then the
    mean and sample std (ddof 1; NaN with one seed: unknown, not zero) of each metric and of
    the wall time. A seed without a value for a metric is left out of that metric's numbers."""
    columns = [m for m in (*STUDY_METRICS, "wall_seconds") if m in runs.columns]
    grouped = runs[["run", *columns]].astype({c: float for c in columns}).groupby("run", sort=False)
    table = grouped.agg(["mean", "std"])
    table.columns = [f"{column} {stat}" for column, stat in table.columns]
    seeds = runs.groupby("run", sort=False)["seed"].nunique() if "seed" in runs else grouped.size()
    table.insert(0, "seeds", seeds.astype(int))
    table.index.name = "run"
    return table


def ordered_runs(runs: pd.DataFrame, order: Sequence[str] = ()) -> pd.DataFrame:
    """The runs of :func:`load_study` by row (rows named in ``order`` first, the others in the
    order they appear), then by seed."""
    rank = {name: i for i, name in enumerate(dict.fromkeys([*order, *runs["run"]]))}
    return runs.sort_values(["run", "seed"], key=lambda c: c.map(rank) if c.name == "run" else c, kind="stable")


def runs_by_row(runs: pd.DataFrame, width: int = 22) -> str:
    """One line per row of :func:`load_study`'s runs: its seeds and the kinds of host they ran on
    (what a chapter prints before its tables, so a reader sees which verdicts can pair)."""
    return "\n".join(f"{row:{width}s} seeds {', '.join(str(int(s)) for s in sorted(group['seed']))}   hosts: "
                     f"{', '.join(sorted(set(group['host'])))}" for row, group in runs.groupby("run", sort=False))


def seed_scores(runs: pd.DataFrame, row: str, metric: str = "mAP@all", column: str = "run") -> dict[int, float]:
    """``{seed: metric}`` of one row (the runs whose ``column`` is ``row``), what the rule
    compares; a seed without a value for ``metric`` is left out, as in :func:`study_statistics`."""
    if not len(runs) or metric not in runs:
        return {}
    chosen = runs[runs[column] == row]
    scores = {int(seed): float(value) for seed, value in zip(chosen["seed"], chosen[metric]) if value is not None}
    return {seed: value for seed, value in scores.items() if not math.isnan(value)}


def seed_hosts(runs: pd.DataFrame, row: str, column: str = "run") -> dict[int, str] | None:
    """``{seed: kind of host}`` of one row's runs (the ``host`` column of :func:`load_study`);
    None for a table without hosts (the rule then pairs seeds whatever their host)."""
    if "host" not in runs:
        return None
    chosen = runs[runs[column] == row]
    return {int(seed): str(host) for seed, host in zip(chosen["seed"], chosen["host"])}


def compare_rows(runs: pd.DataFrame, row: str, other: str, metric: str = "mAP@all", column: str = "run") -> Outcome:
    """``row`` against ``other`` by the book's rule on their per-seed scores, seed pairs run on
    one kind of host only (:func:`semi3lib.study.rule.compare` with both rows' hosts)."""
    return compare(seed_scores(runs, row, metric, column), seed_scores(runs, other, metric, column), metric,
                   seed_hosts(runs, row, column), seed_hosts(runs, other, column))
