"""Reporting a study: its records read and summarised over seeds (study/records.py), the
tables a reader sees and the one Markdown writer (study/tables.py), the rule's verdicts against
a reference row, the README's headline (study/headline.py), example queries (book/analysis.py)
and the per-epoch training table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semi3lib.book.analysis import spread_queries
from semi3lib.study import headline, records, tables

REPO = Path(__file__).resolve().parents[1]


def test_study_table_reads_run_files_and_summarises_seeds(tmp_path):
    missing, why = records.load_study(tmp_path / "nope")
    assert missing is None and "does not exist" in why
    for seed, value in ((0, 0.5), (1, 0.6)):
        (tmp_path / f"semi3net-s{seed}.json").write_text(json.dumps(
            {"run": "semi3net", "seed": seed, "metrics": {"mAP@all": value, "P@200": 0.1}, "wall_seconds": 10}))
    (tmp_path / "baseline.json").write_text(json.dumps({"run": "imagenet", "seed": 0, "metrics": {"mAP@all": 0.05}}))
    (tmp_path / "other.json").write_text(json.dumps({"not": "a run"}))
    runs, note = records.load_study(tmp_path)
    assert len(runs) == 3 and "3 run file(s)" in note
    summary = tables.summarise_study(runs)
    assert summary.loc["semi3net", "mAP@all"] == "0.550 ± 0.071"
    assert summary.loc["imagenet", "mAP@all"] == "0.050"
    import pandas as pd

    ours = pd.DataFrame({"mAP@all": [0.3], "P@200": [0.1]}, index=["book"])
    table = tables.results_table(ours, runs)
    assert table.rows == ["semi3net", "imagenet", "book"]  # a row the groups do not name goes last
    assert [title for title, _ in table.groups] == ["The method", tables.OTHER_GROUP, tables.BOOK_GROUP]
    assert table.text().loc["semi3net", "mAP@all"] == "0.550 ± 0.071" and table.text().loc["book", "seeds"] == "1"


def test_a_tuning_study_is_read_on_its_validation_split_and_written_as_markdown(tmp_path):
    for seed, (query, val) in enumerate(((0.5, 0.4), (0.6, 0.5))):
        (tmp_path / f"a-seed{seed}.json").write_text(json.dumps(
            {"run": "a", "seed": seed, "wall_seconds": 60 * (seed + 1),
             "metrics": {"query": {"mAP@all": query}, "val": {"mAP@all": val}}}))
    (tmp_path / "b-seed0.json").write_text(json.dumps(
        {"run": "b", "seed": 0, "wall_seconds": 30, "metrics": {"query": {"mAP@all": 0.1}}}))
    runs, note = records.load_study(tmp_path, split="val")
    assert list(runs["run"]) == ["a", "a"] and list(runs["mAP@all"]) == [0.4, 0.5]  # b has no val metrics
    (tmp_path / "query-only").mkdir()
    (tmp_path / "b-seed0.json").rename(tmp_path / "query-only" / "b-seed0.json")
    none, why = records.load_study(tmp_path / "query-only", split="val")
    assert none is None and "val metrics" in why
    text = tables.study_table(runs, groups=tables.groups_for(["a"]), reference=None).to_markdown()
    assert text.splitlines() == ["| run | seeds | train min | mAP@all |", "|---|---|---|---|",
                                 "| a | 2 | 1.5 | 0.450 ± 0.071 |"]  # one row: nothing to bold


def test_a_plans_rows_are_grouped_by_the_groups_that_name_most_of_them():
    assert tables.groups_for(["semi3net", "edgemaps-xdog", "no-coattention"]) is tables.STUDY_GROUPS
    assert tables.groups_for(["untuned", "backbone-lr-1.0", "edgemaps-xdog"]) is tables.TUNING_GROUPS
    assert tables.groups_for(["semi3net", "two-branch-ce", "semi3net-all-photos", "x-all-photos"]) is None


def test_each_run_is_listed_with_its_wall_time_and_hardware(tmp_path):
    cpu = {"cpu": "AMD EPYC", "usable_cores": 2, "gpu": None}
    for name, seed, machine in (("b", 1, cpu), ("a", 0, {**cpu, "gpu": "NVIDIA H200"}), ("b", 0, None)):
        record = {"run": name, "seed": seed, "wall_seconds": 90, "metrics": {"mAP@all": 0.25}}
        (tmp_path / f"{name}-seed{seed}.json").write_text(json.dumps({**record, "machine": machine} if machine else record))
    runs, _ = records.load_study(tmp_path)
    table = tables.study_runs_table(runs, order=["b", "missing"])
    assert list(table.index) == ["b", "b", "a"] and list(table["seed"]) == [0, 1, 0]
    assert table["hardware"].isna().iloc[0]  # a record without a machine block
    assert list(table["hardware"].iloc[1:]) == ["AMD EPYC, 2 cores", "NVIDIA H200"]
    assert tables.markdown_table(table).splitlines()[3] == "| b | 1 | 1.5 | 0.250 | AMD EPYC, 2 cores |"


def test_spread_queries_picks_distinct_categories_from_best_to_worst():
    import numpy as np

    ap = np.array([0.9, 0.8, 0.7, 0.1, 0.5, 0.3])
    labels = np.array([0, 0, 1, 2, 3, 4])
    picks = spread_queries(ap, labels, 3)
    assert len(picks) == 3 and len({labels[p] for p in picks}) == 3
    assert list(ap[picks]) == sorted(ap[picks], reverse=True) and picks[0] == 0
    assert ap[picks[-1]] == ap.min(), "the worst query belongs in the spread"


def test_history_table_keeps_the_loss_terms_that_were_used_and_the_evaluated_metrics():
    history = [{"epoch": 1, "loss_ce": 2.0, "loss_triplet": 0.0, "lr": 1e-3, "wall_seconds": 1.0},
               {"epoch": 2, "loss_ce": 1.0, "loss_triplet": 0.0, "lr": 5e-4, "wall_seconds": 2.0,
                "query": {"mAP@all": 0.3, "P@25": 0.2, "P@200": 0.1, "P@10": 0.4}}]
    table = tables.history_table(history)
    assert list(table.columns) == ["loss_ce", "lr", "wall_seconds", "query mAP@all", "query P@25", "query P@200"]
    assert list(table.index) == [1, 2] and table.loc[2, "query mAP@all"] == pytest.approx(0.3)


def test_study_statistics_are_the_mean_and_sample_std_over_seeds():
    import numpy as np
    import pandas as pd

    runs = pd.DataFrame({"run": ["a", "a", "a", "b", "b"], "seed": [0, 1, 2, 0, 1],
                         "mAP@all": [0.1, 0.2, 0.3, 0.5, None], "wall_seconds": [10, 20, 30, 5, 7]})
    table = records.study_statistics(runs)
    assert list(table.index) == ["a", "b"] and list(table["seeds"]) == [3, 2]
    assert table.loc["a", "mAP@all mean"] == pytest.approx(0.2)
    assert table.loc["a", "mAP@all std"] == pytest.approx(0.1)
    assert table.loc["a", "wall_seconds mean"] == 20
    # b's second seed has no mAP@all: one value, so its spread is unknown (NaN), not zero
    assert table.loc["b", "mAP@all mean"] == 0.5 and np.isnan(table.loc["b", "mAP@all std"])
    assert list(tables.summarise_study(runs)["mAP@all"]) == ["0.200 ± 0.100", "0.500"]


def test_rows_are_judged_against_the_reference_by_the_one_rule():
    import pandas as pd

    # canny 0.49, 0.50, 0.51 (0.50 ± 0.01). sobel +0.015 with every seed, std 0.01: ahead.
    # xdog 0.495, 0.515, 0.535: ahead with every seed (+0.005, +0.015, +0.025), but the gap
    # +0.015 is within its own spread 0.02: level. jumpy 0.53, 0.53, 0.505 (mean 0.52167, std
    # 0.01443): gap +0.02167 past the spread 0.01443, but seed 2 is behind (0.505 < 0.51):
    # level by the paired rule (the old margin_over rule, gap past the spread only, said it beat
    # canny). lucky has one seed: no spread, no verdict, and not a default challenger.
    runs = pd.DataFrame({"run": ["canny"] * 3 + ["sobel"] * 3 + ["xdog"] * 3 + ["jumpy"] * 3 + ["lucky"],
                         "seed": [0, 1, 2] * 4 + [0],
                         "mAP@all": [0.49, 0.50, 0.51, 0.505, 0.515, 0.525, 0.495, 0.515, 0.535,
                                     0.53, 0.53, 0.505, 0.9]})
    outcomes = tables.against_reference(runs, "canny")
    assert list(outcomes) == ["sobel", "xdog", "jumpy"]  # the other rows with several seeds
    assert [o.verdict for o in outcomes.values()] == [1, 0, 0]
    assert outcomes["jumpy"].gap == pytest.approx(0.021667, abs=1e-6)
    assert outcomes["jumpy"].spread == pytest.approx(0.014434, abs=1e-6)
    table = tables.outcomes_table({**outcomes, **tables.against_reference(runs, "canny", ["lucky"])}, "canny")
    assert list(table.columns) == ["seeds", "mAP@all", "canny mAP@all", "gap", "spread", "seed by seed", "verdict"]
    assert list(table["verdict"]) == ["ahead", "level", "level", "no verdict yet"]
    assert list(table["seed by seed"])[:3] == ["ahead with every seed", "ahead with every seed",
                                               "ahead with some seeds, behind with others"]
    assert table.loc["sobel", "gap"] == pytest.approx(0.015) and table.loc["sobel", "spread"] == pytest.approx(0.01)
    assert table.loc["lucky", "seeds"] == 1 and table.loc["lucky", "mAP@all"] == 0.9
    with pytest.raises(KeyError, match="no runs of sobol"):
        tables.against_reference(runs, "canny", ["sobol"])


def test_the_tuning_search_verdicts_on_the_shipped_records():
    runs, note = records.load_study(REPO / "results" / "tuning", split="val")
    assert runs is not None, note
    verdicts = {row: tables.outcomes_table({row: o}, "backbone-lr-1.0").at[row, "verdict"]
                for row, o in tables.against_reference(runs, "backbone-lr-1.0").items()}
    # the same words as the old gap-only rule (margin_over) gave: label smoothing beat the base,
    # the edge detectors did not; but the base's seed 0 ran on another kind of host than these
    # rows' (AMD EPYC, they on Intel Xeon), so each verdict rests on seeds 1 and 2: provisional
    assert verdicts == {"backbone-lr-1.0-label-smoothing-0.1": "ahead (2 seeds so far)",
                        "edgemaps-sobel": "level (2 seeds so far)", "edgemaps-xdog": "level (2 seeds so far)"}


def test_one_markdown_writer_escapes_bars_and_leaves_missing_cells_empty():
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"a": ["x|y", None], "b": [1.5, np.nan]}, index=pd.Index(["r1", "r2"], name="row"))
    assert tables.markdown_table(frame).splitlines() == ["| row | a | b |", "|---|---|---|",
                                                         "| r1 | x\\|y | 1.5 |", "| r2 | | |"]
    assert tables.markdown_table(frame, index=False).splitlines()[0] == "| a | b |"


def _study_runs():
    import pandas as pd

    rows = {"semi3net": [0.58, 0.59, 0.57], "two-branch-ce": [0.60, 0.58, 0.59], "imagenet-features": [0.04],
            "edgemaps-sobel": [0.61, 0.60, 0.60], "no-edgemap-branch": [0.61, 0.62, 0.61], "custom-row": [0.3, 0.2]}
    return pd.DataFrame([{"run": run, "seed": seed, "mAP@all": v, "P@200": v / 5, "wall_seconds": 600.0 + seed}
                         for run, values in rows.items() for seed, v in enumerate(values)])


def test_reader_table_groups_rows_by_meaning_bolds_the_best_and_marks_the_reference():
    table = tables.study_table(_study_runs())
    assert table.rows == ["imagenet-features", "two-branch-ce", "semi3net", "no-edgemap-branch", "edgemaps-sobel",
                          "custom-row"]
    assert [title for title, _ in table.groups] == ["Floor and baselines", "The method", "Ablations of Semi3-Net",
                                                     tables.OTHER_GROUP]
    assert table.bold_cells() >= {("no-edgemap-branch", "mAP@all"), ("no-edgemap-branch", "P@200")}
    text = table.text()
    assert text.loc["semi3net", "seeds"] == "3" and text.loc["imagenet-features", "seeds"] == "1"  # counts, not 3.0
    assert text.loc["semi3net", "train min"] == "10.0" and text.loc["semi3net", "mAP@all"] == "0.580 ± 0.010"
    html = table._repr_html_()
    assert html.startswith('<div class="reader-table-frame">') and html.count('class="group-row"') == 4
    assert '<tr class="reference-row"><th scope="row" class="row-label">semi3net <span class="ref-mark">' in html
    assert '<td class="best"><strong>0.613 <span class="spread">± 0.006</span></strong></td>' in html
    markdown = table.to_markdown().splitlines()
    assert "| semi3net (reference) | 3 | 10.0 | 0.580 ± 0.010 | 0.116 ± 0.002 |" in markdown
    assert "| *The method* | | | | |" in markdown


def test_reader_table_formats_any_frame_with_integer_counts_and_text():
    import pandas as pd

    frame = pd.DataFrame({"photos": [3125.0, 25.0], "ok": [True, False], "note": ["a", None]},
                         index=pd.Index(["all", "one"], name="set"))
    table = tables.reader_table(frame, integers=("photos",), best={"photos": "min"})
    assert table.text().to_dict(orient="index") == {"all": {"photos": "3,125", "ok": "yes", "note": "a"},
                                                    "one": {"photos": "25", "ok": "no", "note": ""}}
    assert table.bold_cells() == {("one", "photos")} and table.groups == [("", ["all", "one"])]


def test_headline_rows_are_chosen_from_the_records():
    rows = headline.headline_rows(_study_runs())
    assert rows == {"ImageNet features, no training (the floor)": "imagenet-features",
                    "the best baseline": "two-branch-ce", "Semi3-Net as in the paper": "semi3net",
                    "Semi3-Net's best variant": "edgemaps-sobel",
                    "Semi3-Net without its edgemap branch": "no-edgemap-branch"}
    import pandas as pd

    # a tuned twin of the network without the edgemap branch is not a variant of Semi3-Net, however well it scores
    twin = pd.DataFrame([{"run": "no-edgemap-branch-label-smoothing", "seed": s, "mAP@all": 0.7, "P@200": 0.14,
                          "wall_seconds": 600.0} for s in range(3)])
    assert headline.headline_rows(pd.concat([_study_runs(), twin]))["Semi3-Net's best variant"] == "edgemaps-sobel"


def test_headline_findings_state_the_rule_on_hand_made_rows():
    # two-branch-ce 0.60, 0.58, 0.59 (mean 0.59, std 0.01); semi3net 0.58, 0.59, 0.57 (mean 0.58,
    # std 0.01): gap -0.01, not past 0.01, and seed 1 is ahead: level. no-edgemap-branch 0.61,
    # 0.62, 0.61 (mean 0.61333, std 0.00577) against semi3net: gap +0.03333 past 0.01, ahead
    # with every seed: ahead. No tuned rows: the third finding is left out.
    lines = headline.headline_findings(_study_runs())
    assert lines == [
        "`semi3net` against `two-branch-ce` on mAP@all: **level** (gap -0.010, within the seed spread 0.010, "
        "ahead with some seeds, behind with others)",
        "`no-edgemap-branch` against `semi3net` on mAP@all: **ahead** (gap +0.033, past the seed spread 0.010, "
        "ahead with every seed)"]


def test_the_readme_findings_on_the_shipped_records():
    runs, note = records.load_study(REPO / "results" / "sketchy-mini")
    assert runs is not None, note
    words = [line.split(": ")[1].split(" (")[0] for line in headline.headline_findings(runs)]
    # the old rule (gap past the spread only) said the same: level, above, below
    assert words == ["**level**", "**ahead**", "**behind**"]
