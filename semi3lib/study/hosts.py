"""The host effect: chapter 4's run (its config, seed 0) on each kind of host, beside the seed spread.

The same config and seed trains to other digits on another kind of CPU (``results/book/cpu``'s
run on an AMD EPYC host scored 0.580 where the study's ``semi3net`` seed 0, the same config and
seed on a host of the same CPU name, scored 0.590). The host check (``configs/host-check.yaml``,
a ``per_host`` plan: one record per kind of host) runs that configuration once on the machine at
hand; :func:`host_effect_table` sets its records beside the committed ones of the same config
and seed, and :func:`host_effect_summary` says how far apart the hosts are (the host effect)
against how far apart seeds are on one host (the seed spread), so a reader knows which of the
two a gap between rows can hide in. ``semi3 study --plan configs/host-check.yaml --host-effect``
prints both.

A CPU with AVX-512 capped to AVX2 (``semi3 --isa avx2``) should compute what an AVX2 host
computes. The cap check (``configs/avx2-cap-check.yaml``) trains a recorded run again so capped;
:func:`cap_checks` sets each such run beside its record (same score and epoch losses, to the last
digit?) and :func:`cap_check_text` says so in chapter 11.

A record written before records kept the instruction set says only ``AMD EPYC (instruction set
not recorded)``. The recognition check (``configs/host-recognition-160px.yaml``, a plan with
``stop_after_epochs``) trains such a run's first epoch again on a host of a known kind;
:func:`recognitions` sets each beside its record, and where every epoch's total loss is equal to
the last digit, the run computed what that kind computes: it ran as that kind.
:func:`recognised_hosts` gives those kinds to :func:`semi3lib.study.records.load_study`, so the
rule pairs the run with that kind's, and :func:`recognition_text` says so in chapters 9 and 11.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from semi3lib.config import NOT_WHAT_IS_COMPUTED, ConfigError, config_from_dict
from semi3lib.engine.hardware import UNKNOWN_ISA, host_kind
from semi3lib.engine.records import RunRecord, read_record, read_records
from semi3lib.study.rule import mean_std

METRIC = "mAP@all"
# The committed runs of chapter 4's configuration and seed: the book's run, the study's seed 0.
BOOK_RUN = Path("results") / "book" / "cpu" / "04_training.json"
STUDY_DIR = Path("results") / "sketchy-mini"
CHECK_DIR = Path("results") / "host-check"  # the host check's records: configs/host-check.yaml's out_dir
STUDY_ROW = "semi3net"
# The run's name and the settings that change where or how fast it runs, not what it computes.
NOT_THE_CONFIG = (("name",), *sorted(NOT_WHAT_IS_COMPUTED))


def _what_is_computed(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The config with defaults filled in (older records lack newer keys) and without
    :data:`NOT_THE_CONFIG`; None when it is not a valid config."""
    try:
        values = config_from_dict(dict(config)).to_dict()
    except (ConfigError, TypeError):
        return None
    for section, *key in NOT_THE_CONFIG:
        if key:
            values.get(section, {}).pop(key[0], None)
        else:
            values.pop(section, None)
    return values


def host_effect_table(check_dir: str | Path, root: str | Path = ".") -> pd.DataFrame:
    """One line per run of chapter 4's configuration: the committed book run and study seed 0
    (under ``root``), then every record of the host check in ``check_dir``; columns ``source``,
    ``host`` (:func:`~semi3lib.engine.hardware.host_kind`), ``seed``, :data:`METRIC` and
    ``same config`` (whether it computes what the book run computes)."""
    root = Path(root)
    runs: list[dict[str, Any]] = []
    book = root / BOOK_RUN
    if book.is_file():
        raw = json.loads(book.read_text())
        runs.append({"source": str(BOOK_RUN), "machine": raw.get("hardware"), "config": raw.get("config") or {},
                     "seed": (raw.get("config") or {}).get("train", {}).get("seed"),
                     METRIC: (raw.get("final_query_metrics") or {}).get(METRIC)})
    for path, record in read_records(root / STUDY_DIR):
        if record.run == STUDY_ROW and record.seed == 0:
            runs.append({"source": str(STUDY_DIR / path.name), "machine": record.machine, "config": record.config,
                         "seed": record.seed, METRIC: record.metrics.get("query", {}).get(METRIC)})
    for path, record in read_records(check_dir):
        runs.append({"source": str(path), "machine": record.machine, "config": record.config, "seed": record.seed,
                     METRIC: record.metrics.get("query", {}).get(METRIC)})
    reference = _what_is_computed(runs[0]["config"]) if runs else None
    lines = [{"source": r["source"], "host": host_kind(r["machine"]), "seed": r["seed"], METRIC: r[METRIC],
              "same config": reference is not None and _what_is_computed(r["config"]) == reference} for r in runs]
    return pd.DataFrame(lines, columns=["source", "host", "seed", METRIC, "same config"])


