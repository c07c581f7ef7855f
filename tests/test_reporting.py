"""Results tables: the reproduction study read and summarised over seeds, the paper's numbers,
example queries and the per-epoch training table."""

from __future__ import annotations

import json

import pytest

from semi3lib.study import reporting


def test_study_table_reads_run_files_and_summarises_seeds(tmp_path):
    missing, why = reporting.load_study(tmp_path / "nope")
    assert missing is None and "does not exist" in why
    for seed, value in ((0, 0.5), (1, 0.6)):
        (tmp_path / f"semi3net-s{seed}.json").write_text(json.dumps(
            {"run": "semi3net", "seed": seed, "metrics": {"mAP@all": value, "P@200": 0.1}, "wall_seconds": 10}))
    (tmp_path / "baseline.json").write_text(json.dumps({"run": "imagenet", "seed": 0, "metrics": {"mAP@all": 0.05}}))
    (tmp_path / "other.json").write_text(json.dumps({"not": "a run"}))
    runs, note = reporting.load_study(tmp_path)
    assert len(runs) == 3 and "3 run file(s)" in note
    summary = reporting.summarise_study(runs)
    assert summary.loc["semi3net", "mAP@all"] == "0.550 ± 0.071"
    assert summary.loc["imagenet", "mAP@all"] == "0.050"
    import pandas as pd

    ours = pd.DataFrame({"mAP@all": [0.3], "P@200": [0.1]}, index=["book"])
    table = reporting.results_table(ours, runs)
    assert table.rows == ["semi3net", "imagenet", "book"]  # a row the groups do not name goes last
    assert [title for title, _ in table.groups] == ["The method", reporting.OTHER_GROUP, reporting.BOOK_GROUP]
    assert table.text().loc["semi3net", "mAP@all"] == "0.550 ± 0.071" and table.text().loc["book", "seeds"] == "1"


def test_a_tuning_study_is_read_on_its_validation_split_and_written_as_markdown(tmp_path):
    for seed, (query, val) in enumerate(((0.5, 0.4), (0.6, 0.5))):
        (tmp_path / f"a-seed{seed}.json").write_text(json.dumps(
            {"run": "a", "seed": seed, "wall_seconds": 60 * (seed + 1),
             "metrics": {"query": {"mAP@all": query}, "val": {"mAP@all": val}}}))
    (tmp_path / "b-seed0.json").write_text(json.dumps(
        {"run": "b", "seed": 0, "wall_seconds": 30, "metrics": {"query": {"mAP@all": 0.1}}}))
    runs, note = reporting.load_study(tmp_path, split="val")
    assert list(runs["run"]) == ["a", "a"] and list(runs["mAP@all"]) == [0.4, 0.5]  # b has no val metrics
    (tmp_path / "query-only").mkdir()
    (tmp_path / "b-seed0.json").rename(tmp_path / "query-only" / "b-seed0.json")
    none, why = reporting.load_study(tmp_path / "query-only", split="val")
    assert none is None and "val metrics" in why
    text = reporting.study_table(runs, groups=reporting.groups_for(["a"]), reference=None).to_markdown()
    assert text.splitlines() == ["| run | seeds | train min | mAP@all |", "|---|---|---|---|",
                                 "| a | 2 | 1.5 | 0.450 ± 0.071 |"]  # one row: nothing to bold


def test_a_plans_rows_are_grouped_by_the_groups_that_name_most_of_them():
    assert reporting.groups_for(["semi3net", "edgemaps-xdog", "no-coattention"]) is reporting.STUDY_GROUPS
    assert reporting.groups_for(["untuned", "backbone-lr-1.0", "edgemaps-xdog"]) is reporting.TUNING_GROUPS
    assert reporting.groups_for(["semi3net", "two-branch-ce", "semi3net-all-photos", "x-all-photos"]) is None


def test_each_run_is_listed_with_its_wall_time_and_hardware(tmp_path):
    cpu = {"cpu": "AMD EPYC", "usable_cores": 2, "gpu": None}
    for name, seed, machine in (("b", 1, cpu), ("a", 0, {**cpu, "gpu": "NVIDIA H200"}), ("b", 0, None)):
        record = {"run": name, "seed": seed, "wall_seconds": 90, "metrics": {"mAP@all": 0.25}}
        (tmp_path / f"{name}-seed{seed}.json").write_text(json.dumps({**record, "machine": machine} if machine else record))
    runs, _ = reporting.load_study(tmp_path)
    table = reporting.study_runs_table(runs, order=["b", "missing"])
    assert list(table.index) == ["b", "b", "a"] and list(table["seed"]) == [0, 1, 0]
    assert table["hardware"].isna().iloc[0]  # a record without a machine block
    assert list(table["hardware"].iloc[1:]) == ["AMD EPYC, 2 cores", "NVIDIA H200"]
    assert reporting.markdown_table(table).splitlines()[3] == "| b | 1 | 1.5 | 0.250 | AMD EPYC, 2 cores |"


def test_paper_numbers_are_labelled_as_the_papers():
    table = reporting.paper_reported_table()
    assert all(c.endswith("(paper)") for c in table.columns)
    assert table.iloc[0]["mAP@all (paper)"] == 0.916 and table.iloc[1]["P@200 (paper)"] == 0.813


def test_spread_queries_picks_distinct_categories_from_best_to_worst():
    import numpy as np

    ap = np.array([0.9, 0.8, 0.7, 0.1, 0.5, 0.3])
    labels = np.array([0, 0, 1, 2, 3, 4])
    picks = reporting.spread_queries(ap, labels, 3)
    assert len(picks) == 3 and len({labels[p] for p in picks}) == 3
    assert list(ap[picks]) == sorted(ap[picks], reverse=True) and picks[0] == 0
    assert ap[picks[-1]] == ap.min(), "the worst query belongs in the spread"


