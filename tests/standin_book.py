"""A stand-in for the executed notebooks, so the book's site can be built and checked in a
browser before (and independently of) the real notebooks.

``write_standin_project(dest)`` copies the real ``myst.yml`` and ``book/`` pages into ``dest``
and writes one small executed notebook per notebook in the real table of contents. The
evaluation stand-in carries every kind of content the real one will: math, a labelled pandas
results table, a labelled matplotlib figure, an admonition and cross-references. Outputs
are made in this process (no kernel), in the shapes papermill writes.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

REPO = Path(__file__).resolve().parents[1]

# The labels the results page embeds from the evaluation notebook (a contract with it).
RESULTS_TABLE_LABEL = "tbl-results"
PR_FIGURE_LABEL = "fig-pr-curves"
GRID_FIGURE_LABEL = "fig-retrieval-grid"

NOTEBOOK_TITLES = {
    "01_data": "The data: Sketchy and its splits",
    "02_edgemaps": "Edgemaps: from photos to sketch-like drawings",
    "03_model": "The model: three branches, what they share",
    "04_training": "Training Semi3-Net",
    "05_evaluation": "Evaluation: retrieval results",
    "06_coattention": "What the co-attention does",
    "07_embeddings": "The joint embedding space",
}


def _papermill_metadata(name: str) -> dict:
    return {
        "kernelspec": {"display_name": "Python 3 (semi3)", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": "3.11"},
        "papermill": {
            "input_path": f"notebooks/{name}.ipynb",
            "output_path": f"_build/executed/{name}.ipynb",
            "parameters": {"profile": "smoke"},
        },
    }


def _png(figure) -> str:
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _results_table():
    import pandas as pd

    rows = [
        ("ImageNet baseline", 0.045, 0.081, 0.102, 0.090),
        ("Two-branch, cross-entropy", 0.521, 0.603, 0.640, 0.598),
        ("Semi3-Net", 0.584, 0.655, 0.688, 0.650),
        ("Semi3-Net, no co-attention", 0.561, 0.637, 0.671, 0.633),
    ]
    return pd.DataFrame(rows, columns=["model", "mAP@all", "mAP@200", "P@100", "P@200"]).set_index("model")


def _pr_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    recall = np.linspace(0, 1, 50)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, k in [("ImageNet baseline", 6.0), ("Two-branch", 1.6), ("Semi3-Net", 1.2)]:
        ax.plot(recall, np.exp(-k * recall) * (1 - 0.3 * recall), label=name)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1))
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    png = _png(fig)
    plt.close(fig)
    return png


def _grid_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(2, 6, figsize=(8, 3))
    for i, ax in enumerate(axes.flat):
        ax.imshow(rng.random((16, 16)), cmap="gray")
        ax.set_xticks([])
        ax.set_yticks([])
        if i % 6:
            for spine in ax.spines.values():
                spine.set_color("tab:green" if (i + i // 6) % 3 else "tab:red")
                spine.set_linewidth(3)
    png = _png(fig)
    plt.close(fig)
    return png


def evaluation_notebook() -> nbformat.NotebookNode:
    """The evaluation stand-in: math, a table, figures, an admonition, cross-references."""
    table = _results_table()
    cells = [
        new_markdown_cell(
            f"# {NOTEBOOK_TITLES['05_evaluation']}\n\n"
            "Each query sketch ranks the whole gallery of photos; a photo is relevant when it "
            "shows the sketch's category. The mean average precision over the $Q$ queries,\n\n"
            "```{math}\n:label: eq-map\n"
            "\\mathrm{mAP}=\\frac{1}{Q}\\sum_{q=1}^{Q} \\mathrm{AP}_q ,\n```\n\n"
            "is reported for every model in [](#tbl-results), with precision-recall curves in "
            "[](#fig-pr-curves) and example rankings in [](#fig-retrieval-grid)."
        ),
        new_code_cell("profile = \"cpu\"", metadata={"tags": ["parameters"]}, execution_count=1),
        new_code_cell(
            "# Parameters\nprofile = \"smoke\"\n", metadata={"tags": ["injected-parameters"]}, execution_count=2
        ),
        new_code_cell(
            f"#| label: {RESULTS_TABLE_LABEL}\n#| tbl-cap: Retrieval on the query split (stand-in numbers).\n"
            "results",
            execution_count=3,
            outputs=[
                new_output(
                    "execute_result",
                    data={"text/html": table._repr_html_(), "text/plain": table.to_string()},
                    execution_count=3,
                )
            ],
        ),
        new_markdown_cell(
            ":::{note} The paper's numbers\nThe paper reports mAP 0.916 on the full Sketchy; "
            "these runs use sketchy-mini, so compare rows with each other, not with the paper. "
            "The metric is defined in [](#eq-map).\n:::"
        ),
        new_code_cell(
            f"#| label: {PR_FIGURE_LABEL}\n#| fig-cap: Precision-recall curves on the query split.\n"
            "plot_pr_curves(curves)",
            execution_count=4,
            outputs=[
                new_output("stream", name="stdout", text="evaluated 1250 queries against 3125 photos\n"),
                new_output(
                    "display_data",
                    data={"image/png": _pr_figure(), "text/plain": "<Figure size 550x360 with 1 Axes>"},
                ),
            ],
        ),
        new_code_cell(
            f"#| label: {GRID_FIGURE_LABEL}\n#| fig-cap: Top-5 photos for two query sketches; "
            "green frames are correct, red ones wrong.\n"
            "plot_retrieval_grid(ranking)",
            execution_count=5,
            outputs=[
                new_output(
                    "display_data",
                    data={"image/png": _grid_figure(), "text/plain": "<Figure size 800x300 with 12 Axes>"},
                )
            ],
        ),
        new_markdown_cell("## Summary\n\nSemi3-Net ranks above both baselines on every metric."),
    ]
    return new_notebook(cells=cells, metadata=_papermill_metadata("05_evaluation"))


def plain_notebook(name: str) -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(f"# {NOTEBOOK_TITLES[name]}\n\nA stand-in page for `{name}`."),
        new_code_cell(
            "print(\"ready\")",
            execution_count=1,
            outputs=[new_output("stream", name="stdout", text="ready\n")],
        ),
    ]
    return new_notebook(cells=cells, metadata=_papermill_metadata(name))


def write_standin_project(dest: Path) -> Path:
    """Make ``dest`` a copy of the book project with stand-in executed notebooks; return it.

    The installed node packages are linked, not copied, so no network is needed.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "myst.yml", dest / "myst.yml")
    shutil.copytree(REPO / "book", dest / "book", ignore=shutil.ignore_patterns("node_modules", "public"))
    for sub in ("book", "book/site-template"):
        modules = REPO / sub / "node_modules"
        if modules.is_dir():
            os.symlink(modules, dest / sub / "node_modules", target_is_directory=True)
    executed = dest / "_build" / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    for name in NOTEBOOK_TITLES:
        nb = evaluation_notebook() if name == "05_evaluation" else plain_notebook(name)
        nbformat.write(nb, executed / f"{name}.ipynb")
    return dest
