"""What the generators read: the repository's study records, book results, plans and benchmarks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from semi3lib.study import bridge
from semi3lib.study.records import compare_rows, load_study
from semi3lib.study.rule import Outcome
from semi3lib.book.generated.words import METRIC

class MissingRecords(RuntimeError):
    """A generator needs records that are not there."""





@dataclass
class Records:
    """The records of one repository (``<root>/results``), read once and shared by generators."""

    root: Path

    def _study(self, folder: str, split: str = "query") -> pd.DataFrame:
        runs, note = load_study(self.root / "results" / folder, split=split)
        if runs is None:
            raise MissingRecords(note)
        return runs

    @cached_property
    def bridge(self) -> pd.DataFrame:
        """Chapter 9's three networks in every setting (:func:`semi3lib.study.bridge.load_settings`)."""
        return bridge.load_settings(root=self.root)

    @cached_property
    def study(self) -> pd.DataFrame:
        """The reproduction study's runs on the query split."""
        return self._study("sketchy-mini")

    @cached_property
    def tuning(self) -> pd.DataFrame:
        """The tuning search's runs on the validation sketches."""
        return self._study("tuning", split="val")

    @cached_property
    def tuning_queries(self) -> pd.DataFrame:
        """The tuning search's runs on the query split (looked at only after the choices)."""
        return self._study("tuning")

    @cached_property
    def untuned(self) -> pd.DataFrame:
        """The study's first rows, before the tuning search (backbone at 0.3 of the head's rate)."""
        return self._study("sketchy-mini/backbone-lr-0.3")

    def json(self, relative: str) -> dict[str, Any]:
        path = self.root / "results" / relative
        if not path.is_file():
            raise MissingRecords(f"{path} does not exist")
        return json.loads(path.read_text())

    def plan(self, relative: str) -> dict[str, Any]:
        return yaml.safe_load((self.root / relative).read_text())

    def seeds(self, row: str, table: str = "study", metric: str = METRIC) -> dict[int, float]:
        """``{seed: score}`` of one row of a study table."""
        runs: pd.DataFrame = getattr(self, table)
        rows = runs[runs["run"] == row]
        if rows.empty:
            raise MissingRecords(f"no records of row {row!r} in the {table} records")
        return {int(s): float(v) for s, v in zip(rows["seed"], rows[metric]) if pd.notna(v)}

    def compare(self, row: str, other: str, table: str = "study", metric: str = METRIC) -> Outcome:
        """``row`` against ``other`` by the rule, seed pairs run on one kind of host only."""
        runs: pd.DataFrame = getattr(self, table)
        for name in (row, other):
            if not (runs["run"] == name).any():
                raise MissingRecords(f"no records of row {name!r} in the {table} records")
        return compare_rows(runs, row, other, metric)

    def minutes(self, row: str, table: str = "study") -> float:
        """The mean wall time of a row's runs, in minutes."""
        runs: pd.DataFrame = getattr(self, table)
        return float(runs.loc[runs["run"] == row, "wall_seconds"].mean()) / 60

    def hosts(self, row: str, table: str = "study") -> list[str]:
        runs: pd.DataFrame = getattr(self, table)
        return sorted({host_name(h) for h in runs.loc[runs["run"] == row, "hardware"]})


def host_name(hardware: str | None) -> str:
    """``AMD EPYC`` / ``Intel Xeon`` (with the instruction set where recorded, ``AMD EPYC (AVX2)``)
    from a record's hardware label."""
    if not hardware:
        return "an unrecorded host"
    isa = hardware.split(",")[0].partition(" (")[2].rstrip(")")
    return ("Intel Xeon" if "Xeon" in hardware else hardware.split(",")[0].partition(" (")[0]) + (f" ({isa})" if isa else "")


def book_data(records: Records) -> dict[str, Any]:
    """What chapter 1 counted: categories and the split's sizes."""
    return records.json("book/cpu/01_data.json")


def study_config(records: Records) -> dict[str, Any]:
    """The config every row of the study starts from (its reference row's, seed 0)."""
    return records.json("sketchy-mini/semi3net-seed0.json")["config"]


def machine_of(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """A results file's machine block: ``machine`` (run records) or ``hardware`` (the chapters'
    results files), when it describes a machine (:func:`semi3lib.engine.hardware.machine_info`)."""
    block = record.get("machine") or record.get("hardware")
    return block if isinstance(block, dict) and "cpu" in block else None
