"""Chapter 11's reading of the decomposition records (semi3lib.study.why_edgemap): which
mechanism of the edgemap branch carries its cost, by the book's one rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib
import pytest

from semi3lib.book.figures.why_edgemap import plot_seed_gaps
from semi3lib.study import why_edgemap as why
from semi3lib.study.runner import load_plan

matplotlib.use("Agg")
REPO = Path(__file__).resolve().parents[1]
AVX2 = {"cpu": "AMD EPYC", "cpu_capability": "AVX2"}
XEON = {"cpu": "Intel Xeon", "cpu_capability": "AVX512"}
SEMI3NET = [0.630, 0.625, 0.635, 0.628, 0.632]  # std 0.0038


def _write(folder: Path, row: str, scores: list[float], machine: dict = AVX2, seeds: list[int] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, score in zip(seeds or range(len(scores)), scores):
        (folder / f"{row}-seed{seed}.json").write_text(json.dumps({
            "run": row, "seed": seed, "metrics": {"query": {"mAP@all": score}},
            "config": {"train": {"seed": seed}}, "machine": machine}))


def _plan(folder: Path, **rows: list[float]):
    _write(folder, "semi3net", SEMI3NET)
    for row, scores in rows.items():
        _write(folder, row.replace("_", "-"), scores)
    return why.load_why(folder)


def test_a_mechanism_that_pays_as_much_as_the_whole_branch_carries_the_cost(tmp_path):
    runs = _plan(tmp_path, no_edgemap_branch=[s + 0.028 for s in SEMI3NET], domain_bn=[s + 0.027 for s in SEMI3NET],
                 no_edge_ce=[s + 0.001 * (-1) ** i for i, s in enumerate(SEMI3NET)])
    assert list(runs["run"].unique()) == ["semi3net", "no-edgemap-branch", "no-edge-ce", "domain-bn"]  # plan order
    verdicts = why.part_verdicts(runs)
    assert verdicts["domain-bn"].carries == "all" and verdicts["no-edge-ce"].carries == "none"
    assert verdicts["no-edgemap-branch"].vs_whole is None
    text = why.why_findings(runs)
    assert "the network without the edgemap branch against Semi3-Net: **ahead** (gap +0.028, past the seed spread" in text
    assert "So, one BatchNorm per domain in the shared bottom carries the cost" in text
    assert "So far" not in text and "on AMD EPYC (AVX2)" in text
    table = why.verdicts_table(runs)
    against = f"{why.LABELS['domain-bn']}, against"
    assert table.values.loc[f"{against} Semi3-Net", "verdict"] == "pays"
    assert table.values.loc[f"{against} the network without the branch", "verdict"] == "level"
    assert table.values.loc[f"{against} Semi3-Net", "gap"] == pytest.approx(0.027)
    assert [title for title, _ in table.groups] == ["Against Semi3-Net", "Against the network without the branch"]


def test_re_scored_rows_are_set_against_their_own_models_not_in_the_conclusion(tmp_path):
    runs = _plan(tmp_path, no_edgemap_branch=[s + 0.028 for s in SEMI3NET],
                 **{"semi3net-photo+edge": [s + 0.030 for s in SEMI3NET]})
    text = why.why_findings(runs)
    assert "So, no single mechanism has been taken out yet." in text
    assert text.endswith("against the same models' usual gallery: Semi3-Net: **pays** (gap +0.030, past the seed "
                         "spread 0.004, ahead with every seed; on AMD EPYC (AVX2)).")


def test_a_mechanism_that_pays_more_than_the_whole_branch_carries_the_cost_and_more(tmp_path):
    runs = _plan(tmp_path, no_edgemap_branch=[s + 0.028 for s in SEMI3NET], no_edge_ce=[s + 0.045 for s in SEMI3NET])
    found = why.part_verdicts(runs)["no-edge-ce"]
    assert found.carries == "more" and found.vs_whole.verdict == 1
    text = why.why_findings(runs)
    assert ("So, no cross-entropy on the edgemap branch carries the cost and more: its row is ahead of Semi3-Net and "
            "also ahead of the network without the branch, so with it out the rest of the edgemap branch pays.") in text
    assert "level with the network without the branch" not in text


def test_a_mechanism_that_pays_less_than_the_whole_branch_carries_a_part(tmp_path):
    runs = _plan(tmp_path, no_edgemap_branch=[s + 0.040 for s in SEMI3NET], no_coattention=[s + 0.015 for s in SEMI3NET])
    assert why.part_verdicts(runs)["no-coattention"].carries == "part"
    assert "no co-attention (edgemaps in training only) carries part of it" in why.why_findings(runs)


def test_the_conclusion_counts_each_mechanisms_own_seed_pairs(tmp_path):
    _write(tmp_path, "semi3net", SEMI3NET)
    _write(tmp_path, "no-edgemap-branch", [s + 0.040 for s in SEMI3NET])
    _write(tmp_path, "no-edge-ce", [s + 0.040 for s in SEMI3NET[:2]])
    _write(tmp_path, "domain-bn", SEMI3NET[:1])
    text = why.why_findings(why.load_why(tmp_path))
    assert ("So far, no cross-entropy on the edgemap branch (2 of 5 seed pairs) carries the cost: its row is ahead "
            "of Semi3-Net and level with the network without the branch; no verdict yet for one BatchNorm per "
            "domain in the shared bottom (1 of 5 seed pairs).") in text


def test_when_no_single_mechanism_pays_the_findings_say_the_cost_is_their_combination(tmp_path):
    wobble = [0.002, -0.002, 0.001, -0.001, 0.0]
    runs = _plan(tmp_path, no_edgemap_branch=[s + 0.028 for s in SEMI3NET],
                 **{row: [s + w for s, w in zip(SEMI3NET, wobble)] for row in ("no_edge_ce", "domain_bn", "no_coattention")})
    assert "no single mechanism carries the cost" in why.why_findings(runs)


def test_fewer_seeds_than_the_plan_are_marked_and_one_seed_gives_no_verdict(tmp_path):
    runs = _plan(tmp_path / "three", no_edgemap_branch=[s + 0.028 for s in SEMI3NET[:3]],
                 domain_bn=[s + 0.028 for s in SEMI3NET[:3]])
    text = why.why_findings(runs, missing=["domain-bn seed 3", "domain-bn seed 4"])
    assert "So far, one BatchNorm per domain in the shared bottom (3 of 5 seed pairs) carries the cost" in text
    assert text.endswith("2 runs of the plan have no record yet (`semi3 study --plan configs/why-edgemap.yaml` resumes).")
    one = tmp_path / "one"
    _write(one, "semi3net", SEMI3NET[:1])
    _write(one, "no-edgemap-branch", [0.66])
    text = why.why_findings(why.load_why(one))
    assert "**no verdict yet** (gap +0.030 with one seed" in text and text.endswith("two paired seeds of both rows.")
    assert why.why_findings(None).startswith("No Semi3-Net run of the decomposition yet")


def test_seed_gaps_pair_only_seeds_run_on_one_kind_of_host_and_the_figure_draws_them(tmp_path):
    _write(tmp_path, "semi3net", SEMI3NET[:3])
    _write(tmp_path, "domain-bn", [0.64, 0.64], seeds=[0, 1])
    _write(tmp_path, "domain-bn", [0.70], XEON, seeds=[2])  # another kind of host: not paired
    runs = why.load_why(tmp_path)
    gaps = why.seed_gaps(runs)
    assert list(gaps["seed"]) == [0, 1] and gaps["gap"].tolist() == pytest.approx([0.010, 0.015])
    assert "seed 2 left out, the rows ran it on different kinds of host" in why.why_findings(runs)
    fig = plot_seed_gaps(gaps, [why.WHOLE, *why.PARTS], {"domain-bn": "pays"}, why.LABELS)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [why.LABELS["domain-bn"]]
    assert len([line for line in ax.lines if line.get_marker() == "o"]) == 2
    assert any(t.get_text() == "pays" for t in ax.texts)


def test_missing_runs_are_read_from_the_plan(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    _write(tmp_path, "semi3net", [0.63])
    missing = why.missing_runs(tmp_path)
    assert why.PLAN_SEEDS == len(load_plan(why.PLAN).seeds)  # "so far" counts against the plan's seeds
    assert len(missing) == 7 * 5 - 1 and missing[0] == "semi3net seed 1" and "domain-bn-photo+edge seed 4" in missing


def test_each_row_is_listed_with_its_seeds_and_hosts(tmp_path):
    from semi3lib.study.records import runs_by_row

    _write(tmp_path, "semi3net", SEMI3NET[:2])
    _write(tmp_path, "domain-bn", [0.70], XEON, seeds=[1])
    assert runs_by_row(why.load_why(tmp_path), width=10).splitlines() == [
        "semi3net   seeds 0, 1   hosts: AMD EPYC (AVX2)", "domain-bn  seeds 1   hosts: Intel Xeon (AVX512)"]


def test_the_carried_variant_is_judged_setting_by_setting_on_one_kind_of_host(tmp_path):
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    seen, unseen = tmp_path / "results" / "why-edgemap", tmp_path / "results" / "bridge-zeroshot"
    _write(seen, "semi3net", SEMI3NET)
    _write(seen, "no-edgemap-branch", [s + 0.028 for s in SEMI3NET])
    _write(seen, "no-edge-ce", [s + 0.045 for s in SEMI3NET])
    # Unseen categories: seeds 0-2 on a host whose instruction set was not recorded, 3-6 on AVX2;
    # Semi3-Net level with the network without the branch, the variant ahead of it on seeds 3-6.
    old_host, wobble = {"cpu": "AMD EPYC"}, [0.003, -0.003, 0.002, -0.002]
    _write(unseen, "semi3net", [0.35, 0.34, 0.36], old_host)
    _write(unseen, "no-edgemap-branch", [0.34, 0.35, 0.35], old_host)
    _write(unseen, "semi3net", [0.35 + w for w in wobble], seeds=[3, 4, 5, 6])
    _write(unseen, "no-edgemap-branch", [0.35 - w for w in wobble], seeds=[3, 4, 5, 6])
    _write(unseen, "no-edge-ce", [0.38 + w for w in wobble], seeds=[3, 4, 5, 6])
    _write(unseen, "no-edge-ce", [0.50], seeds=[0])  # AVX2, where the others' seed 0 is not: left out
    # the two-branch network: unseen, ahead of Semi3-Net and behind the variant; all photos,
    # behind Semi3-Net already (so no place where the variant can beat it and Semi3-Net does not)
    _write(unseen, "two-branch-ce", [0.36 + w for w in wobble], seeds=[3, 4, 5, 6])
    _write(unseen, "semi3net-all-photos", [0.20 + w for w in wobble], seeds=[3, 4, 5, 6])
    _write(unseen, "two-branch-ce-all-photos", [0.10 + w for w in wobble], seeds=[3, 4, 5, 6])

    found = why.carried_verdicts(tmp_path)
    assert [c.setting.name for c in found] == ["seen categories, 128 px", "unseen categories", "unseen, all photos",
                                               "160 px, 10 epochs"]
    assert [c.beats_where_semi3net_does_not for c in found] == [True, True, None, None]
    assert sorted(found[1].variant_vs_whole.paired) == [3, 4, 5, 6] and tuple(found[1].variant_vs_whole.cross_host) == (0,)
    assert found[1].semi3net_vs_whole.verdict == 0
    assert found[2].variant_vs_whole is None and found[3].semi3net_vs_whole is None
    assert [c.beats_two_branch_where_semi3net_does_not for c in found] == [None, True, False, None]
    assert found[1].semi3net_vs_two_branch.verdict == -1 and found[1].variant_vs_two_branch.verdict == 1
    text = why.carried_findings(found, why.load_why(seen))
    assert text.startswith("The variant carried: no cross-entropy on the edgemap branch (`loss.edge_ce=false`). "
                           "In this chapter's records it carries the cost and more.")
    assert "*160 px, 10 epochs*: not run yet (`semi3 study --plan configs/bridge-160px.yaml --only no-edge-ce`)" in text
    assert ("It beats the network without the branch where Semi3-Net does not in: *seen categories, 128 px* and "
            "*unseen categories*. Not decided yet: *unseen, all photos* and *160 px, 10 epochs*.") in text
    assert ("It beats the two-branch network where Semi3-Net does not in: *unseen categories*. "
            "Not decided yet: *160 px, 10 epochs*.") in text
    assert "- *seen categories, 128 px*: against the network without the branch the variant **ahead**" in text
    assert "no two-branch network in this setting's plan" in text
    assert why.carried_in_short(tmp_path) == (
        "Semi3-Net with no cross-entropy on the edgemap branch, carried to chapter 9's settings as a variant, beats the "
        "network without the branch where Semi3-Net does not in *seen categories, 128 px* and *unseen categories*, "
        "and the two-branch network where Semi3-Net does not in *unseen categories*; "
        "not decided yet in *unseen, all photos* and *160 px, 10 epochs*.")
    table = why.carried_table(found)
    assert table.values.loc["Semi3-Net vs. without the branch, unseen categories", "seed pairs"] == 7
    assert table.values.loc["the variant vs. Semi3-Net, 160 px, 10 epochs", "verdict"] == "not run"
    assert table.values.loc["the variant vs. the two-branch network, seen categories, 128 px", "verdict"] == "no such row"
    assert table.values.loc["the variant vs. the two-branch network, unseen categories", "verdict"] == "ahead"


def test_the_carried_variant_is_a_row_of_chapter_9s_plans_added_with_seeds_on_one_host():
    for setting in why.CARRIED_SETTINGS:
        plan = load_plan(REPO / setting.plan)
        row = plan.row(setting.variant)
        assert "loss.edge_ce=false" in (row.overrides or []) or row.rescore == why.CARRIED
        if setting.study_dir != str(why.WHY_DIR):
            # its seeds are ones Semi3-Net and the network without the branch also run (on this host)
            variant_seeds = set(plan.seeds_of(row))
            assert variant_seeds <= set(plan.seeds_of(plan.row(setting.semi3net)))
            assert variant_seeds <= set(plan.seeds_of(plan.row(setting.whole)))
