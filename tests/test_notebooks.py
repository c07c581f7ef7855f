"""The book's notebooks, executed headlessly: the smoke profile through the runner (once per
session), then nbval re-running the executed copies cell by cell.

Everything runs in a temporary project folder (``notebooks/`` and ``configs/`` linked from the
repository), so the smoke run never touches the repository's ``results/``, ``figures/``,
``runs/`` or ``_build/``. Budget: about 2-3 minutes for the runner and as much for nbval on
2 CPU cores.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from semi3lib.book import runner as book

REPO = Path(__file__).resolve().parents[1]
PROFILE = "smoke"
RESULTS = Path("results/book/smoke")
FIGURES = Path("figures/smoke")

EXPECTED_FIGURES = [
    "01_sketch_photo_pairs", "01_sketch_variants", "01_variant_extent",
    "02_edgemaps_by_method", "02_edge_retrieval", "02_edge_speed",
    "03_training_triplets",
    "04_training_curves",
    "05_pr_curves", "05_retrieval_grid",
    "06_weight_distribution", "06_channel_weights", "06_activation_maps",
    "07_umap",
    "08_eval_benchmark", "08_search_benchmark", "08_train_benchmark", "08_edges_benchmark",
    "09_bridge",
    "10_fine_grained_seeds", "10_fine_grained_ranks", "10_fine_grained_grid",
    "11_why_edgemap",
]
METRIC_KEYS = {"mAP@all", "mAP@200", "P@10", "P@25", "P@100", "P@200"}


def make_project(dest: Path) -> Path:
    """A project folder whose notebooks and configs are the repository's (linked)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("notebooks", "configs"):
        os.symlink(REPO / name, dest / name, target_is_directory=True)
    # The benchmarks page only reads the committed benchmark results.
    (dest / "results").mkdir(parents=True, exist_ok=True)
    os.symlink(REPO / "results" / "benchmarks", dest / "results" / "benchmarks", target_is_directory=True)
    # Chapter 5's doodle section reads the committed doodle records (it trains nothing).
    os.symlink(REPO / "results" / "doodles", dest / "results" / "doodles", target_is_directory=True)
    # Chapter 10 reads the committed fine-grained records (it trains nothing).
    os.symlink(REPO / "results" / "fine-grained", dest / "results" / "fine-grained", target_is_directory=True)
    # Chapter 11 reads the committed decomposition records (it trains nothing).
    os.symlink(REPO / "results" / "why-edgemap", dest / "results" / "why-edgemap", target_is_directory=True)
    return dest


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory, sketchy_mini_root):
    """Run the whole smoke profile once; yields ``(project folder, BookRun)``."""
    project = make_project(tmp_path_factory.mktemp("book"))
    old = os.environ.get("SEMI3_DATA")
    os.environ["SEMI3_DATA"] = str(sketchy_mini_root.parent)
    try:
        run = book.run_book(PROFILE, root=project, out="_build", log=lambda line: print(line, flush=True))
    finally:
        if old is None:
            os.environ.pop("SEMI3_DATA", None)
        else:
            os.environ["SEMI3_DATA"] = old
    return project, run


def _results(project: Path, name: str) -> dict:
    path = project / RESULTS / f"{name}.json"
    assert path.is_file(), f"{name} wrote no results file {path}"
    return json.loads(path.read_text())


def _assert_finite_metrics(metrics: dict, where: str) -> None:
    assert METRIC_KEYS <= set(metrics), f"{where}: missing {METRIC_KEYS - set(metrics)}"
    for key in METRIC_KEYS:
        assert math.isfinite(metrics[key]) and 0.0 <= metrics[key] <= 1.0, f"{where}: {key}={metrics[key]}"


# ------------------------------------------------------------------------ the smoke book


@pytest.mark.slow
@pytest.mark.data
def test_smoke_book_writes_every_executed_notebook_with_its_parameters(smoke_book):
    project, run = smoke_book
    assert [n.name for n in run.notebooks] == list(book.NOTEBOOKS)
    for name in book.NOTEBOOKS:
        path = project / "_build" / "executed" / f"{name}.ipynb"
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata.kernelspec.name == "python3"
        assert nb.metadata.papermill.parameters["results_dir"] == str(RESULTS)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
        assert not errors, f"{name} has error outputs"
        titles = [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("# ")]
        assert len(titles) == 1, f"{name}: expected one H1 title"
    timings = json.loads((project / "_build" / "book-smoke.json").read_text())
    assert len(timings["notebooks"]) == len(book.NOTEBOOKS)


