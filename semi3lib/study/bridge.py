"""Where should the edgemap bridge pay off? Semi3-Net against its two-branch twin and against
itself without the edgemap branch, setting by setting, judged by one rule written down before
the seeds ran (``configs/bridge-zeroshot.yaml``), the book's one comparison rule
(:mod:`semi3lib.study.rule`):

    a row *beats* another when its mean metric exceeds the other's by more than the larger of
    the two seed stds AND it is ahead with every seed (seed k against seed k); otherwise the
    two are *level*.

The edgemap branch *helps* in a setting when ``semi3net`` beats ``no-edgemap-branch`` (the same
network without the branch), *costs* when ``no-edgemap-branch`` beats ``semi3net``, and is
*level* otherwise. Each setting is a study folder and the names its three rows have there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from semi3lib.study.records import load_study, seed_hosts, seed_scores
from semi3lib.study.rule import BEATS, Outcome, compare, mean_std, score_text, so_far, statement, verdict_word
from semi3lib.study.tables import ReaderTable, reader_table

ROLES = ("semi3net", "two-branch-ce", "no-edgemap-branch")
BASELINE = "two-branch-ce"  # the best baseline of the main study: the figure's zero line
# This page's wording of the rule's verdict (by its sign): the edgemap branch's, in tables
# and in the short statement, then Semi3-Net's against the two-branch network (the rule's own words).
VERDICTS = {1: "helps", -1: "costs", 0: "level"}
AGAINST_BASELINE = BEATS
# the verdicts as the sentences of :func:`finding` say them
BRANCH_PHRASES = {1: "**helps**", -1: "**costs**", 0: "is **level**"}
BASELINE_PHRASES = {k: f"is **{word}**" for k, word in AGAINST_BASELINE.items()}
STANDING = {1: "ahead of", -1: "behind", 0: "level with"}  # a row's verdict against another, before its name
# Semi3-Net's two comparisons: (column of bridge_verdicts, the other role, its words, a title)
COMPARISONS = (("edgemap branch", "no-edgemap-branch", VERDICTS,
                "the edgemap branch: Semi3-Net against the network without it"),
               ("vs two-branch", "two-branch-ce", AGAINST_BASELINE, "Semi3-Net against the two-branch network"))


@dataclass(frozen=True)
class Setting:
    """One setting of the comparison: where its records are and what its rows are called."""

    name: str
    what: str
    study_dir: str
    plan: str  # the plan that makes the records
    rows: Mapping[str, str] = field(default_factory=lambda: {role: role for role in ROLES})


SETTINGS = (
    Setting("128 px, 7 epochs", "the main study's setting: seen categories, 1,250 queries, 3,125 photos",
            "results/sketchy-mini", "configs/study-sketchy-mini.yaml",
            {"semi3net": "semi3net-label-smoothing", "two-branch-ce": "two-branch-ce-label-smoothing",
             "no-edgemap-branch": "no-edgemap-branch-label-smoothing"}),
    Setting("unseen categories", "zero-shot: 21 categories unseen in training, as Yelamarthi et al.; 525 queries, their 525 photos",
            "results/bridge-zeroshot", "configs/bridge-zeroshot.yaml"),
    Setting("unseen, all photos", "the same models and queries against all 3,125 photos",
            "results/bridge-zeroshot", "configs/bridge-zeroshot.yaml",
            {role: f"{role}-all-photos" for role in ROLES}),
    Setting("160 px, 10 epochs", "the main study's categories with a larger image and a longer schedule",
            "results/bridge-160px", "configs/bridge-160px.yaml"),
)


def load_settings(settings: Sequence[Setting] = SETTINGS, root: str | Path = ".") -> pd.DataFrame:
    """Every run of the three rows of every setting: columns ``setting``, ``row`` (the role:
    semi3net, two-branch-ce, no-edgemap-branch), ``seed``, the metrics, ``wall_seconds`` and
    ``hardware``. Settings (or rows) without records are simply absent."""
    frames = []
    for setting in settings:
        runs, _ = load_study(Path(root) / setting.study_dir)
        if runs is None:
            continue
        role_of = {name: role for role, name in setting.rows.items()}
        runs = runs[runs["run"].isin(role_of)].copy()
        runs.insert(0, "row", runs.pop("run").map(role_of))
        runs.insert(0, "setting", setting.name)
        frames.append(runs)
    columns = ["setting", "row", "seed"]
    if not frames:
        return pd.DataFrame(columns=columns)
    order = {s.name: i for i, s in enumerate(settings)}
    runs = pd.concat(frames, ignore_index=True)
    runs = runs.assign(_s=runs["setting"].map(order), _r=runs["row"].map(ROLES.index))
    return runs.sort_values(["_s", "_r", "seed"]).drop(columns=["_s", "_r"]).reset_index(drop=True)


def _by_seed(runs: pd.DataFrame, setting: str, row: str, metric: str) -> dict[int, float]:
    """``{seed: metric}`` of one role in one setting."""
    return seed_scores(runs[runs["setting"] == setting], row, metric, column="row") if len(runs) else {}


def bridge_summary(runs: pd.DataFrame, metrics: Sequence[str] = ("mAP@all", "mAP@200", "P@200")) -> ReaderTable:
    """For a reader: one group per setting, one line per row (``"<row>, <setting>"``): seeds,
    and mean ± std of each metric; Semi3-Net of the first setting is the reference."""
    values, std, groups = [], [], []
    for setting, in_setting in runs.groupby("setting", sort=False):
        labels = []
        for row, group in in_setting.groupby("row", sort=False):
            label = f"{row}, {setting}"
            labels.append(label)
            values.append({"run": label, "seeds": len(group), **{m: group[m].astype(float).mean() for m in metrics}})
            std.append({"run": label, **{m: group[m].astype(float).std(ddof=1) for m in metrics}})
        groups.append((setting, labels))
    values_df = pd.DataFrame(values, columns=["run", "seeds", *metrics]).set_index("run")
    std_df = pd.DataFrame(std, columns=["run", *metrics]).set_index("run")
    return reader_table(values_df, std_df, groups=groups, integers=("seeds",))


def judge(runs: pd.DataFrame, setting: str, other: str, metric: str = "mAP@all",
          row: str = "semi3net") -> Outcome | None:
    """``row`` (a role, Semi3-Net unless named) against ``other`` in one setting by the book's
    rule (:func:`~semi3lib.study.rule.compare`), seed pairs run on one kind of host only; None
    when either row has no runs in that setting."""
    a, b = (_by_seed(runs, setting, name, metric) for name in (row, other))
    if not (a and b):
        return None
    here = runs[runs["setting"] == setting]
    return compare(a, b, metric, seed_hosts(here, row, column="row"), seed_hosts(here, other, column="row"))


def bridge_verdicts(runs: pd.DataFrame, settings: Sequence[Setting] = SETTINGS,
                    metric: str = "mAP@all") -> pd.DataFrame:
    """Per setting, the two comparisons by the rule: Semi3-Net against the network without the
    edgemap branch (the branch's verdict: helps / costs / level) and against the two-branch
    network (ahead / behind / level). Settings without all three rows say what is missing."""
    lines = []
    for setting in settings:
        line: dict[str, object] = {"setting": setting.name}
        for key, other, words, _ in COMPARISONS:
            outcome = judge(runs, setting.name, other, metric)
            if outcome is None:
                present = set(runs.loc[runs["setting"] == setting.name, "row"]) if len(runs) else set()
                missing = sorted({"semi3net", other} - present, key=ROLES.index)
                line[key] = f"not run ({', '.join(missing)})"
                line[f"gap to {other}"] = line[f"spread ({other})"] = np.nan
                continue
            line[key] = verdict_word(outcome, words)
            line[f"gap to {other}"] = round(outcome.gap, 4)
            line[f"spread ({other})"] = round(outcome.spread, 4)
        lines.append(line)
    return pd.DataFrame(lines).set_index("setting")


def verdicts_table(verdicts: pd.DataFrame, digits: int = 4) -> ReaderTable:
    """:func:`bridge_verdicts` for a reader, narrow enough for a page: one group per comparison,
    one line per setting (``"<setting>, <comparison>"``) with the verdict, the gap and the spread."""
    lines, groups = [], []
    for key, other, _, title in COMPARISONS:
        labels = [f"{setting}, {key}" for setting in verdicts.index]
        groups.append((title, labels))
        for label, (_, line) in zip(labels, verdicts.iterrows()):
            lines.append({"setting": label, "verdict": line[key], "gap": line[f"gap to {other}"],
                          "spread": line[f"spread ({other})"]})
    return reader_table(pd.DataFrame(lines).set_index("setting"), groups=groups, digits=digits)


def finding(runs: pd.DataFrame, setting: Setting, metric: str = "mAP@all") -> str:
    """One Markdown sentence for a setting: Semi3-Net's score, then whether the edgemap branch
    helps, costs or is level there (against the network without it) and where Semi3-Net stands
    against the two-branch network, each with the means ± stds, the gap, the seed spread and the
    seed count, and the hosts where the two rows ran on different kinds; or that the setting has
    not run yet."""
    head = f"**{setting.name}** ({setting.what})"
    semi3net = _by_seed(runs, setting.name, "semi3net", metric) if len(runs) else {}
    if not semi3net:
        return f"{head}: not run yet (`semi3 study --plan {setting.plan}`)"
    seeds = f"{len(semi3net)} seed{'s' * (len(semi3net) != 1)}"
    parts = [f"Semi3-Net {score_text(*mean_std(semi3net))} {metric} ({seeds})"]
    for other, label, subject, words in (
            ("no-edgemap-branch", "without the edgemap branch", "the edgemap branch", BRANCH_PHRASES),
            ("two-branch-ce", "the two-branch network", "Semi3-Net", BASELINE_PHRASES)):
        outcome = judge(runs, setting.name, other, metric)
        if outcome is None:
            parts.append(f"{label}: not run yet")
            continue
        # the means of every seed, as the table shows them; the verdict rests on same-host pairs only
        score = f"{label} {score_text(*mean_std(_by_seed(runs, setting.name, other, metric)))}"
        said = statement(outcome, words)
        parts.append(f"{score}, so {subject} {said}" if outcome.decided else f"{score}: {said}")
    return f"{head}: " + "; ".join(parts)


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def in_short(runs: pd.DataFrame, settings: Sequence[Setting] = SETTINGS, metric: str = "mAP@all") -> str:
    """The comparison in two sentences: the settings where the edgemap branch helps, is level
    or costs, and where Semi3-Net is ahead of, level with or behind the two-branch network, by
    the rule; a setting judged on fewer than three seeds says so, one with fewer than two
    (no spread) is "not judged yet"."""
    sentences = []
    for other, opening, words in (
            ("no-edgemap-branch", "The edgemap branch", {1: "helps", 0: "is level", -1: "costs"}),
            ("two-branch-ce", "Against the two-branch network, Semi3-Net is",
             {1: "ahead", 0: "level", -1: "behind"})):
        groups: dict[str, list[str]] = {word: [] for word in words.values()}
        waiting, mixed = [], []  # not judged: too few seeds; no seed pair on one kind of host
        for setting in settings:
            outcome = judge(runs, setting.name, other, metric)
            if outcome is not None and not outcome.decided and outcome.cross_host:
                mixed.append(f"*{setting.name}*")
            elif outcome is None or not outcome.decided:
                waiting.append(f"*{setting.name}*")
            else:
                groups[words[outcome.verdict]].append(f"*{setting.name}*{so_far(outcome)}")
        judged = [f"{word} in {_listed(names)}" for word, names in groups.items() if names]
        notes = ([f"{_listed(waiting)}: not judged yet"] if waiting else []) + (
            [f"{_listed(mixed)}: no verdict, the two rows ran on different kinds of host"] if mixed else [])
        sentences.append(f"{opening} " + "; ".join(judged) + (f" ({'; '.join(notes)})" if notes else "") + ".")
    return " ".join(sentences)


def findings(runs: pd.DataFrame, settings: Sequence[Setting] = SETTINGS, metric: str = "mAP@all") -> str:
    """The results page's and the README's statement of the comparison (``python -m
    semi3lib.study.bridge``): :func:`in_short`, then :func:`finding` for every setting as a Markdown list."""
    lines = "\n".join(f"- {finding(runs, setting, metric)}." for setting in settings)
    return f"**In short:** {in_short(runs, settings, metric)}\n\n{lines}"


def summary_points(runs: pd.DataFrame, metric: str = "mAP@all") -> list[str]:
    """Chapter 9's summary from the records, one Markdown point per question that has its
    verdicts: on unseen categories, is Semi3-Net's lead over the two-branch network the bridge's
    (or is the network without the branch ahead too)? What do the seen categories' photos as
    distractors change? What do more resolution and training change at 160 px / 10 epochs?"""
    points = []
    main, unseen, distractors, larger = (setting.name for setting in SETTINGS)
    lead, without, branch = (judge(runs, unseen, other, metric, row) for row, other in (
        ("semi3net", BASELINE), ("no-edgemap-branch", BASELINE), ("semi3net", "no-edgemap-branch")))
    if all(o is not None and o.decided for o in (lead, without, branch)):
        text = (f"**On unseen categories**, against their own photos, Semi3-Net is {STANDING[lead.verdict]} "
                f"the two-branch network ({_gap(lead)}) and the same network without the "
                f"edgemap branch is {STANDING[without.verdict]} it{' too' * (without.verdict == lead.verdict)} "
                f"({_gap(without)})")
        if lead.verdict == without.verdict == 1:
            text += ": that lead is what the two share, not the bridge's"
        text += f"; the edgemap branch itself {BRANCH_PHRASES[branch.verdict]} there ({_gap(branch)})"
        points.append(text + ".")
    # each role's mean in each setting, over the seeds it ran
    means = {setting.name: {row: mean_std(scores)[0] for row in ROLES if (scores := _by_seed(runs, setting.name, row, metric))}
             for setting in SETTINGS}
    among = judge(runs, distractors, "no-edgemap-branch", metric)
    if among is not None and among.decided:
        lower = all(means[distractors][row] < means[unseen][row] for row in means[distractors] if row in means[unseen])
        points.append(f"**With the seen categories' photos as distractors** (the same models and queries against "
                      f"all photos) {'every network scores lower' if lower else 'the scores move'} (Semi3-Net "
                      f"{means[unseen]['semi3net']:.3f} to {means[distractors]['semi3net']:.3f} {metric}), and the "
                      f"edgemap branch {BRANCH_PHRASES[among.verdict]} ({_gap(among)}).")
    big_branch, big_lead, main_lead = (judge(runs, name, other, metric) for name, other in (
        (larger, "no-edgemap-branch"), (larger, BASELINE), (main, BASELINE)))
    if all(o is not None and o.decided for o in (big_branch, big_lead, main_lead)):
        higher = all(means[larger][row] > means[main][row] for row in means[larger] if row in means[main])
        narrower = abs(big_lead.gap) < abs(main_lead.gap)
        points.append(f"**At {larger}** {'every network scores higher' if higher else 'not every network scores higher'} "
                      f"than at {main} (Semi3-Net {means[main]['semi3net']:.3f} to {means[larger]['semi3net']:.3f}), "
                      f"and Semi3-Net's gap to the two-branch network is {'narrower' if narrower else 'not narrower'}, "
                      f"{big_lead.gap:+.3f} against {main_lead.gap:+.3f}; against the same network without it the "
                      f"edgemap branch {BRANCH_PHRASES[big_branch.verdict]} there ({_gap(big_branch)}).")
    return points


def _gap(outcome: Outcome) -> str:
    """``gap +0.010``, or ``gap -0.040, 2 seeds so far`` for a provisional verdict."""
    return f"gap {outcome.gap:+.3f}" + (f", {outcome.seeds} seeds so far" if outcome.provisional else "")


def gaps_to_baseline(runs: pd.DataFrame, metric: str = "mAP@all") -> pd.DataFrame:
    """Seed by seed, each row's ``metric`` minus the two-branch network's of the same setting
    and seed: columns ``setting``, ``row``, ``seed``, ``gap`` (the baseline's own rows left out)."""
    lines = []
    for setting in runs["setting"].unique() if len(runs) else []:
        base = _by_seed(runs, setting, BASELINE, metric)
        for row in ROLES:
            if row == BASELINE:
                continue
            for seed, value in _by_seed(runs, setting, row, metric).items():
                if seed in base:
                    lines.append({"setting": setting, "row": row, "seed": seed, "gap": value - base[seed]})
    return pd.DataFrame(lines, columns=["setting", "row", "seed", "gap"])


def seeds_each(runs: pd.DataFrame) -> str:
    """How many seeds each of the three networks has in every setting of :func:`load_settings`'s
    ``runs``, as a phrase: ``"3 seeds"`` or ``"3 to 7 seeds"`` (fewest to most)."""
    counts = runs.groupby(["setting", "row"])["seed"].nunique() if len(runs) else pd.Series(dtype=int)
    if counts.empty:
        return "no seeds"
    low, high = int(counts.min()), int(counts.max())
    return f"{low} seed{'s' * (high != 1)}" if low == high else f"{low} to {high} seeds"


__all__ = ["ROLES", "SETTINGS", "Setting", "bridge_summary", "bridge_verdicts", "finding", "findings",
           "gaps_to_baseline", "in_short", "judge", "load_settings", "seeds_each", "summary_points",
           "verdicts_table"]