def test_history_table_keeps_the_loss_terms_that_were_used_and_the_evaluated_metrics():
    history = [{"epoch": 1, "loss_ce": 2.0, "loss_triplet": 0.0, "lr": 1e-3, "wall_seconds": 1.0},
               {"epoch": 2, "loss_ce": 1.0, "loss_triplet": 0.0, "lr": 5e-4, "wall_seconds": 2.0,
                "query": {"mAP@all": 0.3, "P@25": 0.2, "P@200": 0.1, "P@10": 0.4}}]
    table = reporting.history_table(history)
    assert list(table.columns) == ["loss_ce", "lr", "wall_seconds", "query mAP@all", "query P@25", "query P@200"]
    assert list(table.index) == [1, 2] and table.loc[2, "query mAP@all"] == pytest.approx(0.3)


def test_study_statistics_are_the_mean_and_sample_std_over_seeds():
    import numpy as np
    import pandas as pd

    runs = pd.DataFrame({"run": ["a", "a", "a", "b", "b"], "seed": [0, 1, 2, 0, 1],
                         "mAP@all": [0.1, 0.2, 0.3, 0.5, None], "wall_seconds": [10, 20, 30, 5, 7]})
    table = reporting.study_statistics(runs)
    assert list(table.index) == ["a", "b"] and list(table["seeds"]) == [3, 2]
    assert table.loc["a", "mAP@all mean"] == pytest.approx(0.2)
    assert table.loc["a", "mAP@all std"] == pytest.approx(0.1)
    assert table.loc["a", "wall_seconds mean"] == 20
    # b's second seed has no mAP@all: one value, so its spread is unknown (NaN), not zero
    assert table.loc["b", "mAP@all mean"] == 0.5 and np.isnan(table.loc["b", "mAP@all std"])
    assert list(reporting.summarise_study(runs)["mAP@all"]) == ["0.200 ± 0.100", "0.500"]


def test_a_row_beats_the_reference_only_by_more_than_the_larger_seed_std():
    import pandas as pd

    # canny 0.50 ± 0.01; sobel +0.015 with std 0.01 (beats); xdog +0.015 with std 0.02 (does
    # not: its own spread is larger); one-seed rows have no spread and never beat anything
    runs = pd.DataFrame({"run": ["canny"] * 3 + ["sobel"] * 3 + ["xdog"] * 3 + ["lucky"],
                         "seed": [0, 1, 2] * 3 + [0],
                         "mAP@all": [0.49, 0.50, 0.51, 0.505, 0.515, 0.525, 0.495, 0.515, 0.535, 0.9]})
    table = reporting.margin_over(runs, "canny", ["sobel", "xdog", "lucky"])
    assert table.loc["sobel", "gap"] == pytest.approx(0.015) and table.loc["sobel", "spread"] == pytest.approx(0.01)
    assert list(table["beats"]) == [True, False, False]
    assert table.loc["xdog", "spread"] == pytest.approx(0.02)
    # by default the challengers are the other rows with several seeds
    assert list(reporting.margin_over(runs, "canny").index) == ["sobel", "xdog"]
    with pytest.raises(KeyError, match="no runs of sobol"):
        reporting.margin_over(runs, "canny", ["sobol"])


def _study_runs():
    import pandas as pd

    rows = {"semi3net": [0.58, 0.59, 0.57], "two-branch-ce": [0.60, 0.58, 0.59], "imagenet-features": [0.04],
            "edgemaps-sobel": [0.61, 0.60, 0.60], "no-edgemap-branch": [0.61, 0.62, 0.61], "custom-row": [0.3, 0.2]}
    return pd.DataFrame([{"run": run, "seed": seed, "mAP@all": v, "P@200": v / 5, "wall_seconds": 600.0 + seed}
                         for run, values in rows.items() for seed, v in enumerate(values)])


def test_reader_table_groups_rows_by_meaning_bolds_the_best_and_marks_the_reference():
    table = reporting.study_table(_study_runs())
    assert table.rows == ["imagenet-features", "two-branch-ce", "semi3net", "no-edgemap-branch", "edgemaps-sobel",
                          "custom-row"]
    assert [title for title, _ in table.groups] == ["Floor and baselines", "The method", "Ablations of Semi3-Net",
                                                     reporting.OTHER_GROUP]
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
    table = reporting.reader_table(frame, integers=("photos",), best={"photos": "min"})
    assert table.text().to_dict(orient="index") == {"all": {"photos": "3,125", "ok": "yes", "note": "a"},
                                                    "one": {"photos": "25", "ok": "no", "note": ""}}
    assert table.bold_cells() == {("one", "photos")} and table.groups == [("", ["all", "one"])]


def test_headline_rows_are_chosen_from_the_records():
    rows = reporting.headline_rows(_study_runs())
    assert rows == {"ImageNet features, no training (the floor)": "imagenet-features",
                    "the best baseline": "two-branch-ce", "Semi3-Net as in the paper": "semi3net",
                    "Semi3-Net's best variant": "edgemaps-sobel",
                    "Semi3-Net without its edgemap branch": "no-edgemap-branch"}
    import pandas as pd

    # a tuned twin of the network without the edgemap branch is not a variant of Semi3-Net, however well it scores
    twin = pd.DataFrame([{"run": "no-edgemap-branch-label-smoothing", "seed": s, "mAP@all": 0.7, "P@200": 0.14,
                          "wall_seconds": 600.0} for s in range(3)])
    assert reporting.headline_rows(pd.concat([_study_runs(), twin]))["Semi3-Net's best variant"] == "edgemaps-sobel"
