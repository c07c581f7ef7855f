"""A run's record: what one training (or scoring) run measured and on what, as one JSON file.

``semi3 train --results FILE`` and ``semi3 study`` (one file per row and seed) write a
:class:`RunRecord` with :func:`write_record`; every table that reads runs (the study's summary,
the bridge chapter, the claims) reads them with :func:`read_record` / :func:`read_records`.

A record on disk::

    {"run": "semi3net", "what": "...", "seed": 0,
     "metrics": {"query": {"mAP@all": ...}, "val": {...}},   # per split scored
     "wall_seconds": 1257.7,                                  # training time
     "rescored": "...", "scoring_seconds": ...,               # a rescore row only
     "overrides": [...], "history": [...], "config": {...},
     "machine": {"cpu": ..., "gpu": ..., "git_commit": ..., ...},   # engine.hardware.machine_info
     "data": {"dataset": ..., "root": "/abs/path", "fingerprint": ..., ...},  # DatasetIndex.identity
     "command": "semi3 train ...", "out_dir": "runs/..."}     # semi3 train --results only

The reader also accepts the shapes records had before there was one type: metrics not split
by split (the query split's), and ``semi3 train --results`` records with the query metrics at
the top (``query``) and an ``epochs`` count, without a seed (it is the config's)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from semi3lib.engine.hardware import hardware_label, host_kind
from semi3lib.io import atomic_write_text

# Keys of records written before RunRecord whose content now lives elsewhere: "query" (the
# query metrics, now metrics["query"]) and "epochs" (len(history)).
_LEGACY_KEYS = ("query", "epochs")


class RecordError(ValueError):
    """A file that is not a run record: not JSON, not an object, or without metrics."""


@dataclass
class RunRecord:
    """One run: its metrics per split, training time, history, config, seed and machine."""

    run: str
    metrics: dict[str, dict[str, Any]]  # split ("query", "val") -> metric name -> value
    wall_seconds: float | None = None  # training time (a rescore row: the training it re-scores)
    seed: int | None = None
    what: str = ""
    overrides: list[str] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] | None = None  # :func:`semi3lib.engine.hardware.machine_info`
    data: dict[str, Any] | None = None  # which data: :meth:`semi3lib.data.layouts.DatasetIndex.identity`
    rescored: str | None = None  # the row whose trained models this run scored again
    scoring_seconds: float | None = None  # the rescoring's own time
    command: str | None = None  # the command line that wrote it (``semi3 train --results``)
    out_dir: str | None = None  # the run folder (``semi3 train --results``)
    examples: list[dict[str, Any]] | None = None  # queries shown with their top photos (``semi3 doodles``)

    @property
    def git_commit(self) -> str | None:
        """The commit of the code that ran (from the machine block)."""
        return (self.machine or {}).get("git_commit")

    @property
    def fast_path(self) -> dict[str, Any] | None:
        """What the training steps ran with (precision and why, channels-last, compile,
        optimiser kernel, threads: :class:`semi3lib.engine.fastpath.FastPath`), from the last
        epoch's history row; None for a run recorded before it was written."""
        return next((row["fast_path"] for row in reversed(self.history) if isinstance(row.get("fast_path"), dict)),
                    None)

    @property
    def hardware(self) -> str | None:
        """The machine in a few words (:func:`semi3lib.engine.hardware.hardware_label`)."""
        return hardware_label(self.machine)

    @property
    def host(self) -> str:
        """The kind of host, as the comparison rule matches runs (:func:`semi3lib.engine.hardware.host_kind`)."""
        return host_kind(self.machine)

    def to_dict(self) -> dict[str, Any]:
        """The record as written: keys in a fixed order, optional ones only when set."""
        out: dict[str, Any] = {"run": self.run, "what": self.what, "seed": self.seed}
        out.update({k: v for k, v in (("command", self.command), ("out_dir", self.out_dir)) if v is not None})
        out.update(metrics=self.metrics, wall_seconds=self.wall_seconds)
        out.update({k: v for k, v in (("rescored", self.rescored), ("scoring_seconds", self.scoring_seconds))
                    if v is not None})
        out.update(overrides=self.overrides, history=self.history, config=self.config, machine=self.machine)
        if self.data is not None:
            out["data"] = self.data
        if self.examples is not None:
            out["examples"] = self.examples
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], default_run: str = "") -> "RunRecord":
        """A record from its JSON object, in today's shape or an earlier one (see the module);
        ``default_run`` names a record without ``run`` (its file's stem). Raises
        :class:`RecordError` when ``raw`` holds no metrics."""
        if not isinstance(raw, Mapping):
            raise RecordError(f"a run record is a JSON object, not {type(raw).__name__}")
        metrics = _split_metrics(raw)
        if metrics is None:
            raise RecordError("no metrics (neither 'metrics' nor the query metrics of a training record)")
        config = raw.get("config") if isinstance(raw.get("config"), dict) else {}
        seed = raw["seed"] if "seed" in raw else (config.get("train") or {}).get("seed")
        return cls(run=str(raw.get("run") or default_run), metrics=metrics, wall_seconds=raw.get("wall_seconds"),
                   seed=seed, what=str(raw.get("what") or ""), overrides=list(raw.get("overrides") or []),
                   history=list(raw.get("history") or []), config=config, machine=raw.get("machine") or None,
                   data=raw.get("data") if isinstance(raw.get("data"), dict) else None,
                   rescored=raw.get("rescored"), scoring_seconds=raw.get("scoring_seconds"),
                   command=raw.get("command"), out_dir=raw.get("out_dir"),
                   examples=raw.get("examples") if isinstance(raw.get("examples"), list) else None)