def seed_spread(root: str | Path = ".") -> tuple[float, str, int]:
    """The sample std of the study's ``semi3net`` seeds on the kind of host with the most of
    them: ``(std, host, seeds)``; NaN with fewer than two seeds on any one kind."""
    by_host: dict[str, list[float]] = {}
    for _, record in read_records(Path(root) / STUDY_DIR):
        if record.run == STUDY_ROW and METRIC in record.metrics.get("query", {}):
            by_host.setdefault(record.host, []).append(float(record.metrics["query"][METRIC]))
    if not by_host:
        return float("nan"), "no host", 0
    host, scores = max(by_host.items(), key=lambda item: len(item[1]))
    return mean_std(scores)[1], host, len(scores)


def _recognised(same: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Runs whose record lacks the instruction set but whose score equals, to the last digit, a
    run of a recorded kind with the same CPU name (same config and seed): deterministic training
    makes that the kind they ran as. Returns the table with their host set to it, and
    ``(source, kind)`` of each."""
    unknown = f"({UNKNOWN_ISA})"
    known: list[tuple[str, str]] = []
    hosts = list(same["host"])
    for i, (source, host, score) in enumerate(zip(same["source"], same["host"], same[METRIC])):
        if host.endswith(unknown):
            cpu = host[: -len(unknown)]
            matches = sorted({h for h, v in zip(same["host"], same[METRIC])
                              if v == score and h.startswith(cpu) and not h.endswith(unknown)})
            if len(matches) == 1:
                hosts[i] = matches[0]
                known.append((source, matches[0]))
    return same.assign(host=hosts), known


def host_effect_summary(table: pd.DataFrame, root: str | Path = ".") -> str:
    """The host effect in words: the spread of seed 0's score over the kinds of host that ran
    the same config, beside the seed spread on one host."""
    same = table[table["same config"] & (table["seed"] == 0) & table[METRIC].notna()]
    same, known = _recognised(same)
    per_host = same.groupby("host")[METRIC].agg(["min", "max", "count"])
    spread, spread_host, n = seed_spread(root)
    spread_text = f"seed spread (std of {n} `{STUDY_ROW}` seeds on {spread_host}) {spread:.3f}"
    within = float((per_host["max"] - per_host["min"]).max()) if len(per_host) else 0.0
    # records without an instruction set may be of two kinds that one CPU name hides
    note = (f"; runs on one recorded kind of host differ by up to {within:.3f} (where the instruction set was not "
            "recorded, they may be two kinds)") if within > 0 else ""
    note += "".join(f"; `{source}` (instruction set not recorded) equals the {host} run to the last digit, so it "
                    "ran as that kind" for source, host in known)
    if len(per_host) < 2:
        only = per_host.index[0] if len(per_host) else "no host"
        return f"one kind of host so far ({only}): no host effect between kinds yet{note}; {spread_text}"
    effect = float(per_host["max"].max() - per_host["min"].min())
    hosts = ", ".join(f"{host} {row['min']:.3f}" + (f" to {row['max']:.3f}" if row["max"] != row["min"] else "")
                      for host, row in per_host.iterrows())
    return (f"host effect {effect:.3f} (seed 0 of chapter 4's config on {len(per_host)} kinds of host: {hosts}"
            f"{note}); {spread_text}")


# Runs trained again on a wider CPU capped to a narrower instruction set (``semi3 --isa``):
# capped/<plan>/<file> trains results/<plan>/<file> again (configs/avx2-cap-check.yaml).
CAPPED_DIR = CHECK_DIR / "capped"
LOSS = "loss_total"


@dataclass(frozen=True)
class CapCheck:
    """A capped run beside the record it trains again: same config, same digits?"""

    capped: str  # the capped run's record, relative to the root
    original: str  # the record it trains again
    run: str
    seed: int | None
    cpu: str  # the capped CPU's name and what it offers: "AMD EPYC with AVX512"
    capped_to: str  # the instruction set its kernels used: "AVX2"
    host: str  # the capped run's kind of host (the one it is capped to)
    original_host: str
    score: float | None
    original_score: float | None
    epochs: int  # epochs in the original's history
    equal_epochs: int  # epochs whose total loss is equal, to the last digit
    same_config: bool

    @property
    def identical(self) -> bool:
        return (self.same_config and self.host == self.original_host and self.score == self.original_score
                and self.epochs > 0 and self.equal_epochs == self.epochs)


def cap_checks(root: str | Path = ".") -> list[CapCheck]:
    """Every capped run under ``root``/:data:`CAPPED_DIR` whose original record exists."""
    root = Path(root)
    found = []
    for plan in sorted(p for p in (root / CAPPED_DIR).glob("*") if p.is_dir()):
        for path, capped in read_records(plan):
            original_path = root / "results" / plan.name / path.name
            if not original_path.is_file():
                continue
            original = read_record(original_path)
            machine = capped.machine or {}
            found.append(CapCheck(
                capped=str(path.relative_to(root)), original=str(original_path.relative_to(root)),
                run=capped.run, seed=capped.seed,
                cpu=f"{machine.get('cpu', 'an unrecorded CPU')} with {machine.get('cpu_isa') or 'an unrecorded instruction set'}",
                capped_to=str(machine.get("cpu_capability")), host=capped.host, original_host=original.host,
                score=capped.metrics.get("query", {}).get(METRIC), original_score=original.metrics.get("query", {}).get(METRIC),
                epochs=len(original.history), equal_epochs=_equal_epochs(capped, original),
                same_config=_what_is_computed(capped.config) == _what_is_computed(original.config)))
    return found


def _equal_epochs(again: RunRecord, original: RunRecord) -> int:
    """How many epochs of a run trained again end with the record's total loss, to the last digit."""
    return sum(a.get(LOSS) is not None and a.get(LOSS) == b.get(LOSS) for a, b in zip(again.history, original.history))


def cap_check_text(checks: list[CapCheck]) -> str:
    """The cap checks in a sentence each: whether a capped host computes what the host it is
    capped to computed, which is what lets the rule pair their runs."""
    if not checks:
        return ("No cap check yet: `semi3 --isa avx2 study --plan configs/avx2-cap-check.yaml` trains a recorded "
                "run again on a CPU with AVX-512 capped to AVX2.")
    lines = []
    for c in checks:
        what = f"`{c.original}` ({c.original_host}), trained again on an {c.cpu} capped to {c.capped_to}"
        if c.identical:
            lines.append(f"{what}: {METRIC} {c.score:.4f} and the loss of each of its {c.epochs} epochs equal to the "
                         f"record's, to the last digit. So runs capped so pair with that host's.")
        else:
            lines.append(f"{what}: {METRIC} {c.score} against the record's {c.original_score} ({c.original_host}), "
                         f"{c.equal_epochs} of {c.epochs} epoch losses equal"
                         f"{'' if c.same_config else ', another config'}: not the same computation, so runs "
                         "capped so are not the host they are capped to.")
    return " ".join(lines)


# Records without an instruction set, their first epochs trained again on a host of a known kind
# (``semi3 study --plan configs/host-recognition-160px.yaml``): recognised/<plan>/<file> trains
# the first epochs of results/<plan>/<file> again.
RECOGNISED = "recognised"
RECOGNISED_DIR = CHECK_DIR / RECOGNISED


@dataclass(frozen=True)
class Recognition:
    """A run whose record lacks the instruction set, its first epochs trained again on a host of
    a known kind: did that kind compute what the run computed?"""

    check: str  # the check's record (its first epochs trained again)
    original: str  # the record it trains again
    run: str
    seed: int | None
    host: str  # the kind of host the check ran on
    original_host: str  # the record's: "AMD EPYC (instruction set not recorded)"
    epochs: int  # epochs trained again
    equal_epochs: int  # of those, the epochs whose total loss is the record's, to the last digit
    same_config: bool

    @property
    def recognised(self) -> bool:
        """Every epoch trained again is equal to the record's, the config is the record's, and
        the record names the same CPU without an instruction set."""
        unknown = f"({UNKNOWN_ISA})"
        cpu = self.original_host[: -len(unknown)]
        return (self.same_config and self.original_host.endswith(unknown) and self.host.startswith(cpu)
                and not self.host.endswith(unknown) and self.epochs > 0 and self.equal_epochs == self.epochs)


def _recognitions_in(check_dir: Path, study_dir: Path, root: Path | None = None) -> list[Recognition]:
    """The checks in ``check_dir`` beside their records in ``study_dir`` (same file name); paths
    relative to ``root`` when given."""
    def shown(path: Path) -> str:
        return str(path.relative_to(root)) if root is not None else str(path)

    found = []
    for path, check in read_records(check_dir):
        original_path = study_dir / path.name
        if not original_path.is_file():
            continue
        original = read_record(original_path)
        found.append(Recognition(
            check=shown(path), original=shown(original_path), run=check.run, seed=check.seed, host=check.host,
            original_host=original.host, epochs=len(check.history), equal_epochs=_equal_epochs(check, original),
            same_config=_what_is_computed(check.config) == _what_is_computed(original.config)))
    return found


def recognitions(root: str | Path = ".") -> list[Recognition]:
    """Every recognition check under ``root``/:data:`RECOGNISED_DIR` whose record exists."""
    root = Path(root)
    return [found for plan in sorted(p for p in (root / RECOGNISED_DIR).glob("*") if p.is_dir())
            for found in _recognitions_in(plan, root / "results" / plan.name, root)]


def recognised_hosts(study_dir: str | Path) -> dict[str, str]:
    """``{record file name: kind of host}`` of the records in ``study_dir`` (``results/<plan>``)
    that a recognition check (``results/host-check/recognised/<plan>``) recognised."""
    study_dir = Path(study_dir)
    check_dir = study_dir.parent / CHECK_DIR.name / RECOGNISED / study_dir.name
    if not check_dir.is_dir():
        return {}
    return {Path(r.original).name: r.host for r in _recognitions_in(check_dir, study_dir) if r.recognised}


def recognition_text(found: list[Recognition]) -> str:
    """The recognition checks in a sentence per study: which runs ran as which kind of host,
    and which were not recognised (they keep "instruction set not recorded")."""
    if not found:
        return "No recognition check yet."
    by_study: dict[str, list[Recognition]] = {}
    for r in found:
        by_study.setdefault(str(Path(r.original).parent), []).append(r)
    lines = []
    for study, checks in by_study.items():
        known = [r for r in checks if r.recognised]
        kinds = sorted({r.host for r in known})
        line = (f"`{study}`: {len(known)} of {len(checks)} runs without an instruction set had their first "
                f"epoch{'s' if any(r.epochs > 1 for r in checks) else ''} trained again to the record's total "
                f"loss, to the last digit, on {' and '.join(kinds) or 'a host of a known kind'}")
        line += (", so they ran as that kind and pair with its runs" if known else "")
        missed = [f"`{Path(r.original).name}` ({r.equal_epochs} of {r.epochs} equal"
                  f"{'' if r.same_config else ', another config'}, on {r.host})" for r in checks if not r.recognised]
        lines.append(line + (f"; not recognised: {', '.join(missed)}" if missed else "") + ".")
    return " ".join(lines)


__all__ = ["CAPPED_DIR", "CHECK_DIR", "RECOGNISED_DIR", "CapCheck", "Recognition", "cap_check_text", "cap_checks",
           "host_effect_summary", "host_effect_table", "recognised_hosts", "recognition_text", "recognitions",
           "seed_spread"]
