"""The README's headline, computed from the study's records: the rows that say most (the floor,
the best baseline, Semi3-Net, its best variant, the network without the edgemap branch, the
best baseline tuned alike) as a table, then three comparisons by the book's rule.

The README's ``<!-- gen:readme-headline -->`` block is written from it
(``python -m semi3lib.book.generated --write``)."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from semi3lib.study.records import compare_rows, study_statistics
from semi3lib.study.rule import BEATS, statement
from semi3lib.study.tables import STUDY_GROUPS, ReaderTable, reader_table, study_table

FLOOR_ROW, METHOD_ROW, NO_EDGE_ROW = "imagenet-features", "semi3net", "no-edgemap-branch"
# prefixes of the rows that are not Semi3-Net: the baselines and the network without the edgemap branch
NOT_SEMI3NET = ("imagenet-features", "frozen-backbone-ce-head", "two-branch-", NO_EDGE_ROW)
# The comparisons the README states: (what row A is, what row B is), as headline_rows names them.
FINDINGS = (("Semi3-Net as in the paper", "the best baseline"),
            ("Semi3-Net without its edgemap branch", "Semi3-Net as in the paper"),
            ("Semi3-Net's best variant", "the best baseline with the same tuning"))
WORDS = {sign: f"**{word}**" for sign, word in BEATS.items()}  # the rule's words, in bold as chapter 9's


def _is_semi3net_variant(row: str) -> bool:
    return not row.startswith(NOT_SEMI3NET)


def headline_rows(runs: pd.DataFrame, metric: str = "mAP@all") -> dict[str, str]:
    """The study's rows that say most, chosen from the records by ``metric`` (the mean over
    seeds): ``{what it is: row}`` for the ImageNet floor, the best baseline, Semi3-Net, its best
    variant (an ablation or tuned row that keeps the edgemap branch), the network without the
    edgemap branch, and the best baseline's tuned twin where it exists. Rows absent from the
    records are left out."""
    stats = study_statistics(runs)
    mean = stats[f"{metric} mean"]
    baselines = [r for r in STUDY_GROUPS["Floor and baselines"] if r in stats.index and r != FLOOR_ROW]
    variants = [r for r in stats.index if r != METHOD_ROW and _is_semi3net_variant(r)]
    best_baseline = max(baselines, key=mean.get) if baselines else None
    chosen = {
        "ImageNet features, no training (the floor)": FLOOR_ROW,
        "the best baseline": best_baseline,
        "Semi3-Net as in the paper": METHOD_ROW,
        "Semi3-Net's best variant": max(variants, key=mean.get) if variants else None,
        "Semi3-Net without its edgemap branch": NO_EDGE_ROW,
        "the best baseline with the same tuning": f"{best_baseline}-label-smoothing" if best_baseline else None,
    }
    return {what: row for what, row in chosen.items() if row is not None and row in stats.index}


def headline_table(runs: pd.DataFrame, metrics: Sequence[str] = ("mAP@all", "P@200")) -> ReaderTable:
    """The README's headline: :func:`headline_rows` with seeds, training minutes and ``metrics``
    (mean ± std), Semi3-Net the reference."""
    rows = headline_rows(runs)
    full = study_table(runs, groups=None, metrics=metrics)
    order = list(rows.values())
    values = full.values.loc[order].copy()
    values.insert(0, "what", list(rows))
    return reader_table(values, full.std.loc[order], integers=("seeds",), best={m: "max" for m in metrics},
                        reference=METHOD_ROW, digits={"train min": 1})


def headline_findings(runs: pd.DataFrame, metric: str = "mAP@all") -> list[str]:
    """The comparisons the README states (:data:`FINDINGS`), each by the book's rule from the
    records, in its words: ```row` against `other` on mAP@all: **behind** (gap ..., ...)``."""
    rows = headline_rows(runs, metric)
    lines = []
    for a, b in FINDINGS:
        if a in rows and b in rows:
            outcome = compare_rows(runs, rows[a], rows[b], metric)
            lines.append(f"`{rows[a]}` against `{rows[b]}` on {metric}: {statement(outcome, WORDS)}")
    return lines


def readme_headline(runs: pd.DataFrame) -> str:
    """The README's generated block: :func:`headline_table` as Markdown, then
    :func:`headline_findings` as a list."""
    return headline_table(runs).to_markdown() + "\n\n" + "\n".join(f"- {line}." for line in headline_findings(runs))
