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


# The verdicts on the committed results, worked out by hand from the JSON files: (benchmark,
# what the row measures, met).
COMMITTED_VERDICTS = [
    ("evaluation", "12.1x wall (10.5x CPU time)", False),  # 12.1x < the 20x target
    ("evaluation", "+145 MB", True),  # peak RSS +144.6 MB < 2 GB
    ("evaluation", "4.2e-09", True),  # max |AP difference| <= 1e-6
    # The largest gallery at the configured 256 dimensions: 1,000,000 photos.
    ("search", "exact: 56.7 ms", False),  # over 50 ms
    ("search", "faiss-flat: 166.4 ms, recall@10 1.000", False),  # over 50 ms
    ("search", "faiss-ivf: 1.2 ms, recall@10 1.000", True),
    ("search", "faiss-hnsw: 0.1 ms, recall@10 0.589", False),  # fast, but recall 0.589 < 0.9
    # Every training run: the loader alone (195-424 triplets/s) outpaces the model (0.4-18 triplets/s).
    *[("training", f"loader {loader} triplets/s vs model {model}", True) for loader, model in [
        (424, "12.7"), (424, "18.4"), (195, "3.2"), (195, "5.9"),
        (395, "1.6"), (395, "1.7"), (219, "0.4"), (219, "0.5")]],
    ("training", "not measured (no GPU)", None),  # the runs were on CPU
    ("edgemaps", "13.3x", True), ("edgemaps", "43.6x", True), ("edgemaps", "43.6x", True),  # canny, xdog, sobel >= 10x
]


def test_targets_table_gives_the_committed_results_their_verdicts(committed):
    if set(committed) != set(BENCHMARKS):
        pytest.skip("the verdicts below are for the four committed results")
    table = targets_table(committed)
    assert list(table.columns) == ["benchmark", "target", "measured", "met"]
    assert list(zip(table["benchmark"], table["measured"], table["met"])) == COMMITTED_VERDICTS


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
