"""Results tables: the reproduction study read and summarised over seeds, the paper's numbers,
example queries and the per-epoch training table."""

from __future__ import annotations

import json

import pytest

from semi3lib import reporting


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
    table = reporting.results_table(ours, summary)
    assert list(table["source"]) == ["reproduction study", "reproduction study", "this book"]


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
    text = reporting.markdown_table(reporting.study_overview(runs))
    assert text.splitlines() == ["| run | seeds | train min | mAP@all |", "|---|---|---|---|",
                                 "| a | 2 | 1.5 | 0.450 ± 0.071 |"]


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
