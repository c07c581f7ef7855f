"""The reproduction study: named rows, each a set of overrides of one base config, trained and
scored once per seed; then a summary over seeds.

A plan is a YAML file (``configs/study-sketchy-mini.yaml``)::

    base: configs/sketchy-mini-cpu.yaml   # what every row shares: data, backbone, budget
    out_dir: results/sketchy-mini          # one record per row and seed, and summary.csv
    runs_dir: runs/study                   # checkpoints, one folder per row and seed
    seeds: [0, 1, 2]                       # train.seed; the data split stays the base's
    rows:
      semi3net: {what: "as in the paper", overrides: []}
      no-coattention: {what: "...", overrides: [model.coattention=false]}
      imagenet-features: {what: "no training", baseline: imagenet}

Each (row, seed) writes ``<out_dir>/<row>-seed<k>.json`` (``run``, ``seed``, ``metrics``,
``wall_seconds``, ``config``, ``machine``) when it finishes, and a row whose record exists is
skipped, so a study can be stopped and continued, across sessions and machines. A row that is
interrupted resumes from its last finished epoch. The no-training baseline is deterministic:
it runs for the first seed only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

from semi3lib.config import ConfigError, ExperimentConfig, load_config
from semi3lib.reporting import TABLE_METRICS, load_study

SUMMARY_FILE = "summary.csv"
BASELINES = ("imagenet",)


@dataclass
class StudyRow:
    name: str
    what: str = ""
    overrides: list[str] = field(default_factory=list)
    baseline: str | None = None  # "imagenet": no training


@dataclass
class StudyPlan:
    base: str
    out_dir: str
    runs_dir: str
    seeds: list[int]
    rows: list[StudyRow]

    def row(self, name: str) -> StudyRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise ConfigError(f"no row {name!r} in the plan; rows: {', '.join(r.name for r in self.rows)}")

    def config(self, row: StudyRow, seed: int, extra: Iterable[str] = ()) -> ExperimentConfig:
        """The row's config for one seed: base, then the row's overrides, then ``extra``."""
        return load_config(self.base, [*row.overrides, f"train.seed={seed}", f"name={row.name}",
                                       f"train.out_dir={Path(self.runs_dir) / f'{row.name}-seed{seed}'}", *extra])

    def record_path(self, row: StudyRow, seed: int) -> Path:
        return Path(self.out_dir) / f"{row.name}-seed{seed}.json"

    def seeds_of(self, row: StudyRow) -> list[int]:
        return self.seeds[:1] if row.baseline else list(self.seeds)


def load_plan(path: str | Path) -> StudyPlan:
    """Read and check a plan: known keys only, unique row names, a known baseline."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"study plan not found: {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    unknown = set(raw) - {"base", "out_dir", "runs_dir", "seeds", "rows"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    if "base" not in raw or not raw.get("rows"):
        raise ConfigError(f"{path}: a plan needs 'base' (a config file) and 'rows'")
    rows = []
    for name, spec in raw["rows"].items():
        spec = spec or {}
        bad = set(spec) - {"what", "overrides", "baseline"}
        if bad:
            raise ConfigError(f"{path}: row {name!r} has unknown key(s) {', '.join(sorted(bad))}")
        if spec.get("baseline") not in (None, *BASELINES):
            raise ConfigError(f"{path}: row {name!r}: baseline must be one of {', '.join(BASELINES)}")
        rows.append(StudyRow(name=str(name), what=str(spec.get("what", "")),
                             overrides=[str(o) for o in spec.get("overrides") or []], baseline=spec.get("baseline")))
    seeds = [int(s) for s in raw.get("seeds", [0])]
    if not seeds:
        raise ConfigError(f"{path}: 'seeds' is empty")
    plan = StudyPlan(base=str(raw["base"]), out_dir=str(raw.get("out_dir", "results/study")),
                     runs_dir=str(raw.get("runs_dir", "runs/study")), seeds=seeds, rows=rows)
    for row in plan.rows:  # every row's config must be valid before hours are spent on the first
        plan.config(row, plan.seeds[0])
    return plan


def run_row(plan: StudyPlan, row: StudyRow, seed: int, extra: Iterable[str] = (), progress: bool = True
            ) -> dict[str, Any]:
    """Train (or, for a baseline, only score) one row for one seed and write its record."""
    from semi3lib.checkpoints import atomic_write_text
    from semi3lib.evaluation import evaluate_imagenet_baseline
    from semi3lib.experiment import load_experiment_data
    from semi3lib.hardware import machine_info
    from semi3lib.training import select_device, train

    cfg = plan.config(row, seed, extra)
    started = time.perf_counter()
    if row.baseline == "imagenet":
        data = load_experiment_data(cfg.data)
        metrics = evaluate_imagenet_baseline(data, cfg.data, cfg.model.backbone, cfg.model.weights_path,
                                             select_device(cfg.train.device), progress=progress)
        wall, history = time.perf_counter() - started, []
    else:
        result = train(cfg, resume=True, progress=progress)
        metrics, wall, history = result.final_metrics, result.wall_seconds, result.history
    record = {"run": row.name, "what": row.what, "seed": seed, "metrics": {"query": metrics},
              "wall_seconds": round(wall, 1), "overrides": [*row.overrides, *extra], "history": history,
              "config": cfg.to_dict(), "machine": machine_info()}
    atomic_write_text(plan.record_path(row, seed), json.dumps(record, indent=2) + "\n")
    return record


def run_study(plan: StudyPlan, only: Iterable[str] | None = None, seeds: Iterable[int] | None = None,
              extra: Iterable[str] = (), progress: bool = True) -> pd.DataFrame | None:
    """Run every (row, seed) without a record, in plan order; the summary is rewritten after each."""
    extra = list(extra)
    order = [row.name for row in plan.rows]
    rows = [plan.row(name) for name in only] if only else plan.rows
    for row in rows:
        for seed in [s for s in plan.seeds_of(row) if seeds is None or s in set(seeds)]:
            path = plan.record_path(row, seed)
            if path.is_file():
                print(f"{row.name} seed {seed}: done ({path})", flush=True)
                continue
            print(f"{row.name} seed {seed}: {row.what or 'running'}", flush=True)
            record = run_row(plan, row, seed, extra, progress)
            print(f"{row.name} seed {seed}: mAP@all {record['metrics']['query']['mAP@all']:.4f} "
                  f"in {record['wall_seconds']:.0f} s", flush=True)
            write_summary(plan.out_dir, order)  # kept current, should the study stop here
    return write_summary(plan.out_dir, order)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per study row: the number of seeds, mean and sample std (ddof 1; NaN with one
    seed: unknown, not zero) of each metric and of the wall time, in the order the runs first
    appear."""
    metrics = [m for m in (*TABLE_METRICS, "wall_seconds") if m in runs.columns]
    out = {}
    for run, group in runs.groupby("run", sort=False):
        row: dict[str, Any] = {"seeds": len(group)}
        for m in metrics:
            values = group[m].astype(float).to_numpy()
            row[f"{m} mean"] = float(values.mean())
            row[f"{m} std"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        out[run] = row
    table = pd.DataFrame.from_dict(out, orient="index")
    table.index.name = "run"
    return table


def write_summary(out_dir: str | Path, order: Iterable[str] = ()) -> pd.DataFrame | None:
    """``<out_dir>/summary.csv`` from the records there, rows named in ``order`` first (None
    when there are no records)."""
    runs, _ = load_study(out_dir)
    if runs is None:
        return None
    table = summary_table(runs)
    first = [name for name in order if name in table.index]
    table = table.loc[first + [name for name in table.index if name not in first]]
    table.round(4).to_csv(Path(out_dir) / SUMMARY_FILE)
    return table


__all__ = ["StudyPlan", "StudyRow", "load_plan", "run_row", "run_study", "summary_table", "write_summary"]
