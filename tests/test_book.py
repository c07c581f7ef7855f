"""The book runner, its notebooks' structure and results files, without executing the real notebooks."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import jupytext
import pytest

from semi3lib.book import runner as book
from semi3lib.cli import main as semi3_main

REPO = Path(__file__).resolve().parents[1]


def test_every_notebook_source_has_a_title_a_literal_parameters_cell_and_the_python3_kernel():
    for name in book.NOTEBOOKS:
        nb = jupytext.read(REPO / "notebooks" / f"{name}.py")
        assert nb.metadata["kernelspec"]["name"] == "python3", name
        titles = [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("# ")]
        assert len(titles) == 1, f"{name}: one H1 title expected"
        assert nb.cells[0] is titles[0], f"{name}: the title comes first"
        params = book.parse_parameters(book.parameters_cell(nb).source)
        assert {"results_dir", "figures_dir"} <= set(params), name
        assert params["results_dir"] == "results/book/cpu" and params["figures_dir"] == "figures", name
        summaries = [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## Summary")]
        assert summaries, f"{name}: a summary section is expected"


@pytest.mark.parametrize("profile", book.PROFILES)
def test_every_profile_sets_only_parameters_the_notebooks_declare(profile, tmp_path):
    values = book.load_profile(profile, REPO)
    common = values["__common__"]
    declared, injected = {}, {}
    for name in book.NOTEBOOKS:
        ipynb = book.to_ipynb(REPO / "notebooks" / f"{name}.py", tmp_path / f"{name}.ipynb")
        declared[name] = book.declared_parameters(ipynb)
        injected[name] = book.notebook_parameters(values, name, declared[name])
        # The common keys the notebook declares, then its own section, which wins.
        assert injected[name] == {**{k: v for k, v in common.items() if k in declared[name]}, **values[name]}, name
    book.check_common_parameters(values, declared)  # raises on a common key no notebook declares
    for key, value in common.items():
        assert any(injected[name].get(key) == value for name in book.NOTEBOOKS), f"common {key!r} reaches no notebook"
    # Each profile writes its own results and figures: a smoke or full run never overwrites the published (cpu) ones.
    effective = [{**declared[name], **injected[name]} for name in book.NOTEBOOKS]
    assert {(p["results_dir"], p["figures_dir"]) for p in effective} == {
        (f"results/book/{profile}", "figures" if profile == "cpu" else f"figures/{profile}")}


def test_checkpoint_consumers_default_to_the_training_notebooks_output():
    run_dir = book.parse_parameters(book.parameters_cell(jupytext.read(REPO / "notebooks/04_training.py")).source)["run_dir"]
    for name in ("05_evaluation", "06_coattention", "07_embeddings"):
        params = book.parse_parameters(book.parameters_cell(jupytext.read(REPO / f"notebooks/{name}.py")).source)
        assert params["checkpoint"] == f"{run_dir}/last.pt", name
    smoke = book.load_profile("smoke", REPO)
    assert smoke["__common__"]["checkpoint"] == f"{smoke['04_training']['run_dir']}/last.pt"


def test_parameters_cell_must_be_plain_literals():
    assert book.parse_parameters('a = 1\nb = ["x=1", None]\nc = {"k": 2.5}') == {"a": 1, "b": ["x=1", None], "c": {"k": 2.5}}
    with pytest.raises(book.BookError, match="not a plain literal"):
        book.parse_parameters("a = open('x')")
    with pytest.raises(book.BookError, match="only `name = literal`"):
        book.parse_parameters("import os")


def test_resolve_notebooks_accepts_numbers_and_names():
    assert book.resolve_notebooks(["05"]) == ["05_evaluation"]
    assert book.resolve_notebooks(["7", "data"]) == ["01_data", "07_embeddings"]
    assert book.resolve_notebooks(None) == list(book.NOTEBOOKS)
    assert book.resolve_notebooks(["10", "11"]) == ["10_fine_grained", "11_why_edgemap"]
    with pytest.raises(book.BookError, match="unknown notebook"):
        book.resolve_notebooks(["12"])


def _project(tmp_path: Path, cell: str, profile: str = "common: {}\nnotebooks: {}\n") -> Path:
    (tmp_path / "notebooks" / "profiles").mkdir(parents=True)
    (tmp_path / "notebooks" / "profiles" / "smoke.yaml").write_text(profile)
    source = textwrap.dedent('''\
        # ---
        # jupyter:
        #   kernelspec:
        #     display_name: Python 3 (semi3)
        #     language: python
        #     name: python3
        # ---

        # %% [markdown]
        # # A title

        # %% tags=["parameters"]
        value = 1

        # %%
        ''') + cell + "\n"
    (tmp_path / "notebooks" / "01_data.py").write_text(source)
    return tmp_path


def test_profile_with_an_undeclared_parameter_is_refused_before_running(tmp_path):
    root = _project(tmp_path, "print(value)", "notebooks:\n  01_data:\n    valeu: 3\n")
    with pytest.raises(book.BookError, match="'valeu' for 01_data"):
        book.run_book("smoke", only=["01"], root=root, log=lambda _: None)


def test_unknown_profile_names_the_profiles_that_exist(tmp_path):
    root = _project(tmp_path, "print(value)")
    with pytest.raises(book.BookError, match="profiles: smoke"):
        book.run_book("gpu", root=root, log=lambda _: None)


@pytest.mark.slow
def test_runner_executes_with_injected_parameters_and_names_the_failing_cell(tmp_path, capfd):
    root = _project(tmp_path, 'print("value is", value)\nassert value == 1, "value must be 1"',
                    "notebooks:\n  01_data:\n    value: 2\n")
    code = semi3_main(["book", "run", "--profile", "smoke", "--only", "01", "--root", str(root)])
    err = capfd.readouterr().err  # file-descriptor level: the kernel process writes there too
    assert code == 1
    assert "without encryption" not in err  # the kernel talks over IPC, so ipykernel has no TCP warning
    assert "notebook 01_data failed in cell" in err and "AssertionError: value must be 1" in err
    assert "assert value == 1" in err  # the failing cell's source
    executed = root / "_build" / "executed" / "01_data.ipynb"
    assert executed.is_file()
    (root / "notebooks" / "profiles" / "smoke.yaml").write_text("notebooks:\n  01_data:\n    value: 1\n")
    assert semi3_main(["book", "run", "--profile", "smoke", "--root", str(root), "--only", "data"]) == 0
    text = executed.read_text()
    assert "value is 1" in text and '"injected-parameters"' in text
    injected = [c for c in json.loads(text)["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected[0]["metadata"]["tags"] == ["injected-parameters", "hide-input"]  # collapsed in the site


def test_write_results_converts_numpy_and_refuses_nan(tmp_path):
    import numpy as np

    path = book.write_results(tmp_path, "x", {"a": np.float32(0.5), "b": np.arange(3), "c": Path("p")})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [0, 1, 2], "c": "p"}
    with pytest.raises(ValueError, match="non-finite"):
        book.write_results(tmp_path, "y", {"m": math.nan})


def test_a_missing_checkpoint_says_which_notebook_makes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="run notebook 04_training first"):
        book.require_checkpoint(tmp_path / "last.pt")
    (tmp_path / "last.pt").write_bytes(b"")
    assert book.require_checkpoint(tmp_path / "last.pt") == tmp_path / "last.pt"


# The cells that are the method stay visible in the site: (notebook, a line of the cell).
METHOD_CELLS = [("03_model", "model.bottom(\"sketch\") is model.bottom(\"edge\")"),
                ("03_model", "trace = trace_forward("), ("04_training", "result = train(cfg"),
                ("05_evaluation", "metrics = {name: retrieval_metrics("),
                ("05_evaluation", "tuning_rule = against_reference("),
                ("06_coattention", "weights, labels = gallery[\"gallery_attention\"]")]


def test_plumbing_cells_are_collapsed_or_removed_and_method_cells_stay_visible():
    for name in book.NOTEBOOKS:
        nb = jupytext.read(REPO / "notebooks" / f"{name}.py")
        code = [c for c in nb.cells if c.cell_type == "code"]
        tags = [set(c.metadata.get("tags", [])) for c in code]
        assert {"parameters", "hide-input"} <= tags[0], f"{name}: the parameters cell is collapsed"
        assert "hide-input" in tags[1], f"{name}: the imports cell is collapsed"
        for cell, cell_tags in zip(code, tags):
            assert cell_tags <= {"parameters", "hide-input", "remove-cell"}, f"{name}: unexpected tags {cell_tags}"
            if "book.write_results(" in cell.source and "remove-cell" not in cell_tags:
                assert "hide-input" in cell_tags, f"{name}: the results-writing cell is plumbing"
    for name, line in METHOD_CELLS:
        nb = jupytext.read(REPO / "notebooks" / f"{name}.py")
        cell = next(c for c in nb.cells if c.cell_type == "code" and line in c.source)
        assert not cell.metadata.get("tags"), f"{name}: the cell with {line!r} is the method and stays visible"
