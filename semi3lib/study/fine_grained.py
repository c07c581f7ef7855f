"""The fine-grained study's records, summed up: find *this* photo (``results/fine-grained/``,
written by ``semi3 study --plan configs/fine-grained.yaml``).

Each record is one network and seed on sketchy-fg10's instance split: its 1,157 test sketches
rank the 200 test photos (the ``*-all-photos`` rows: all 1,000), scored by the rank of each
sketch's own photo. :func:`fine_grained_verdicts` asks the plan's two questions by the book's
one rule on acc@1 (:mod:`semi3lib.study.rule`): does the edgemap branch pay at instance level
(Semi3-Net against the same network without it), and does Semi3-Net beat the two-branch
network. :func:`fine_grained_findings` states them and the issue's target (best row: acc@1
>= 0.45 and acc@10 >= 0.90) for chapter 10 and the README; :func:`rank_curves` and
:func:`record_examples` read what each record kept of its ranking (every query's own-photo
rank; the top-5 of one query per category), so the chapter draws them without a checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from semi3lib.engine.records import read_records
from semi3lib.study.records import compare_rows, load_study, ordered_runs
from semi3lib.study.rule import BEATS, Outcome, score_text, statement, verdict_word
from semi3lib.study.runner import missing_runs as plan_missing_runs

FINE_GRAINED_DIR = Path("results") / "fine-grained"
PLAN = Path("configs") / "fine-grained.yaml"
METRIC = "acc@1"  # what the plan's rule decides on
TARGETS = {"acc@1": 0.45, "acc@10": 0.90}  # the target for the best row, 200 test photos
NETWORKS = ("imagenet-features", "two-branch", "no-edgemap-branch", "semi3net")  # the plan's trained rows, floor first
ALL_PHOTOS = "-all-photos"  # the suffix of a row that scores a network against all 1,000 photos
LABELS = {
    "imagenet-features": "ImageNet features (no training)",
    "two-branch": "two-branch network",
    "no-edgemap-branch": "Semi3-Net without the edgemap branch",
    "semi3net": "Semi3-Net",
}
GROUPS = {"Against the 200 test photos": NETWORKS,
          "Against all 1,000 photos (training photos too)": tuple(n + ALL_PHOTOS for n in NETWORKS)}
GALLERIES = (("", "the 200 test photos"), (ALL_PHOTOS, "all 1,000 photos"))  # row suffix, what it ranks
BRANCH_WORDS = {1: "pays", -1: "costs", 0: "level"}  # the edgemap branch at instance level, by the rule


@dataclass(frozen=True)
class Question:
    """One comparison the plan asks, row against row by the rule."""

    row: str
    other: str
    asks: str
    words: Mapping[int, str]


QUESTIONS = (
    Question("semi3net", "no-edgemap-branch", "the edgemap branch (Semi3-Net against the same network without it)",
             BRANCH_WORDS),
    Question("semi3net", "two-branch", "Semi3-Net against the two-branch network", BEATS),
)


def load_fine_grained(folder: str | Path = FINE_GRAINED_DIR) -> pd.DataFrame | None:
    """The study's runs (:func:`~semi3lib.study.records.load_study`), the plan's rows in order
    (test-photo gallery first, then all photos); None when there are none."""
    runs, _ = load_study(folder)
    if runs is None:
        return None
    return ordered_runs(runs, [row for rows in GROUPS.values() for row in rows])


def fine_grained_verdicts(runs: pd.DataFrame, metric: str = METRIC, gallery: str = "") -> dict[str, Outcome]:
    """Each of :data:`QUESTIONS` by the rule on ``metric`` (seed pairs on one kind of host),
    against the 200 test photos (``gallery=""``) or all photos (``gallery=ALL_PHOTOS``), for
    the questions whose rows both have runs: ``{question.asks: outcome}``, in :data:`QUESTIONS` order."""
    present = set(runs["run"])
    return {q.asks: compare_rows(runs, q.row + gallery, q.other + gallery, metric) for q in QUESTIONS
            if q.row + gallery in present and q.other + gallery in present}


def verdicts_table(runs: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    """One line per question and gallery: the seeds compared, both means, the gap, the seed
    spread and the verdict in the question's words."""
    lines = []
    for gallery, where in GALLERIES:
        verdicts = fine_grained_verdicts(runs, metric, gallery)
        for q in (q for q in QUESTIONS if q.asks in verdicts):
            out = verdicts[q.asks]
            lines.append({"question": q.asks, "gallery": where, "seeds": len(out.paired),
                          f"{q.row} {metric}": score_text(*out.mean_std_a), f"other {metric}": score_text(*out.mean_std_b),
                          "gap": round(out.gap, 3), "spread": round(out.spread, 3),
                          "verdict": verdict_word(out, q.words)})
    return pd.DataFrame(lines, columns=None if lines else ["question"]).set_index("question")


@dataclass(frozen=True)
class BestRow:
    """The trained row with the highest mean acc@1 on the 200 test photos, against the targets."""

    row: str
    seeds: int
    means: Mapping[str, tuple[float, float]]  # metric -> (mean, std) over seeds

    def misses(self) -> dict[str, float]:
        """How far each target is missed (metric -> target - mean), empty when both are met."""
        return {m: t - self.means[m][0] for m, t in TARGETS.items() if self.means[m][0] < t}


