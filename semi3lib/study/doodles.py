"""The doodle study's records, summed up: how each model does on Quick, Draw! doodles and on
Sketchy's own query sketches (``results/doodles/``, written by ``semi3 doodles``).

Each record is one model, scored three ways: sketchy-mini's query sketches, the doodles of the
classes it was adapted on, the doodles of the classes held out. :func:`doodle_table` puts them
side by side; :func:`doodle_findings` states the issue's two targets against them (held-out
doodles, and Sketchy accuracy against the seed spread of the study's Semi3-Net row), so the
README and chapter 5 say the same, from the records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from semi3lib.engine.records import RunRecord, read_records
from semi3lib.study.rule import mean_std

DOODLES_DIR = Path("results") / "doodles"
HELD_OUT_TARGET = 0.40  # the target for held-out-class doodles, mAP@all
# The records, in the order a reader meets them: before, the query-time change alone, the two recipes.
ORDER = ("book-model", "book-model-normalised-strokes", "doodle-adapted", "doodle-adapted-long")
LABELS = {
    "book-model": "the book's model",
    "book-model-normalised-strokes": "the book's model, strokes normalised at query time",
    "doodle-adapted": "fine-tuned for doodles, 3 epochs, half the sketches doodle-like",
    "doodle-adapted-long": "fine-tuned for doodles, 5 epochs, 0.8 of the sketches doodle-like",
}


def load_doodle_records(folder: str | Path = DOODLES_DIR) -> dict[str, RunRecord]:
    """The doodle records by file stem, in :data:`ORDER` (others after, by name)."""
    found = {path.stem: record for path, record in read_records(folder)
             if "doodles-held-out" in record.metrics}
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda item: (rank.get(item[0], len(ORDER)), item[0])))


def doodle_table(records: dict[str, RunRecord]) -> pd.DataFrame:
    """One row per model: mAP@all of Sketchy queries, adapted-class and held-out-class doodles."""
    rows = []
    for name, record in records.items():
        m = record.metrics
        rows.append({
            "model": LABELS.get(name, name),
            "record": name,
            "sketchy queries": m["query"]["mAP@all"],
            "doodles, adapted classes": m.get("doodles-adapted", {}).get("mAP@all", math.nan),
            "doodles, held-out classes": m["doodles-held-out"]["mAP@all"],
            "doodle queries": int(m.get("doodles-adapted", {}).get("queries", 0) + m["doodles-held-out"]["queries"]),
        })
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class DoodleFindings:
    """What the records say against the issue's two targets: the book's model (``before``) and
    every adapted model (``after``, by record name, none chosen over another), with the seed
    spread of the study's Semi3-Net row that the Sketchy score must stay within."""

    before: RunRecord
    after: dict[str, RunRecord]
    adapted_classes: str
    held_out_classes: str
    study_mean: float
    study_std: float

    def held_out_gap(self, name: str) -> float:
        return self.after[name].metrics["doodles-held-out"]["mAP@all"] - HELD_OUT_TARGET

    def sketchy_change(self, name: str) -> float:
        return self.after[name].metrics["query"]["mAP@all"] - self.before.metrics["query"]["mAP@all"]

    def meets_both(self, name: str) -> bool:
        return self.held_out_gap(name) >= 0 and abs(self.sketchy_change(name)) <= self.study_std


def doodle_findings(records: dict[str, RunRecord], study_seeds: dict[int, float]) -> DoodleFindings:
    """The findings, from the doodle records and the study's Semi3-Net seeds (``{seed: mAP@all}``)."""
    adapted = {n: r for n, r in records.items() if r.config.get("data", {}).get("doodle_adapt_classes")}
    if "book-model" not in records or not adapted:
        raise ValueError("the doodle study needs results/doodles/book-model.json and at least one adapted model")
    groups = {(r.metrics["doodles-adapted"]["classes"], r.metrics["doodles-held-out"]["classes"])
              for r in (records["book-model"], *adapted.values())}
    if len(groups) != 1:
        raise ValueError(f"the doodle records split the classes differently: {sorted(groups)}")
    (adapted_classes, held_out_classes), = groups
    mean, std = mean_std(study_seeds)
    return DoodleFindings(records["book-model"], adapted, adapted_classes, held_out_classes, mean, std)


def findings_text(f: DoodleFindings) -> str:
    """The findings, a sentence for the book's model and one for each adapted model (README and chapter 5)."""
    before = f.before.metrics
    lines = [f"The book's model finds photos for doodles of {class_words(f.adapted_classes)} at mAP@all "
             f"{before['doodles-adapted']['mAP@all']:.3f} and of {class_words(f.held_out_classes)} at "
             f"{before['doodles-held-out']['mAP@all']:.3f} (its Sketchy queries: {before['query']['mAP@all']:.3f})."]
    for name, record in f.after.items():
        after, gap, change = record.metrics, f.held_out_gap(name), f.sketchy_change(name)
        target = (f"meets the target of {HELD_OUT_TARGET:.2f}" if gap >= 0
                  else f"misses the target of {HELD_OUT_TARGET:.2f} by {-gap:.3f}")
        if math.isnan(f.study_std):  # no study records (or one seed): nothing to measure the change against
            lines.append(
                f"{LABELS.get(name, name).capitalize()}: {after['doodles-adapted']['mAP@all']:.3f} on the classes it "
                f"saw doodles of, {after['doodles-held-out']['mAP@all']:.3f} on the two held out ({target}); Sketchy "
                f"queries {after['query']['mAP@all']:.3f} ({change:+.3f}; the study's Semi3-Net seeds are not here to "
                "give a spread).")
            continue
        spread = "within" if abs(change) <= f.study_std else "outside"
        digits = 4 if round(abs(change), 3) == round(f.study_std, 3) else 3  # a hair apart: say which way
        lines.append(
            f"{LABELS.get(name, name).capitalize()}: {after['doodles-adapted']['mAP@all']:.3f} on the classes it saw "
            f"doodles of, {after['doodles-held-out']['mAP@all']:.3f} on the two held out ({target}); Sketchy queries "
            f"{after['query']['mAP@all']:.3f} ({change:+.{digits}f}, {spread} the seed spread of the study's Semi3-Net row, "
            f"{f.study_mean:.3f} ± {f.study_std:.{digits}f}).")
    return " ".join(lines)


def class_words(classes: str) -> str:
    """``"coffee_cup,spoon"`` -> ``"coffee cup and spoon"``."""
    names = [c.replace("_", " ") for c in classes.split(",")]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
