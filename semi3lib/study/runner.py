"""The reproduction study: named rows, each a set of overrides of one base config, trained and
scored once per seed; then a summary over seeds. A tuning study is the same with ``split: val``:
its rows are compared on validation sketches carved from the training sketches, never on the
queries.

A plan is a YAML file (``configs/study-sketchy-mini.yaml``)::

    base: configs/sketchy-mini-cpu.yaml   # what every row shares: data, backbone, budget
    overrides: []                          # applied to every row first (optional)
    split: query                           # the split the summary reports: query, or val to tune
    out_dir: results/sketchy-mini          # a record per row and seed; summary.csv, runs.csv
    runs_dir: runs/study                   # checkpoints, one folder per row and seed
    seeds: [0, 1, 2]                       # train.seed; the data split stays the base's
    rows:
      semi3net: {what: "as in the paper", overrides: []}
      no-coattention: {what: "...", overrides: [model.coattention=false]}
      imagenet-features: {what: "no training", baseline: imagenet}
      semi3net-photo+edge: {what: "...", rescore: semi3net, overrides: [model.gallery_embedding=photo+edge]}
      semi3net-more-seeds: {what: "...", seeds: [0, 1, 2, 3, 4]}   # a row may have its own seeds

A plan with ``per_host: true`` (the host check, ``configs/host-check.yaml``) keeps one record
per kind of host: its record and run folder names end with the host
(``<row>-seed<k>-<host>.json``), so the same row and seed run on another host is a new run,
not one already done (``semi3 study --host-effect`` sets them beside each other).

A plan with ``stop_after_epochs: N`` (a host check's, ``configs/host-recognition-160px.yaml``)
trains each run's first N epochs of its schedule (the learning rate follows all
``train.epochs``) and stops without the final evaluation: its record's history is what
:func:`semi3lib.study.hosts.recognitions` compares, epoch by epoch, with a recorded run's.

A ``rescore`` row trains nothing: it scores another row's trained models again with a
retrieval-time change (``model.gallery_embedding``), seed by seed, and reports that row's
training time.

Each (row, seed) writes ``<out_dir>/<row>-seed<k>.json``, a
:class:`~semi3lib.engine.records.RunRecord` (``run``, ``seed``, ``metrics`` per split,
``wall_seconds``, ``config``, ``machine``), when it finishes, and a row whose record exists is
skipped, so a study can be stopped and continued, across sessions and machines. A row that is
interrupted resumes from its last finished epoch. The no-training baseline is deterministic:
it runs for the first seed only. ``summary.csv`` holds the mean and std over seeds of every row,
``runs.csv`` every run with its wall time and hardware.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from semi3lib.config import ConfigError, ExperimentConfig, load_config, load_yaml
from semi3lib.data.splits import with_gallery, with_instance_gallery
from semi3lib.engine.records import RunRecord, read_record, training_metrics, write_record
from semi3lib.study.records import load_study, ordered_runs, study_statistics

SUMMARY_FILE = "summary.csv"
RUNS_FILE = "runs.csv"  # one line per run: seed, metrics, wall time, hardware
BASELINES = ("imagenet",)
SPLITS = ("query", "val")
RESCORE_KEYS = ("model.gallery_embedding=", "data.zeroshot_gallery=", "data.instance_gallery=")  # what a rescore row may change: retrieval only


@dataclass
class StudyRow:
    name: str
    what: str = ""
    overrides: list[str] = field(default_factory=list)
    baseline: str | None = None  # "imagenet": no training
    rescore: str | None = None  # another row, whose trained models this row scores again
    seeds: list[int] | None = None  # this row's seeds, where they are not the plan's


@dataclass
class StudyPlan:
    base: str
    out_dir: str
    runs_dir: str
    seeds: list[int]
    rows: list[StudyRow]
    overrides: list[str] = field(default_factory=list)
    split: str = "query"
    per_host: bool = False  # one record per kind of host (the host check)
    stop_after_epochs: int | None = None  # train only the first epochs, no final evaluation (a host check)

    def row(self, name: str) -> StudyRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise ConfigError(f"no row {name!r} in the plan; rows: {', '.join(r.name for r in self.rows)}")

    def config(self, row: StudyRow, seed: int, extra: Iterable[str] = ()) -> ExperimentConfig:
        """The row's config for one seed: base, the plan's overrides, (a rescore row: the
        scored row's,) the row's own, then ``extra``."""
        trained = self.row(row.rescore) if row.rescore else row
        trained_overrides = trained.overrides if row.rescore else []
        return load_config(self.base, [*self.overrides, *trained_overrides, *row.overrides, f"train.seed={seed}",
                                       f"name={row.name}", f"train.out_dir={self.run_dir(trained, seed)}", *extra])

    def _stem(self, row: StudyRow, seed: int) -> str:
        if not self.per_host:
            return f"{row.name}-seed{seed}"
        from semi3lib.engine.hardware import current_host_kind, host_slug

        return f"{row.name}-seed{seed}-{host_slug(current_host_kind())}"

    def run_dir(self, row: StudyRow, seed: int) -> Path:
        return Path(self.runs_dir) / self._stem(row, seed)

    def record_path(self, row: StudyRow, seed: int) -> Path:
        return Path(self.out_dir) / f"{self._stem(row, seed)}.json"

    def seeds_of(self, row: StudyRow) -> list[int]:
        seeds = list(row.seeds if row.seeds is not None else self.seeds)
        return seeds[:1] if row.baseline else seeds


def _check_list(value: Any, where: str, what: str) -> None:
    """``value`` is None or a list (of ints, for seeds)."""
    if value is None:
        return
    if not isinstance(value, list):
        raise ConfigError(f"{where}: {what} must be a list, e.g. [0, 1], not {value!r}")
    if what.endswith("seeds") and not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        raise ConfigError(f"{where}: {what} must be whole numbers >= 0, got {value!r}")


def load_plan(path: str | Path) -> StudyPlan:
    """Read and check a plan: known keys only, unique row names, a known baseline."""
    path = Path(path)
    raw, lines = load_yaml(path, "study plan")

    def at(key: str) -> str:
        return f"{path}:{lines[key]}" if key in lines else str(path)

    unknown = set(raw) - {"base", "overrides", "split", "out_dir", "runs_dir", "seeds", "rows", "per_host",
                        "stop_after_epochs"}
    if unknown:
        raise ConfigError(f"{at(sorted(unknown)[0])}: unknown key(s) {', '.join(sorted(unknown))}")
    if "base" not in raw or not raw.get("rows"):
        raise ConfigError(f"{path}: a plan needs 'base' (a config file) and 'rows'")
    if not isinstance(raw["rows"], dict):
        raise ConfigError(f"{at('rows')}: 'rows' must map row names to their settings")
    for key in ("overrides", "seeds"):
        _check_list(raw.get(key), at(key), key)
    rows = []
    for name, spec in raw["rows"].items():
        spec = spec or {}
        if not isinstance(spec, dict):
            raise ConfigError(f"{at(f'rows.{name}')}: row {name!r} must be a mapping (what, overrides, ...)")
        for key in ("overrides", "seeds"):
            _check_list(spec.get(key), at(f"rows.{name}.{key}"), f"row {name!r}: {key}")
        bad = set(spec) - {"what", "overrides", "baseline", "rescore", "seeds"}
        if bad:
            raise ConfigError(f"{path}: row {name!r} has unknown key(s) {', '.join(sorted(bad))}")
        if spec.get("baseline") not in (None, *BASELINES):
            raise ConfigError(f"{path}: row {name!r}: baseline must be one of {', '.join(BASELINES)}")
        rows.append(StudyRow(name=str(name), what=str(spec.get("what", "")),
                             overrides=[str(o) for o in spec.get("overrides") or []], baseline=spec.get("baseline"),
                             rescore=spec.get("rescore"),
                             seeds=[int(s) for s in spec["seeds"]] if spec.get("seeds") is not None else None))
        if rows[-1].seeds == []:
            raise ConfigError(f"{path}: row {name!r}: 'seeds' is empty")
    seeds = [int(s) for s in raw.get("seeds", [0])]
    if not seeds:
        raise ConfigError(f"{path}: 'seeds' is empty")
    if raw.get("split", "query") not in SPLITS:
        raise ConfigError(f"{path}: split must be one of {', '.join(SPLITS)}, got {raw['split']!r}")
    if not isinstance(raw.get("per_host", False), bool):
        raise ConfigError(f"{at('per_host')}: per_host must be true or false, not {raw['per_host']!r}")
    stop = raw.get("stop_after_epochs")
    if stop is not None and (not isinstance(stop, int) or isinstance(stop, bool) or stop < 1):
        raise ConfigError(f"{at('stop_after_epochs')}: stop_after_epochs must be a whole number >= 1, not {stop!r}")
    plan = StudyPlan(base=str(raw["base"]), out_dir=str(raw.get("out_dir", "results/study")),
                     runs_dir=str(raw.get("runs_dir", "runs/study")), seeds=seeds, rows=rows,
                     overrides=[str(o) for o in raw.get("overrides") or []], split=raw.get("split", "query"),
                     per_host=raw.get("per_host", False), stop_after_epochs=stop)
    names = [row.name for row in rows]
    for row in plan.rows:
        if row.rescore is not None:
            source = row.rescore
            if source not in names or plan.row(source).rescore or plan.row(source).baseline:
                raise ConfigError(f"{path}: row {row.name!r} re-scores {source!r}, which is not a trained row of the plan")
            if names.index(source) > names.index(row.name):
                raise ConfigError(f"{path}: row {row.name!r} re-scores {source!r}: list {source!r} first")
            if any(not o.startswith(RESCORE_KEYS) for o in row.overrides):
                raise ConfigError(f"{path}: row {row.name!r}: a rescore row may only override "
                                  f"{', '.join(k.rstrip('=') for k in RESCORE_KEYS)}")
    for row in plan.rows:  # every row's config must be valid before hours are spent on the first
        try:
            cfg = plan.config(row, plan.seeds[0])
        except ConfigError as err:
            raise ConfigError(f"{at(f'rows.{row.name}')}: row {row.name!r}: {err}") from None
        if plan.split == "val" and not cfg.data.val_sketches_per_category:
            raise ConfigError(f"{path}: split val needs validation sketches: set "
                              f"data.val_sketches_per_category in the plan's overrides (row {row.name!r} has none)")
    return plan


def _splits_of(data: Any) -> list[str]:
    """The splits a record scores: the queries, and the validation sketches when there are some."""
    return ["query", "val"] if data.split.val else ["query"]


def run_row(plan: StudyPlan, row: StudyRow, seed: int, extra: Iterable[str] = (), progress: bool = True
            ) -> RunRecord:
    """Train (or, for a baseline, only score; for a rescore row, score another row's trained
    model again) one row for one seed and write its record."""
    from semi3lib.engine.evaluate import evaluate_imagenet_baseline, evaluate_model, load_trained
    from semi3lib.data.experiment import load_experiment_data
    from semi3lib.engine.hardware import machine_info
    from semi3lib.engine.train import train
    from semi3lib.engine.device import select_device

    cfg = plan.config(row, seed, extra)
    started = time.perf_counter()
    device = select_device(cfg.train.device)
    extra_info: dict[str, Any] = {}
    if row.baseline == "imagenet":
        data = load_experiment_data(cfg.data)
        metrics = {which: evaluate_imagenet_baseline(data, cfg.data, cfg.model.backbone, cfg.model.weights_path,
                                                     device, which, progress=progress)
                   for which in _splits_of(data)}
        wall, history = time.perf_counter() - started, []
        extra_info = {"data": data.index.identity()}
    elif row.rescore:
        source = plan.row(row.rescore)
        trained = plan.record_path(source, seed)
        if not trained.is_file():
            raise ConfigError(f"row {row.name!r} re-scores {source.name!r}, which has no record for seed {seed} "
                              f"yet ({trained}): run it first")
        source_record = read_record(trained)
        run_dir = plan.run_dir(source, seed)
        model, _, _, data = load_trained(run_dir / "last.pt", device)
        model.set_gallery_embedding(cfg.model.gallery_embedding)
        split = with_instance_gallery(with_gallery(data.index, data.split, cfg.data.zeroshot_gallery),
                                      cfg.data.instance_gallery)
        data = dataclasses.replace(data, split=split)
        metrics = {which: evaluate_model(model, data, cfg.data, which, device, progress, cache_dir=run_dir)
                   for which in _splits_of(data)}
        # the row's cost is the training it re-scores; the scoring itself is recorded apart
        wall, history = source_record.wall_seconds, source_record.history
        extra_info = {"rescored": source.name, "scoring_seconds": round(time.perf_counter() - started, 1),
                      "data": data.index.identity()}
    else:
        result = train(cfg, resume=True, progress=progress, stop_after_epochs=plan.stop_after_epochs)
        wall, history = result.wall_seconds, result.history
        metrics = training_metrics(history, result.final_metrics)
        extra_info = {"data": result.data}
    trained_overrides = plan.row(row.rescore).overrides if row.rescore else []
    record = RunRecord(run=row.name, what=row.what, seed=seed, metrics=metrics, wall_seconds=round(wall, 1),
                       **extra_info, overrides=[*plan.overrides, *trained_overrides, *row.overrides, *extra],
                       history=history, config=cfg.to_dict(), machine=machine_info())
    write_record(plan.record_path(row, seed), record)
    return record


def refresh_scores(plan: StudyPlan, row: StudyRow, seed: int, extra: Iterable[str] = (), progress: bool = True
                   ) -> RunRecord:
    """Score a recorded (row, seed) again with today's scoring code and keep what it adds (an
    instance run's per-query ranks and examples, say) in its record; training time, history
    and the machine that trained stay. A trained row is scored from its saved model
    (``last.pt`` in its run folder), a baseline or rescore row is run again (it trains
    nothing). Every score the record already held must come back unchanged (the same weights
    scored on the same kind of host): a :class:`ConfigError` otherwise, and nothing written."""
    from semi3lib.engine.device import select_device
    from semi3lib.engine.evaluate import evaluate_model, load_trained

    path = plan.record_path(row, seed)
    if not path.is_file():
        raise ConfigError(f"{row.name} seed {seed} has no record to refresh ({path}): run it first")
    old = read_record(path)
    if row.baseline or row.rescore:
        path.unlink()
        try:
            return _same_scores(old, run_row(plan, row, seed, extra, progress), path)
        except ConfigError:
            write_record(path, old)
            raise
    checkpoint = plan.run_dir(row, seed) / "last.pt"
    if not checkpoint.is_file():
        raise ConfigError(f"{row.name} seed {seed}: its saved model {checkpoint} is missing; only a run whose "
                          "folder is still here can be scored again")
    cfg = plan.config(row, seed, extra)
    device = select_device(cfg.train.device)
    model, _, _, data = load_trained(checkpoint, device)
    metrics = {which: evaluate_model(model, data, cfg.data, which, device, progress, cache_dir=checkpoint.parent)
               for which in _splits_of(data)}
    return _same_scores(old, dataclasses.replace(old, metrics=metrics), path)


def _same_scores(old: RunRecord, new: RunRecord, path: Path) -> RunRecord:
    """``new`` with ``old``'s training facts, written to ``path``, if every number ``old``
    scored comes back the same (to 1e-6); a :class:`ConfigError` naming the first that does not."""
    for split, scores in old.metrics.items():
        for key, value in scores.items():
            if isinstance(value, (int, float)):
                again = new.metrics.get(split, {}).get(key)
                if again is None or abs(float(again) - float(value)) > 1e-6:
                    raise ConfigError(f"{path.name}: {split} {key} was {value}, scored again {again}: not the same "
                                      "model or host; the record is left as it was")
    refreshed = dataclasses.replace(old, metrics=new.metrics)
    write_record(path, refreshed)
    return refreshed


def missing_runs(plan: str | Path, folder: str | Path | None = None) -> list[str]:
    """``"row seed k"`` for every run of the plan at ``plan`` without a record in ``folder``
    (the plan's ``out_dir`` by default), in plan order."""
    study = load_plan(plan)
    folder = Path(study.out_dir if folder is None else folder)
    return [f"{row.name} seed {seed}" for row in study.rows for seed in study.seeds_of(row)
            if not (folder / study.record_path(row, seed).name).is_file()]


def check_seeds(plan: StudyPlan, rows: Iterable[StudyRow], seeds: Iterable[int]) -> None:
    """Refuse a seed that none of ``rows`` runs: the plan fixes each row's seeds (its own or the
    plan's; a baseline's first only), and a record outside them would be one the plan's
    tables, ``--list`` and resumption never account for. ``--seeds`` selects, never adds."""
    rows = list(rows)
    planned = sorted({s for row in rows for s in plan.seeds_of(row)})
    unplanned = sorted(set(seeds) - set(planned))
    if unplanned:
        which = "the plan's rows" if len(rows) == len(plan.rows) else f"row(s) {', '.join(r.name for r in rows)}"
        cut = any(r.baseline and set(unplanned) & set(r.seeds if r.seeds is not None else plan.seeds) for r in rows)
        baseline = " (a baseline row runs its first seed only)" if cut else ""
        raise ConfigError(f"--seeds {' '.join(map(str, unplanned))}: not a seed of {which}, which run seeds "
                          f"{', '.join(map(str, planned))}{baseline}; --seeds picks among the plan's seeds, "
                          "it adds none")


def run_study(plan: StudyPlan, only: Iterable[str] | None = None, seeds: Iterable[int] | None = None,
              extra: Iterable[str] = (), progress: bool = True) -> pd.DataFrame | None:
    """Run every (row, seed) without a record, in plan order; the summary is rewritten after each."""
    extra = list(extra)
    order = [row.name for row in plan.rows]
    rows = [plan.row(name) for name in only] if only else plan.rows
    if seeds is not None:
        seeds = set(seeds)
        check_seeds(plan, rows, seeds)
    for row in rows:
        for seed in [s for s in plan.seeds_of(row) if seeds is None or s in seeds]:
            path = plan.record_path(row, seed)
            if path.is_file():
                print(f"{row.name} seed {seed}: done ({path})", flush=True)
                continue
            print(f"{row.name} seed {seed}: {row.what or 'running'}", flush=True)
            record = run_row(plan, row, seed, extra, progress)
            if plan.stop_after_epochs:
                losses = ", ".join(f"{r['loss_total']!r}" for r in record.history)
                print(f"{row.name} seed {seed}: stopped after {len(record.history)} epoch(s), total loss {losses} "
                      f"({record.wall_seconds:.0f} s of training)", flush=True)
                continue
            scores = record.metrics[plan.split]
            instance = f"acc@1 {scores['acc@1']:.4f}, " if "acc@1" in scores else ""
            print(f"{row.name} seed {seed}: {plan.split} {instance}mAP@all {scores['mAP@all']:.4f} "
                  f"({record.wall_seconds:.0f} s of training)", flush=True)
            write_summary(plan.out_dir, order, plan.split)  # kept current, should the study stop here
    return write_summary(plan.out_dir, order, plan.split)


def write_summary(out_dir: str | Path, order: Iterable[str] = (), split: str = "query") -> pd.DataFrame | None:
    """``<out_dir>/summary.csv`` (mean and std over seeds) and ``<out_dir>/runs.csv`` (each run
    with its wall time and hardware) from the records there, scored on ``split``, rows named in
    ``order`` first. Returns the summary (None when there are no records)."""
    runs, _ = load_study(out_dir, split)
    if runs is None:
        return None
    runs = ordered_runs(runs, order)
    table = study_statistics(runs)
    from semi3lib.io import atomic_write_text

    atomic_write_text(Path(out_dir) / SUMMARY_FILE, table.round(4).to_csv())
    atomic_write_text(Path(out_dir) / RUNS_FILE, runs.round(4).to_csv(index=False))
    return table


__all__ = ["StudyPlan", "StudyRow", "check_seeds", "load_plan", "refresh_scores", "run_row", "run_study", "write_summary"]