def best_row(runs: pd.DataFrame) -> BestRow | None:
    """The trained network (not the floor) with the best mean acc@1 on the test photos."""
    trained = runs[runs["run"].isin(NETWORKS[1:])]
    if not len(trained):
        return None
    means = trained.groupby("run")[list(TARGETS)].mean()
    row = str(means[METRIC].idxmax())
    mine = trained[trained["run"] == row]
    return BestRow(row, len(mine), {m: (float(mine[m].mean()), float(mine[m].std(ddof=1)) if len(mine) > 1
                                         else math.nan) for m in TARGETS})


def fine_grained_findings(runs: pd.DataFrame | None) -> str:
    """The study in a few sentences (chapter 10 and the README): the best row against the
    target, then each question by the rule, on the test photos and on all photos."""
    if runs is None or not len(runs):
        return ("No fine-grained runs yet: `semi3 study --plan configs/fine-grained.yaml` trains them "
                "(about 20-30 minutes a row and seed on 2 CPU cores).")
    parts = []
    best = best_row(runs)
    if best is not None:
        misses = best.misses()
        target = ("meets the target (acc@1 >= {:.2f}, acc@10 >= {:.2f})".format(*TARGETS.values()) if not misses
                  else "misses the target: " + ", ".join(f"{m} short of {TARGETS[m]:.2f} by {gap:.3f}"
                                                         for m, gap in misses.items()))
        seeds = f"{best.seeds} seed{'s' if best.seeds != 1 else ''}"
        parts.append(f"The best network, {LABELS.get(best.row, best.row)} ({seeds}), finds the own photo first for "
                     f"acc@1 {score_text(*best.means['acc@1'])} of the test sketches and among its ten first for "
                     f"acc@10 {score_text(*best.means['acc@10'])}: it {target}.")
    floor = runs[runs["run"] == NETWORKS[0]]
    if len(floor):
        parts.append(f"ImageNet features without training: acc@1 {floor['acc@1'].mean():.3f}, "
                     f"acc@10 {floor['acc@10'].mean():.3f}.")
    for gallery, where in GALLERIES:
        verdicts = fine_grained_verdicts(runs, gallery=gallery)
        answers = [f"{q.asks}: {statement(verdicts[q.asks], q.words, mark='**')}" for q in QUESTIONS if q.asks in verdicts]
        if answers:
            parts.append(f"Against {where}, " + "; ".join(answers) + ".")
    return " ".join(parts)


def missing_runs(folder: str | Path = FINE_GRAINED_DIR, plan: str | Path = PLAN) -> list[str]:
    """The plan's runs without a record in ``folder`` (:func:`semi3lib.study.runner.missing_runs`)."""
    return plan_missing_runs(plan, folder)


def query_scope(folder: str | Path = FINE_GRAINED_DIR) -> tuple[int, int] | None:
    """How many query sketches ranked how many photos in the study's test-photo rows
    (``(queries, gallery)``, from the first such record); None without records."""
    for _, record in read_records(folder):
        scores = record.metrics.get("query") or {}
        if record.run in NETWORKS and "queries" in scores:
            return int(scores["queries"]), int(scores["gallery"])
    return None


def rank_curves(folder: str | Path = FINE_GRAINED_DIR, max_rank: int | None = None) -> pd.DataFrame:
    """acc@K for every K, per row, pooled over its seeds' queries, from each record's own-photo
    ranks (records without them are left out): columns ``run``, ``K``, ``acc@K``, ``seeds``."""
    ranks: dict[str, list[np.ndarray]] = {}
    for _, record in read_records(folder):
        kept = (record.metrics.get("query") or {}).get("own photo ranks")
        if kept:
            ranks.setdefault(record.run, []).append(np.asarray(kept, dtype=np.int64))
    rows = []
    for run, per_seed in ranks.items():
        pooled = np.concatenate(per_seed)
        pooled = pooled[pooled > 0]
        top = int(max_rank or pooled.max())
        ks = np.arange(1, top + 1)
        share = np.searchsorted(np.sort(pooled), ks, side="right") / len(pooled)
        rows.append(pd.DataFrame({"run": run, "K": ks, "acc@K": share, "seeds": len(per_seed)}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["run", "K", "acc@K", "seeds"])


def record_examples(folder: str | Path = FINE_GRAINED_DIR, row: str = "semi3net", seed: int = 0
                    ) -> list[dict[str, Any]]:
    """The examples a record kept (one query per category with its top-5 and its own photo's
    rank); empty when the record does not exist or kept none."""
    for _, record in read_records(folder):
        if record.run == row and record.seed == seed:
            return list((record.metrics.get("query") or {}).get("examples") or [])
    return []


__all__ = ["ALL_PHOTOS", "BestRow", "FINE_GRAINED_DIR", "GROUPS", "LABELS", "METRIC", "NETWORKS", "PLAN", "QUESTIONS",
           "Question", "TARGETS", "best_row", "fine_grained_findings", "fine_grained_verdicts", "load_fine_grained",
           "missing_runs", "rank_curves", "record_examples", "query_scope", "verdicts_table"]
