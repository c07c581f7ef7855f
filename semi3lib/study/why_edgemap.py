"""Why does the edgemap branch cost? The decomposition plan's records, summed up
(``results/why-edgemap/``, written by ``semi3 study --plan configs/why-edgemap.yaml``).

On seen categories Semi3-Net without its edgemap branch (``no-edgemap-branch``) scores above
Semi3-Net, but taking the branch away removes several mechanisms at once. Each other row of the
plan takes out (or changes) one of them, with everything else as in ``semi3net``, 5 paired
seeds a row. The book's one rule (:mod:`semi3lib.study.rule`, seed pairs on one kind of host)
asks two questions of each such row: is it **ahead of Semi3-Net** (then the mechanism it removes
costs), and is it **level with the network without the branch** (then that mechanism carries
the whole cost, not a part of it). :func:`why_findings` states the answer for chapter 11 and
the README; :func:`seed_gaps` gives the chapter's figure its points, each seed's gap to
Semi3-Net's same seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from semi3lib.study.bridge import SETTINGS as BRIDGE_SETTINGS
from semi3lib.study.records import compare_rows, load_study, ordered_runs, seed_hosts, seed_scores
from semi3lib.study.rule import BEATS, Outcome, mean_std, score_text, statement, verdict_word
from semi3lib.study.runner import load_plan
from semi3lib.study.runner import missing_runs as plan_missing_runs
from semi3lib.study.tables import ReaderTable, reader_table

WHY_DIR = Path("results") / "why-edgemap"
PLAN = Path("configs") / "why-edgemap.yaml"
METRIC = "mAP@all"
PLAN_SEEDS = 5  # the plan's seeds a row (0-4); a conclusion on fewer says "so far"
REFERENCE = "semi3net"  # every mechanism in
WHOLE = "no-edgemap-branch"  # every mechanism out: the cost to be explained
SWITCHES = ("no-edge-ce", "domain-bn", "no-coattention")  # trained, one mechanism out or changed each
RESCORED = {"semi3net-photo+edge": "semi3net", "domain-bn-photo+edge": "domain-bn"}  # re-score -> its trained row
PARTS = (*SWITCHES, *RESCORED)
LABELS = {
    "semi3net": "Semi3-Net",
    "no-edgemap-branch": "without the edgemap branch (all out)",
    "no-edge-ce": "no cross-entropy on the edgemap branch",
    "domain-bn": "one BatchNorm per domain in the shared bottom",
    "no-coattention": "no co-attention (edgemaps in training only)",
    "semi3net-photo+edge": "Semi3-Net, gallery from photo + edgemap",
    "domain-bn-photo+edge": "one BatchNorm per domain, gallery from photo + edgemap",
}
GROUPS = {"Trained": (REFERENCE, WHOLE, *SWITCHES),
          "Re-scored: the gallery embedded from photo and edgemap (no training)": tuple(RESCORED)}
# A part's verdicts in words: against Semi3-Net (does taking it out pay?) and against the
# network without the branch (does taking it out pay as much as taking the whole branch out?)
AGAINST_SEMI3NET = {1: "pays", -1: "costs", 0: "level"}
AGAINST_WHOLE = BEATS


@dataclass(frozen=True)
class PartVerdict:
    """One row of the plan by the rule: against Semi3-Net and against the network without the branch."""

    row: str
    vs_semi3net: Outcome | None
    vs_whole: Outcome | None

    @property
    def carries(self) -> str:
        """``"all"`` when taking the part out pays against Semi3-Net and is level with the
        network without the branch (or not yet compared with it), ``"more"`` when it pays and is
        even ahead of that network (the branch's other mechanisms pay once this one is out),
        ``"part"`` when it pays but stays behind that network, ``"none"`` when it does not pay
        (level or behind), ``"undecided"`` when the rule cannot yet say whether it pays."""
        if self.vs_semi3net is None or not self.vs_semi3net.decided:
            return "undecided"
        if self.vs_semi3net.verdict != 1:
            return "none"
        if self.vs_whole is not None and self.vs_whole.decided and self.vs_whole.verdict != 0:
            return "part" if self.vs_whole.verdict == -1 else "more"
        return "all"


def load_why(folder: str | Path = WHY_DIR) -> pd.DataFrame | None:
    """The plan's runs (:func:`~semi3lib.study.records.load_study`), its rows in plan order;
    None when there are none."""
    runs, _ = load_study(folder)
    return None if runs is None else ordered_runs(runs, [REFERENCE, WHOLE, *PARTS])


def part_verdicts(runs: pd.DataFrame, metric: str = METRIC) -> dict[str, PartVerdict]:
    """Every row but Semi3-Net that has runs, by the rule on ``metric``: ``{row: PartVerdict}``
    (the network without the branch is compared with Semi3-Net only)."""
    present = set(runs["run"])
    verdicts = {}
    for row in (r for r in (WHOLE, *PARTS) if r in present):
        vs_semi3net = compare_rows(runs, row, REFERENCE, metric) if REFERENCE in present else None
        vs_whole = compare_rows(runs, row, WHOLE, metric) if row != WHOLE and WHOLE in present else None
        verdicts[row] = PartVerdict(row, vs_semi3net, vs_whole)
    return verdicts


def verdicts_table(runs: pd.DataFrame, metric: str = METRIC) -> ReaderTable:
    """For a reader, narrow enough for a phone: one group per question (against Semi3-Net;
    against the network without the branch), one line per row (``"<label>, against <other>"``)
    with the seed pairs compared, the rule's verdict, the gap of the means and the seed spread."""
    found = part_verdicts(runs, metric)
    lines, groups = [], []
    for attribute, other, words in (("vs_semi3net", "Semi3-Net", AGAINST_SEMI3NET),
                                    ("vs_whole", "the network without the branch", AGAINST_WHOLE)):
        labels = []
        for row, verdicts in found.items():
            outcome = getattr(verdicts, attribute)
            if outcome is None:
                continue
            label = f"{LABELS.get(row, row)}, against {other}"
            labels.append(label)
            usable = bool(outcome.a)
            lines.append({"row": label, "seed pairs": len(outcome.paired), "verdict": verdict_word(outcome, words),
                          "gap": outcome.gap if usable else math.nan, "spread": outcome.spread if usable else math.nan})
        groups.append((f"Against {other}", labels))
    values = pd.DataFrame(lines, columns=["row", "seed pairs", "verdict", "gap", "spread"]).set_index("row")
    return reader_table(values, groups=[g for g in groups if g[1]], integers=("seed pairs",))


def seed_gaps(runs: pd.DataFrame, metric: str = METRIC) -> pd.DataFrame:
    """Seed by seed, each row's ``metric`` minus Semi3-Net's of the same seed, for the seeds
    both ran on one kind of host (what the rule pairs): columns ``run``, ``seed``, ``gap``, ``host``."""
    reference, reference_hosts = seed_scores(runs, REFERENCE, metric), seed_hosts(runs, REFERENCE) or {}
    lines = []
    for row in (r for r in (WHOLE, *PARTS) if r in set(runs["run"])):
        hosts = seed_hosts(runs, row) or {}
        for seed, value in seed_scores(runs, row, metric).items():
            if seed in reference and hosts.get(seed) == reference_hosts.get(seed):
                lines.append({"run": row, "seed": seed, "gap": value - reference[seed], "host": hosts.get(seed)})
    return pd.DataFrame(lines, columns=["run", "seed", "gap", "host"])


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def why_findings(runs: pd.DataFrame | None, missing: list[str] | None = None, metric: str = METRIC) -> str:
    """The decomposition in a few Markdown sentences (chapter 11 and the README): the cost to
    explain (the network without the branch against Semi3-Net), each part against Semi3-Net,
    then which part carries the cost by the rule, which carries a part of it, or that none alone
    does; a verdict on fewer than the plan's seeds says so, and ``missing`` (the plan's runs
    without a record) is counted."""
    if runs is None or REFERENCE not in set(runs["run"]):
        return (f"No Semi3-Net run of the decomposition yet: `semi3 study --plan {PLAN}` trains it "
                "(about 20-25 minutes a row and seed on 2 CPU cores).")
    verdicts = part_verdicts(runs, metric)
    reference = seed_scores(runs, REFERENCE, metric)
    parts = [f"Semi3-Net scores {metric} {score_text(*mean_std(reference))} "
             f"({len(reference)} seed{'s' * (len(reference) != 1)})."]
    if WHOLE in verdicts and verdicts[WHOLE].vs_semi3net is not None:
        parts.append(f"The cost to explain, the network without the edgemap branch against Semi3-Net: "
                     f"{statement(verdicts[WHOLE].vs_semi3net, BEATS, mark='**')}.")
    said = [f"{LABELS[row]}: {statement(verdicts[row].vs_semi3net, AGAINST_SEMI3NET, mark='**')}"
            for row in SWITCHES if row in verdicts and verdicts[row].vs_semi3net is not None]
    if said:
        parts.append("One mechanism out (or changed), against Semi3-Net: " + "; ".join(said) + ".")
    parts.append(_which_part(verdicts))
    rescored = [f"{LABELS[trained]}: {statement(compare_rows(runs, row, trained, metric), AGAINST_SEMI3NET, mark='**')}"
                for row, trained in RESCORED.items() if {row, trained} <= set(runs["run"])]
    if rescored:
        parts.append("The gallery embedded from photo and edgemap (a re-score, no training), against the same "
                     "models' usual gallery: " + "; ".join(rescored) + ".")
    if missing:
        parts.append(f"{len(missing)} run{'s' * (len(missing) != 1)} of the plan {'have' if len(missing) != 1 else 'has'} "
                     f"no record yet (`semi3 study --plan {PLAN}` resumes).")
    return " ".join(parts)


def _which_part(verdicts: dict[str, PartVerdict]) -> str:
    """The conclusion: which mechanism (a trained switch) carries the cost, by the rule. It opens
    with "So far" while any row it rests on has fewer seed pairs than the plan, and each mechanism
    it names says its own count then."""
    parts = {row: verdicts[row] for row in SWITCHES if row in verdicts}
    whole = verdicts.get(WHOLE)
    if whole is None or whole.vs_semi3net is None or not whole.vs_semi3net.decided:
        return "No verdict on the cost yet: the rule needs two paired seeds of both rows."
    counted = [found.vs_semi3net for found in (whole, *parts.values()) if found.vs_semi3net is not None]
    so_far = "So far," if any(len(outcome.paired) < PLAN_SEEDS for outcome in counted) else "So,"
    if whole.vs_semi3net.verdict != 1:
        return f"{so_far} the whole branch does not cost here{_pairs(whole)}, so there is no cost to take apart."
    if not parts:
        return f"{so_far} no single mechanism has been taken out yet."
    by_kind: dict[str, list[str]] = {}
    for row, found in parts.items():
        by_kind.setdefault(found.carries, []).append(LABELS[row] + _pairs(found))
    sentences = []
    if by_kind.get("all"):
        sentences.append(f"{_listed(by_kind['all'])} carr{'ies' if len(by_kind['all']) == 1 else 'y'} the cost: "
                         "its row is ahead of Semi3-Net and level with the network without the branch")
    if by_kind.get("more"):
        sentences.append(f"{_listed(by_kind['more'])} carr{'ies' if len(by_kind['more']) == 1 else 'y'} the cost and "
                         "more: its row is ahead of Semi3-Net and also ahead of the network without the branch, so "
                         "with it out the rest of the edgemap branch pays")
    if by_kind.get("part"):
        sentences.append(f"{_listed(by_kind['part'])} carr{'ies' if len(by_kind['part']) == 1 else 'y'} part of it: "
                         "its row is ahead of Semi3-Net but behind the network without the branch")
    if not sentences and by_kind.get("none") and not by_kind.get("undecided"):
        sentences.append("no single mechanism carries the cost: taking any one out is level with or behind "
                         "Semi3-Net, so the cost lies in their combination")
    if by_kind.get("undecided"):
        sentences.append(f"no verdict yet for {_listed(by_kind['undecided'])}")
    return f"{so_far} " + "; ".join(sentences) + "."


def _pairs(found: PartVerdict) -> str:
    """``" (k of 5 seed pairs)"`` for a row compared on fewer seed pairs than the plan's, else nothing."""
    paired = len(found.vs_semi3net.paired) if found.vs_semi3net is not None else 0
    return f" ({paired} of {PLAN_SEEDS} seed pairs)" if paired < PLAN_SEEDS else ""


# Issue 33, item 5: the switch that carries the cost, carried as a named variant to the other
# settings of chapter 9 (rows added to configs/bridge-zeroshot.yaml and configs/bridge-160px.yaml
# before their first seed ran). It was chosen on its first 2 seed pairs here; whether this
# plan's records still say it carries the cost is stated beside its verdicts (:func:`carried_findings`).
CARRIED = "no-edge-ce"


@dataclass(frozen=True)
class CarriedSetting:
    """One setting the variant is carried to: where its records are and its rows' names (the
    two-branch network's None where the setting's plan has no such row)."""

    name: str
    study_dir: str
    plan: str
    semi3net: str = REFERENCE
    whole: str = WHOLE
    variant: str = CARRIED
    two_branch: str | None = None


CARRIED_SETTINGS = (
    CarriedSetting("seen categories, 128 px", str(WHY_DIR), str(PLAN)),
    *(CarriedSetting(setting.name, setting.study_dir, setting.plan, setting.rows["semi3net"],
                     setting.rows["no-edgemap-branch"], CARRIED + setting.rows["semi3net"][len("semi3net"):],
                     setting.rows["two-branch-ce"])
      for setting in BRIDGE_SETTINGS[1:]),  # unseen categories (two galleries) and 160 px; not the main study's
)


@dataclass(frozen=True)
class Carried:
    """The variant in one setting by the rule: against the network without the branch, Semi3-Net
    against that network (where the variant has to do better), the variant against Semi3-Net,
    then the variant and Semi3-Net against the two-branch network (issue 33's question: does the
    variant beat it anywhere Semi3-Net does not?); None where a row has no records there."""

    setting: CarriedSetting
    variant_vs_whole: Outcome | None
    semi3net_vs_whole: Outcome | None
    variant_vs_semi3net: Outcome | None
    variant_vs_two_branch: Outcome | None = None
    semi3net_vs_two_branch: Outcome | None = None

    @property
    def beats_where_semi3net_does_not(self) -> bool | None:
        """True when the variant beats the network without the branch and Semi3-Net does not
        (level or behind), False when that is decided otherwise, None while either is undecided."""
        return _beats_where_semi3net_does_not(self.variant_vs_whole, self.semi3net_vs_whole)

    @property
    def beats_two_branch_where_semi3net_does_not(self) -> bool | None:
        """The same question against the two-branch network (None also where the setting has none)."""
        return _beats_where_semi3net_does_not(self.variant_vs_two_branch, self.semi3net_vs_two_branch)


def _beats_where_semi3net_does_not(variant: Outcome | None, semi3net: Outcome | None) -> bool | None:
    """True when the variant beats a row and Semi3-Net does not (level or behind); False when
    Semi3-Net beats it already or the variant does not; None while that is not decided."""
    if semi3net is not None and semi3net.decided and semi3net.verdict == 1:
        return False
    if any(o is None or not o.decided for o in (variant, semi3net)):
        return None
    return variant.verdict == 1


def carried_verdicts(root: str | Path = ".", settings: tuple[CarriedSetting, ...] = CARRIED_SETTINGS,
                     metric: str = METRIC) -> list[Carried]:
    """The variant setting by setting (:class:`Carried`), seed pairs on one kind of host only."""
    found = []
    for setting in settings:
        runs, _ = load_study(Path(root) / setting.study_dir)
        present = set(runs["run"]) if runs is not None else set()

        def rule(a: str, b: str | None) -> Outcome | None:
            return compare_rows(runs, a, b, metric) if b is not None and {a, b} <= present else None

        found.append(Carried(setting, rule(setting.variant, setting.whole), rule(setting.semi3net, setting.whole),
                             rule(setting.variant, setting.semi3net), rule(setting.variant, setting.two_branch),
                             rule(setting.semi3net, setting.two_branch)))
    return found


# the table's lines per setting ("the variant": Semi3-Net with the carried switch): the Carried
# outcome, its title, and the CarriedSetting row it is against (None there: not in that plan)
CARRIED_COMPARISONS = (("variant_vs_whole", "the variant vs. without the branch", "whole"),
                       ("semi3net_vs_whole", "Semi3-Net vs. without the branch", "whole"),
                       ("variant_vs_semi3net", "the variant vs. Semi3-Net", "semi3net"),
                       ("variant_vs_two_branch", "the variant vs. the two-branch network", "two_branch"),
                       ("semi3net_vs_two_branch", "Semi3-Net vs. the two-branch network", "two_branch"))


def carried_table(found: list[Carried]) -> ReaderTable:
    """For a reader: one group per setting, one line per comparison, with the seed pairs, the
    rule's verdict, the gap of the means and the seed spread ("not run" where a row has no records,
    "no such row" where the setting's plan has no two-branch network)."""
    lines, groups = [], []
    for carried in found:
        labels = []
        for attribute, title, against in CARRIED_COMPARISONS:
            outcome = getattr(carried, attribute)
            label = f"{title}, {carried.setting.name}"
            labels.append(label)
            usable = outcome is not None and bool(outcome.a)
            missing = "not run" if getattr(carried.setting, against) is not None else "no such row"
            lines.append({"comparison": label, "seed pairs": len(outcome.paired) if outcome is not None else 0,
                          "verdict": verdict_word(outcome) if outcome is not None else missing,
                          "gap": outcome.gap if usable else math.nan, "spread": outcome.spread if usable else math.nan})
        groups.append((carried.setting.name, labels))
    values = pd.DataFrame(lines, columns=["comparison", "seed pairs", "verdict", "gap", "spread"]).set_index("comparison")
    return reader_table(values, groups=groups, integers=("seed pairs",))


# the networks the variant has to beat where Semi3-Net does not: the CarriedSetting row of each
# (None there: not in that plan) and the Carried property that answers the question
CARRIED_QUESTIONS = (("the network without the branch", "whole", "beats_where_semi3net_does_not"),
                     ("the two-branch network", "two_branch", "beats_two_branch_where_semi3net_does_not"))


def _where(found: list[Carried], row: str, attribute: str) -> tuple[list[str], list[str]]:
    """The settings (``*name*``) where a :data:`CARRIED_QUESTIONS` answer is yes, and where it is
    not decided yet; a setting whose plan has no such row is not asked."""
    asked = [c for c in found if getattr(c.setting, row) is not None]
    return ([f"*{c.setting.name}*" for c in asked if getattr(c, attribute)],
            [f"*{c.setting.name}*" for c in asked if getattr(c, attribute) is None])


def carried_findings(found: list[Carried], runs: pd.DataFrame | None = None) -> str:
    """The variant carried to the other settings, in Markdown: whether this chapter's records
    still say it carries the cost (``runs``: the decomposition's), then per setting the variant
    and Semi3-Net against the network without the branch and against the two-branch network by
    the rule, then where the variant beats each of those networks and Semi3-Net does not."""
    label = LABELS[CARRIED]
    parts = []
    if runs is not None and CARRIED in set(runs["run"]):
        carries = part_verdicts(runs).get(CARRIED)
        said = {"all": "carries the cost", "more": "carries the cost and more", "part": "carries part of it",
                "none": "does not carry it", "undecided": "has no verdict yet"}[carries.carries]
        parts.append(f"The variant carried: {label} (`loss.edge_ce=false`). In this chapter's records it {said}"
                     f"{_pairs(carries)}.")
    lines = []
    for carried in found:
        name = carried.setting.name
        if carried.variant_vs_whole is None:
            lines.append(f"- *{name}*: not run yet (`semi3 study --plan {carried.setting.plan} --only "
                         f"{carried.setting.variant}`)")
            continue
        line = f"- *{name}*: " + _against("the network without the branch", carried.variant_vs_whole,
                                          carried.semi3net_vs_whole)
        line += "; " + (_against("the two-branch network", carried.variant_vs_two_branch,
                                 carried.semi3net_vs_two_branch) if carried.setting.two_branch is not None
                        else "no two-branch network in this setting's plan")
        lines.append(line)
    parts.append("Setting by setting:\n\n" + "\n".join(lines))
    for other, row, attribute in CARRIED_QUESTIONS:
        where, open_ = _where(found, row, attribute)
        parts.append((f"It beats {other} where Semi3-Net does not in: {_listed(where)}." if where
                      else f"It does not yet beat {other} anywhere Semi3-Net does not.")
                     + (f" Not decided yet: {_listed(open_)}." if open_ else ""))
    return "\n\n".join(parts)


def _against(other: str, variant: Outcome | None, semi3net: Outcome | None) -> str:
    """"against <other> the variant <statement>, Semi3-Net <statement>" ("not run" for a missing row)."""
    def said(outcome: Outcome | None) -> str:
        return statement(outcome, BEATS, mark="**") if outcome is not None else "not run"
    return f"against {other} the variant {said(variant)}, Semi3-Net {said(semi3net)}"


def _planned(root: str | Path, setting: CarriedSetting) -> int:
    """How many seeds the variant's row has in its setting's plan."""
    plan = load_plan(Path(root) / setting.plan)
    return len(plan.seeds_of(plan.row(setting.variant)))


def carried_in_short(root: str | Path = ".") -> str:
    """One sentence for the README and Paper vs. this book: where the carried variant beats the
    network without the branch, and the two-branch network, where Semi3-Net does not, by the
    rule, and what is not decided yet."""
    found = carried_verdicts(root)
    said, waiting = [], set()
    for other, row, attribute in CARRIED_QUESTIONS:
        where, open_ = _where(found, row, attribute)
        said.append(f"{other} where Semi3-Net does not in {_listed(where)}" if where
                    else f"{other} nowhere Semi3-Net does not")
        waiting.update(open_)
    waiting_listed = [f"*{c.setting.name}*" for c in found if f"*{c.setting.name}*" in waiting]
    provisional = any(c.variant_vs_whole is not None and len(c.variant_vs_whole.paired) < _planned(root, c.setting)
                      for c in found)
    return (f"Semi3-Net with {LABELS[CARRIED]}, carried to chapter 9's settings as a variant, beats "
            f"{', and '.join(said)}{' (on fewer seeds than planned so far)' if provisional else ''}"
            f"{'; not decided yet in ' + _listed(waiting_listed) if waiting_listed else ''}.")


def missing_runs(folder: str | Path = WHY_DIR, plan: str | Path = PLAN) -> list[str]:
    """The plan's runs without a record in ``folder`` (:func:`semi3lib.study.runner.missing_runs`)."""
    return plan_missing_runs(plan, folder)


__all__ = ["AGAINST_SEMI3NET", "AGAINST_WHOLE", "CARRIED", "CARRIED_QUESTIONS", "CARRIED_SETTINGS", "GROUPS", "LABELS",
           "METRIC", "PARTS", "PLAN", "PLAN_SEEDS", "PartVerdict", "REFERENCE", "RESCORED", "SWITCHES", "WHOLE", "WHY_DIR",
           "Carried", "CarriedSetting", "carried_findings", "carried_in_short", "carried_table", "carried_verdicts", "load_why",
           "missing_runs", "part_verdicts", "seed_gaps", "verdicts_table", "why_findings"]