@pytest.mark.slow
@pytest.mark.data
def test_smoke_book_results_are_finite_and_complete(smoke_book):
    project, _ = smoke_book
    data = _results(project, "01_data")
    assert data["categories"] == 5 and data["photos"] == 125
    assert data["split"]["query"] == 50 and data["split"]["gallery"] == 125
    edges = _results(project, "02_edgemaps")
    assert set(edges["retrieval"]) == {"photos", "canny edgemaps", "xdog edgemaps", "sobel edgemaps"}
    assert all(s > 0 for s in edges["seconds_per_photo"].values())
    model = _results(project, "03_model")
    assert model["total_parameters"] == sum(model["blocks"].values())
    training = _results(project, "04_training")
    _assert_finite_metrics(training["final_query_metrics"], "04 final metrics")
    assert Path(project / training["checkpoint"]).is_file()
    evaluation = _results(project, "05_evaluation")
    for name, metrics in evaluation["metrics"].items():
        _assert_finite_metrics(metrics, f"05 {name}")
    assert evaluation["study"]["available"] is False  # no study results in the temporary project
    assert evaluation["doodles"]["available"] is True and "held out" in evaluation["doodles"]["findings"]
    assert evaluation["tuning"]["available"] is False
    # 5 balanced categories: a random ranking has mAP about 0.2; the ImageNet features beat it.
    baseline = next(m for n, m in evaluation["metrics"].items() if n.startswith("ImageNet"))
    assert baseline["mAP@all"] > evaluation["chance_precision"]
    coatt = _results(project, "06_coattention")
    assert 0 < coatt["trained"]["mean"] < 1 and coatt["channels"] > 0
    embeddings = _results(project, "07_embeddings")
    for stats in embeddings["neighbourhoods"].values():
        assert 0 <= stats["same_category"] <= 1 and 0 <= stats["other_domain"] <= 1
    benchmarks = _results(project, "08_benchmarks")
    assert set(benchmarks["benchmarks"]) == {"eval", "search", "train_step", "train_profile", "edges"}
    assert benchmarks["targets"] and all("met" in row for row in benchmarks["targets"])
    bridge = _results(project, "09_bridge")
    assert bridge["available"] is False  # no bridge records in the temporary project
    assert all(v["edgemap branch"].startswith("not run") for v in bridge["verdicts"].values())
    why = _results(project, "11_why_edgemap")  # the committed decomposition records
    assert why["available"] is True and why["findings"].startswith("Semi3-Net scores mAP@all")
    assert {run["run"] for run in why["runs"]} >= {"semi3net", "no-edgemap-branch"}


@pytest.mark.slow
@pytest.mark.data
def test_smoke_book_saves_every_figure_under_its_stable_name(smoke_book):
    project, _ = smoke_book
    missing = [name for name in EXPECTED_FIGURES if not (project / FIGURES / f"{name}.png").is_file()]
    assert not missing, f"figures not written: {missing}"


@pytest.mark.slow
@pytest.mark.data
def test_nbval_reruns_the_smoke_notebooks_and_checks_marked_outputs(smoke_book, sketchy_mini_root):
    """nbval (--nbval-lax) re-executes the papermill-parameterised smoke notebooks cell by
    cell; cells marked ``# NBVAL_CHECK_OUTPUT`` (counts, parameter tables, shapes) must
    reproduce their outputs exactly."""
    project, _ = smoke_book
    nbval_dir = project  # nbval runs each notebook in its own folder: the project root
    files = []
    for name in book.NOTEBOOKS:
        dest = nbval_dir / f"nbval_{name}.ipynb"
        shutil.copy(project / "_build" / "executed" / f"{name}.ipynb", dest)
        files.append(dest.name)
    env = {**os.environ, "SEMI3_DATA": str(sketchy_mini_root.parent)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-kernel-name", "python3", "-p", "no:cacheprovider",
         "-q", "--nbval-cell-timeout", "600", *files],
        cwd=nbval_dir, env=env, capture_output=True, text=True, timeout=900,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, f"nbval failed:\n{tail}"
    assert " passed" in proc.stdout and "failed" not in proc.stdout.split("\n")[-2], tail


def test_marked_cells_exist_for_output_checks():
    """Deterministic cells whose outputs nbval compares: counts (01), blocks and shapes (03)."""
    import jupytext

    for name, minimum in (("01_data", 2), ("03_model", 3)):
        nb = jupytext.read(REPO / "notebooks" / f"{name}.py")
        marked = [c for c in nb.cells if c.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" in c.source]
        assert len(marked) >= minimum, name


@pytest.mark.parametrize("path", sorted((REPO / "notebooks").glob("*.py")), ids=lambda p: p.stem)
def test_cell_options_are_valid_yaml(path):
    """The ``#|`` lines of a cell are its MyST options, read as YAML; the book's strict build
    stops on a cell whose options do not parse (e.g. a caption with a second ``: ``)."""
    import jupytext
    import yaml

    for cell in jupytext.read(path).cells:
        options = "\n".join(line[3:] for line in cell.source.splitlines() if line.startswith("#| "))
        if options:
            try:
                parsed = yaml.safe_load(options)
            except yaml.YAMLError as err:
                pytest.fail(f"{path.name}: cell options are not YAML ({err}):\n{options}")
            assert isinstance(parsed, dict), f"{path.name}: cell options are not a mapping:\n{options}"
