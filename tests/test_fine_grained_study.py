"""Chapter 10's reading of the fine-grained records (semi3lib.study.fine_grained): the plan's
questions by the book's rule on acc@1, the best row against the target, the rank curves and
examples the records keep, and the README block that states them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semi3lib.engine.records import RunRecord, write_record
from semi3lib.study import fine_grained as fg

REPO = Path(__file__).resolve().parents[1]
HOST = {"cpu": "AMD EPYC", "cpu_capability": "AVX2"}


def _record(folder: Path, run: str, seed: int, acc1: float, ranks: list[int] | None = None,
            host: dict | None = None) -> None:
    ranks = ranks if ranks is not None else [1, 2, 3, 12]
    scores = {"acc@1": acc1, "acc@5": acc1 + 0.2, "acc@10": acc1 + 0.3, "mean rank": 5.0, "median rank": 3.0,
              "mAP@all": 0.8, "queries": float(len(ranks)), "gallery": 200.0, "own photo ranks": ranks,
              "examples": [{"category": "cup", "query": "sketch/x/cup/a-1.png", "own": "photo/x/cup/a.jpg",
                            "rank": ranks[0], "top": ["photo/x/cup/a.jpg"]}]}
    write_record(folder / f"{run}-seed{seed}.json",
                 RunRecord(run=run, seed=seed, metrics={"query": scores}, wall_seconds=60.0,
                           machine=host or HOST))


@pytest.fixture
def study(tmp_path):
    for seed, (semi3, twin) in enumerate([(0.30, 0.20), (0.32, 0.21), (0.31, 0.22)]):
        _record(tmp_path, "semi3net", seed, semi3)
        _record(tmp_path, "no-edgemap-branch", seed, twin)
    _record(tmp_path, "imagenet-features", 0, 0.04, ranks=[50, 60, 70, 80])
    return tmp_path


def test_the_edgemap_branch_pays_when_semi3net_is_ahead_with_every_seed_past_the_spread(study):
    runs = fg.load_fine_grained(study)
    outcome = fg.fine_grained_verdicts(runs)[fg.QUESTIONS[0].asks]
    assert outcome.verdict == 1 and outcome.gap == pytest.approx(0.10) and not outcome.provisional
    table = fg.verdicts_table(runs)
    assert list(table["verdict"]) == ["pays"] and list(table["seeds"]) == [3]
    text = fg.fine_grained_findings(runs)
    assert "**pays** (gap +0.100, past the seed spread" in text
    assert "two-branch" not in text  # a question whose rows have no runs is not asked


def test_a_level_or_one_seed_comparison_is_said_as_such(tmp_path):
    for seed, (semi3, twin) in enumerate([(0.30, 0.29), (0.28, 0.30), (0.31, 0.30)]):
        _record(tmp_path, "semi3net", seed, semi3)
        _record(tmp_path, "no-edgemap-branch", seed, twin)
    _record(tmp_path, "two-branch", 0, 0.25)
    runs = fg.load_fine_grained(tmp_path)
    assert fg.verdicts_table(runs)["verdict"].tolist() == ["level", "no verdict yet"]


def test_seeds_from_another_kind_of_host_do_not_pair(tmp_path):
    for seed in range(3):
        _record(tmp_path, "semi3net", seed, 0.30 + seed / 100)
        _record(tmp_path, "no-edgemap-branch", seed, 0.20 + seed / 100,
                host={"cpu": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512"} if seed == 2 else None)
    outcome = fg.fine_grained_verdicts(fg.load_fine_grained(tmp_path))[fg.QUESTIONS[0].asks]
    assert outcome.paired == (0, 1) and outcome.cross_host == (2,) and outcome.provisional


def test_the_best_trained_row_is_held_against_both_targets(study):
    best = fg.best_row(fg.load_fine_grained(study))
    assert best.row == "semi3net" and best.seeds == 3  # the floor never counts as the best network
    assert best.misses() == pytest.approx({"acc@1": 0.45 - 0.31, "acc@10": 0.90 - 0.61})
    assert "misses the target: acc@1 short of 0.45 by 0.140" in fg.fine_grained_findings(fg.load_fine_grained(study))


def test_rank_curves_pool_each_rows_seeds(study):
    curves = fg.rank_curves(study, max_rank=20)
    semi3 = curves[curves["run"] == "semi3net"].set_index("K")
    assert semi3["seeds"].iloc[0] == 3
    assert semi3.loc[1, "acc@K"] == pytest.approx(0.25) and semi3.loc[3, "acc@K"] == pytest.approx(0.75)
    assert semi3.loc[12, "acc@K"] == pytest.approx(1.0)
    assert np.all(np.diff(semi3["acc@K"].to_numpy()) >= 0)
    floor = curves[curves["run"] == "imagenet-features"].set_index("K")
    assert floor.loc[20, "acc@K"] == 0.0


def test_examples_and_scope_come_from_the_records(study, tmp_path):
    assert fg.record_examples(study, "semi3net", 0)[0]["own"] == "photo/x/cup/a.jpg"
    assert fg.record_examples(study, "two-branch", 0) == []
    assert fg.query_scope(study) == (4, 200)
    assert fg.query_scope(tmp_path / "none") is None


def test_no_records_say_how_to_make_them(tmp_path):
    assert fg.load_fine_grained(tmp_path) is None
    assert "semi3 study --plan configs/fine-grained.yaml" in fg.fine_grained_findings(None)


def test_the_shipped_records_give_the_readme_block():
    """The README's block is the committed records' findings (tests/test_generated.py checks
    that it is current); here: it names the best network and the target."""
    runs = fg.load_fine_grained(REPO / fg.FINE_GRAINED_DIR)
    text = fg.fine_grained_findings(runs)
    assert "The best network" in text and "target" in text
    assert fg.query_scope(REPO / fg.FINE_GRAINED_DIR) == (1157, 200)


def test_missing_runs_name_each_planned_row_and_seed_without_a_record(study):
    missing = fg.missing_runs(study, REPO / fg.PLAN)
    # the floor is deterministic: its first seed only; the rescore rows need records of their own
    assert "imagenet-features seed 0" not in missing and "imagenet-features seed 1" not in missing
    assert "semi3net seed 2" not in missing
    assert missing[:3] == ["two-branch seed 0", "two-branch seed 1", "two-branch seed 2"]
    assert "semi3net-all-photos seed 2" in missing and "imagenet-features-all-photos seed 0" in missing
    assert fg.missing_runs(REPO / fg.FINE_GRAINED_DIR, REPO / fg.PLAN) == []  # the shipped study is complete


def test_findings_ask_each_gallery_once(study):
    for seed in range(3):
        _record(study, "semi3net-all-photos", seed, 0.1 + seed / 100)
        _record(study, "no-edgemap-branch-all-photos", seed, 0.2 + seed / 100)
    text = fg.fine_grained_findings(fg.load_fine_grained(study))
    assert text.count("Against the 200 test photos, the edgemap branch") == 1
    assert text.count("Against all 1,000 photos, the edgemap branch") == 1
    assert "**costs** (gap -0.100" in text
