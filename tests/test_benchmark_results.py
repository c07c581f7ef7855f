"""The committed performance benchmarks: every result loads, is checked against issue 8's
targets, and plots."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from semi3lib.book import figures  # noqa: E402
from semi3lib.study.benchmarks import BENCHMARKS, load_benchmarks, machines_table, targets_table  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results" / "benchmarks"
PLOTS = {"eval": figures.benchmarks.plot_eval_benchmark, "search": figures.benchmarks.plot_search_benchmark,
         "train_step": figures.benchmarks.plot_train_benchmark, "edges": figures.benchmarks.plot_edges_benchmark}


@pytest.fixture(scope="module")
def committed():
    results = load_benchmarks(RESULTS)
    if not results:
        pytest.skip(f"no benchmark results in {RESULTS}")
    return results


def test_every_committed_result_names_its_machine_and_command(committed):
    assert set(committed) <= set(BENCHMARKS)
    for name, result in committed.items():
        assert result["benchmark"] == name
        assert result["command"].startswith(f"python benchmarks/bench_{name}.py")
        assert {"cpu", "usable_cores", "load_average_1_5_15min", "gpu", "date"} <= set(result["machine"])
    assert list(machines_table(committed)["benchmark"]) == list(committed)


def test_targets_table_has_one_boolean_or_unmeasured_verdict_per_target(committed):
    table = targets_table(committed)
    assert list(table.columns) == ["benchmark", "target", "measured", "met"]
    assert len(table) >= len(committed)
    assert all(v in (True, False, None) for v in table["met"])


@pytest.mark.parametrize("name", BENCHMARKS)
def test_each_benchmark_plots(committed, name, tmp_path):
    if name not in committed:
        pytest.skip(f"{name}.json not committed")
    path = figures.save_figure(PLOTS[name](committed[name]), f"08_{name}", tmp_path)
    assert path.stat().st_size > 10_000


def _search(median_ms: float, recall: float) -> dict:
    return {"config": {"dim": 8}, "runs": [{"gallery": 10**6, "dim": 8, "backends": {
        "exact": {"median_ms": 60.0}, "faiss-hnsw": {"median_ms": median_ms, "recall@10": recall}}}]}


def test_a_fast_approximate_search_meets_the_target_only_with_enough_recall():
    fast_and_good = targets_table({"search": _search(0.1, 0.99)}).set_index("measured")["met"]
    assert list(fast_and_good) == [False, True]
    assert list(targets_table({"search": _search(0.1, 0.59)})["met"]) == [False, False]