def _split_metrics(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]] | None:
    """``metrics`` per split: as written, or, for older shapes, the flat metrics (or a training
    record's top-level ``query``) as the query split's. None without any."""
    metrics = raw.get("metrics")
    if isinstance(metrics, dict):
        if any(isinstance(v, dict) for v in metrics.values()):
            return {split: values for split, values in metrics.items() if isinstance(values, dict)}
        return {"query": metrics}
    if isinstance(raw.get("query"), dict):
        return {"query": raw["query"]}
    return None


def training_metrics(history: Sequence[Mapping[str, Any]], final_metrics: Mapping[str, Any]
                     ) -> dict[str, dict[str, Any]]:
    """A finished training's metrics per split: its final query metrics, and the validation
    sketches' of the last epoch when it scored some."""
    metrics: dict[str, dict[str, Any]] = {"query": dict(final_metrics)}
    if history and isinstance(history[-1].get("val"), dict):
        metrics["val"] = dict(history[-1]["val"])
    return metrics


def write_record(path: str | os.PathLike, record: RunRecord) -> Path:
    """Write ``record`` to ``path`` atomically (indented JSON, a final newline)."""
    atomic_write_text(path, json.dumps(record.to_dict(), indent=2) + "\n")
    return Path(path)


def read_record(path: str | os.PathLike) -> RunRecord:
    """The record in ``path``; :class:`RecordError` naming the file when it is not one."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RecordError(f"{path}: not JSON ({err})") from None
    try:
        return RunRecord.from_dict(raw, default_run=path.stem)
    except RecordError as err:
        raise RecordError(f"{path}: not a run record: {err}") from None


def read_records(folder: str | os.PathLike) -> list[tuple[Path, RunRecord]]:
    """Every record in ``folder`` (``*.json``, sorted by name) with its file; files that are
    not records, or cannot be read, are passed over (other outputs may share the folder)."""
    folder = Path(folder)
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append((path, read_record(path)))
        except (OSError, RecordError):
            continue
    return found


__all__ = ["RecordError", "RunRecord", "read_record", "read_records", "training_metrics", "write_record"]
