"""The paper's claims beside this book's measurements ("Paper vs. this book").

The claims and the study rows that test them are written in ``book/paper-claims.yaml``; the
measurements and verdicts are computed here from the study's records (``results/sketchy-mini``)
by the book's one comparison rule (:func:`semi3lib.study.rule.compare`), so the page changes
when the records do. A claim is *supported* when Semi3-Net beats every row it is compared with
by the rule (past the seed spread and ahead with every seed), *not supported here* when the rule
decides a comparison against it (level or behind), *undecided here* when the rule cannot decide
one (a row with one seed, or, since seed pairs count only when both runs had one kind of host,
one same-host pair) and no comparison goes against it. Every comparison names the kinds of host
its seed pairs ran on, and the seeds left out because the rows ran them on different kinds.
:func:`write_page` writes the page's table as Markdown for the site build
(``_build/generated/paper-vs-book.md``, included by ``book/paper-vs-book.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from semi3lib.study.records import compare_rows, load_study, study_statistics
from semi3lib.study.rule import Outcome, score_text, statement
from semi3lib.study.tables import markdown_table

# Commonly quoted for Semi3-Net (Lei et al. 2020); not checked against the paper here.
PAPER_REPORTED = (
    {"dataset": "Sketchy (full: 6,250 queries, 73,002 photos)", "mAP@all": 0.916, "P@200": 0.930},
    {"dataset": "TU-Berlin Extension (2,500 queries, 204,489 photos)", "mAP@all": 0.800, "P@200": 0.813},
)

CLAIMS_FILE = Path("book") / "paper-claims.yaml"
STUDY = "sketchy-mini"


def records_dir(plan: str) -> Path:
    """A plan's records folder, relative to the project root."""
    return Path("results") / plan


STUDY_DIR = records_dir(STUDY)
GENERATED = Path("_build") / "generated" / "paper-vs-book.md"
SUPPORTED, NOT_SUPPORTED, UNDECIDED, UNTESTED = "supported", "not supported here", "undecided here", "untested here"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, UNDECIDED, UNTESTED)


def paper_reported_table() -> pd.DataFrame:
    """:data:`PAPER_REPORTED`, one row per dataset, columns labelled ``(paper)``."""
    table = pd.DataFrame(PAPER_REPORTED).set_index("dataset")
    table.columns = [f"{c} (paper)" for c in table.columns]
    return table


def load_claims(path: str | Path = CLAIMS_FILE) -> list[dict[str, Any]]:
    claims = (yaml.safe_load(Path(path).read_text()) or {}).get("claims") or []
    for claim in claims:
        if not claim.get("claim") or not (claim.get("compare") or claim.get("untested")):
            raise ValueError(f"{path}: every claim needs 'claim' and either 'compare' or 'untested': {claim}")
    return claims


def records_of(claim: dict[str, Any]) -> str:
    """The plan whose records test ``claim``: its folder under ``results/``."""
    return str(claim.get("records") or STUDY)


def _value(stats: pd.DataFrame, row: str, records: str, metric: str = "mAP@all") -> str:
    mean, std, seeds = stats.at[row, f"{metric} mean"], stats.at[row, f"{metric} std"], int(stats.at[row, "seeds"])
    # no-break spaces: a cell of the page's table keeps a score and its spread on one line
    score = score_text(mean, std).replace(" ", "\u00a0")
    where = "" if records == STUDY else f", `{records}`"
    return f"`{row}` {score} ({seeds} seed{'s' if seeds != 1 else ''}{where})"


def _why(row: str, other: str, outcome: Outcome) -> str:
    """One comparison in the rule's words: ```semi3net` against `no-coattention`: level (...)``."""
    return f"`{row}` against `{other}`: {statement(outcome)}"


def setting(runs: pd.DataFrame, study_dir: str | Path = STUDY_DIR, shown: str | Path = STUDY_DIR) -> str:
    """The study's shared setting, read from one of its records (``shown``: the folder's name
    on the page)."""
    from semi3lib.engine.records import read_record

    records = sorted(Path(study_dir).glob("semi3net-seed*.json"))
    if not records:
        return f"{len(runs)} records in {study_dir}"
    config = read_record(records[0]).config
    data, model, train = config.get("data", {}), config.get("model", {}), config.get("train", {})
    smoothing = config.get("loss", {}).get("label_smoothing") or 0
    return (f"{data.get('dataset', '?')} query split, {model.get('backbone', '?')} at {data.get('image_size', '?')} px, "
            f"{train.get('epochs', '?')} epochs{f', label smoothing {smoothing}' if smoothing else ''}, "
            f"mAP@all over seeds, {len(runs)} records in `{shown}`")


def paper_vs_book(runs: pd.DataFrame | None, claims: list[dict[str, Any]],
                  plans: dict[str, pd.DataFrame | None] | None = None) -> pd.DataFrame:
    """One row per claim: the claim, the paper's evidence, this book's measurement, the verdict
    and why. ``runs`` are the study's records; ``plans`` the records of the other plans that
    claims name (:func:`records_of`). Without records a claim is untested."""
    runs_of = {**(plans or {}), STUDY: runs}
    stats_of = {name: study_statistics(r) for name, r in runs_of.items() if r is not None}
    rows = []
    for claim in claims:
        text = claim["claim"]
        if "reported" in claim:
            text = text.format(**PAPER_REPORTED[int(claim["reported"])])
        records = records_of(claim)
        claim_runs, stats = runs_of.get(records), stats_of.get(records)
        pairs = [tuple(p) for p in claim.get("compare") or []]
        missing = [r for p in pairs for r in p if stats is None or r not in stats.index]
        if claim.get("untested") or missing:
            where = "" if records == STUDY else f" in `{records_dir(records).as_posix()}`"
            why = claim.get("untested") or f"no records of {', '.join(dict.fromkeys(missing))}{where}"
            rows.append({"claim": text, "the paper's evidence": claim.get("paper", ""),
                         "this book's measurement": "not measured", "verdict": UNTESTED, "why": why})
            continue
        outcomes = [compare_rows(claim_runs, row, other) for row, other in pairs]
        shown = list(dict.fromkeys(r for p in pairs for r in p))
        verdict = _claim_verdict(outcomes)
        rows.append({"claim": text, "the paper's evidence": claim.get("paper", ""),
                     "this book's measurement": "; ".join(_value(stats, r, records) for r in shown),
                     "verdict": verdict, "why": "; ".join(_why(*p, o) for p, o in zip(pairs, outcomes))})
    return pd.DataFrame(rows)


def _claim_verdict(outcomes: list[Outcome]) -> str:
    """Supported when the rule decides every comparison for Semi3-Net; not supported when it
    decides one against (level or behind); undecided when it cannot decide one."""
    if any(o.decided and o.verdict != 1 for o in outcomes):
        return NOT_SUPPORTED
    return SUPPORTED if all(o.decided for o in outcomes) else UNDECIDED


def load_plans(root: str | Path, claims: list[dict[str, Any]]) -> dict[str, tuple[pd.DataFrame | None, str]]:
    """The records of each plan other than the study that a claim names, as :func:`load_study`
    returns them, by plan name."""
    names = dict.fromkeys(records_of(c) for c in claims if records_of(c) != STUDY)
    return {name: load_study(Path(root) / records_dir(name)) for name in names}


def page_markdown(root: str | Path = ".") -> str:
    """The generated part of the page: the setting and the table, as MyST Markdown."""
    root = Path(root)
    claims = load_claims(root / CLAIMS_FILE)
    runs, note = load_study(root / STUDY_DIR)
    measured_on = [f"Measured on: {setting(runs, root / STUDY_DIR) if runs is not None else note}."]
    plans = load_plans(root, claims)
    for name, (plan_runs, plan_note) in plans.items():
        folder = records_dir(name)
        measured = setting(plan_runs, root / folder, folder) if plan_runs is not None else plan_note
        measured_on.append(f"Measurements marked `{name}`: {measured}.")
    table = paper_vs_book(runs, claims, {name: plan_runs for name, (plan_runs, _) in plans.items()})
    shown = table.assign(verdict=[f"**{v}**" for v in table["verdict"]])
    lines = [" ".join(measured_on), "", markdown_table(shown, index=False)]
    counts = table["verdict"].value_counts()
    lines += ["", "In all: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS) + "."]
    return "\n".join(lines) + "\n"


def write_page(root: str | Path = ".") -> Path | None:
    """Write ``_build/generated/paper-vs-book.md`` under ``root``; None when the project has no
    claims file."""
    root = Path(root)
    if not (root / CLAIMS_FILE).is_file():
        return None
    out = root / GENERATED
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page_markdown(root))
    return out
