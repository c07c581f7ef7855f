"""The book's website, built offline and read in a real (headless) browser.

The site is built from a copy of the real ``myst.yml`` and ``book/`` pages in a temporary
folder, with small stand-in executed notebooks written here (no kernel), so the test does not
wait for the real notebooks. The evaluation stand-in carries every kind of content the real one
will: math, a labelled pandas results table, labelled matplotlib figures, an admonition and
cross-references. Every stand-in chapter carries the display maths of the real chapter, and the
kinds of output that have crowded a page: test directives in code, a long printed config, a
plain-text pandas table, a wide training-history table, the study's tables with their hardware
column, and figures and tables the results page embeds from two chapters. Every page is laid
out at a phone's and a laptop's width and measured. Screenshots of the rendered pages are
saved in a temporary folder, or in ``$SEMI3_SCREENSHOTS`` to keep them (the ``screenshots``
fixture, tests/conftest.py).

Chromium (Debian's ``chromium``, installed by ``.ci/install-browser``) is required in CI; on a
machine without it the browser tests are skipped, saying so.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import re
import shutil
import subprocess
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from semi3lib.config import load_config
from semi3lib.study import bridge
from semi3lib.study.records import TABLE_METRICS, load_study, study_statistics
from semi3lib.study.tables import (TUNING_GROUPS, against_reference, history_table, outcomes_table, reader_table,
                                   results_table, runs_reader_table, study_table)
from semi3lib.book.site import SiteBuildError, build_site, check_site, ensure_template_installed, find_myst, read_config, toc_files

REPO = Path(__file__).resolve().parents[1]
from browser import IN_CI, require_chromium

NOTEBOOK_TITLES = {
    "01_data": "The data: Sketchy and its splits",
    "02_edgemaps": "Edgemaps: from photos to sketch-like drawings",
    "03_model": "The model: three branches, what they share",
    "04_training": "Training Semi3-Net",
    "05_evaluation": "Evaluation: retrieval results",
    "06_coattention": "What the co-attention does",
    "07_embeddings": "The joint embedding space",
    "08_benchmarks": "Performance: how fast the pieces run",
    "09_bridge": "Where the bridge should help",
    "10_fine_grained": "Find this photo",
    "11_why_edgemap": "The edgemap branch, taken apart",
}
MARKDOWN_PAGES = {"/": "Introduction", "/reproduce/": "Reproduce", "/interactive/": "Interactive",
                  "/architecture/": "Architecture",
                  "/results/": "Results", "/paper-vs-book/": "Paper vs. this book"}
RESULTS_ROWS = ["imagenet-features", "two-branch-ce", "no-coattention", "two-branch-ce-label-smoothing"]
WIDTHS = (1400, 390)  # a laptop and a phone


# ---- the stand-in book ------------------------------------------------------------------------
def _png(figure) -> str:
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures() -> tuple[str, str]:
    """A precision-recall plot and a retrieval grid, as PNG (base64)."""
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
    pr = _png(fig)
    plt.close(fig)

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
    grid = _png(fig)
    plt.close(fig)
    return pr, grid


def _metadata(name: str) -> dict:
    """Notebook metadata in the shape papermill leaves it."""
    return {
        "kernelspec": {"display_name": "Python 3 (semi3)", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": "3.11"},
        "papermill": {"input_path": f"notebooks/{name}.ipynb", "output_path": f"_build/executed/{name}.ipynb",
                      "parameters": {"profile": "smoke"}},
    }


def chapter_maths(name: str) -> str:
    """The display maths of the real chapter ``notebooks/<name>.py``, as Markdown (labels
    renamed so they cannot clash with the stand-in's own)."""
    notebook = jupytext.read(REPO / "notebooks" / f"{name}.py")
    text = "\n\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    blocks = [f"$${m.strip()}$$" for m in re.findall(r"\$\$(.+?)\$\$", text, re.S)]
    blocks += [f"```{{math}}\n{m.strip()}\n```" for m in re.findall(r"```\{math\}\n(.*?)```", text, re.S)]
    blocks = [re.sub(r":label: (\S+)", r":label: \1-real", b) for b in blocks]
    return "\n\n".join(blocks)


def _maths_cell(name: str) -> list:
    maths = chapter_maths(name)
    return [new_markdown_cell(f"## The chapter's maths\n\n{maths}")] if maths else []


def _directive_cell(count: int) -> nbformat.NotebookNode:
    """A cell as the real chapters 1 and 3 have them: nbval's directive first, then the code."""
    return new_code_cell('# NBVAL_CHECK_OUTPUT\nprint("ready")', execution_count=count,
                         outputs=[new_output("stream", name="stdout", text="ready\n")])


def _figure_cell(label: str, caption: str, png: str, count: int) -> nbformat.NotebookNode:
    return new_code_cell(f"#| label: {label}\n#| fig-cap: {caption}\nplot()", execution_count=count,
                         metadata={"tags": ["hide-input"]},
                         outputs=[new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})])


def _table_cell(label: str, caption: str, table, count: int) -> nbformat.NotebookNode:
    return new_code_cell(f"#| label: {label}\n#| tbl-cap: {caption}\ntable", execution_count=count,
                         metadata={"tags": ["hide-input"]},
                         outputs=[new_output("execute_result", execution_count=count,
                                             data={"text/html": table._repr_html_(), "text/plain": repr(table)})])


def data_notebook() -> nbformat.NotebookNode:
    """Chapter 1's printed counts (plain integers, as the real cell prints them)."""
    nb = plain_notebook("01_data")
    nb.cells.append(new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(counts)", execution_count=2, outputs=[
        new_output("stream", name="stdout", text="categories: 125\nphotos:     3125\nsketches total: 4375\n")]))
    return nb


def model_notebook() -> nbformat.NotebookNode:
    """Chapter 3's tables, printed as plain text by pandas (``to_string``), as the real cells do."""
    import pandas as pd

    blocks = pd.DataFrame({"n_params": [1_018_512, 1_018_512, 2_403_940, 16_512], "branches": [
        "photo", "sketch, edge", "sketch, photo, edge", "photo, edge"], "share": ["22.3%", "22.3%", "52.7%", "0.4%"]},
        index=pd.Index(["photo", "sketch_edge", "top", "coattention"], name="block"))
    trace = pd.DataFrame({"call": [1, 2, 3, 4], "block": ["bottom.photo", "bottom.sketch_edge", "coattention", "top"],
                          "input": ["(2, 3, 128, 128)", "(4, 3, 128, 128)", "(2, 40, 16, 16) + (2, 40, 16, 16)",
                                    "(6, 40, 16, 16)"],
                          "output": ["(2, 40, 16, 16)", "(4, 40, 16, 16)", "(2, 40, 16, 16) x2, (2, 40)",
                                     "(6, 1280, 4, 4)"]})
    nb = plain_notebook("03_model")
    nb.cells.append(new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(blocks.to_string())", execution_count=2, outputs=[
        new_output("stream", name="stdout", text=f"{blocks.to_string()}\ntotal parameters: 4,457,476\n")]))
    nb.cells.append(new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(trace.to_string(index=False))", execution_count=3,
                                  outputs=[new_output("stream", name="stdout", text=trace.to_string(index=False) + "\n")]))
    return nb


CONFIG_PRINT_MARK = "device: cpu"


def training_notebook() -> nbformat.NotebookNode:
    """Chapter 4: the resolved config printed in full, an untagged code cell, the epoch table of
    the book's run (its record) with every loss term."""
    cfg = load_config(REPO / "configs" / "sketchy-mini-cpu.yaml")
    printed = f"{CONFIG_PRINT_MARK}\n{yaml.safe_dump(cfg.to_dict(), sort_keys=False)}"
    record = json.loads((REPO / "results" / "book" / "cpu" / "04_training.json").read_text())
    history = reader_table(history_table(record["history"]), formats={"lr": "{:.1e}", "wall_seconds": "{:,.0f}"})
    nb = plain_notebook("04_training")
    nb.cells += [
        new_code_cell("cfg = load_config(config)\nprint(yaml.safe_dump(cfg.to_dict()))", execution_count=2,
                      metadata={"tags": ["hide-input"]}, outputs=[new_output("stream", name="stdout", text=printed)]),
        new_code_cell("result = train(cfg, resume=resume)  # UNTAGGED-CELL", execution_count=3,
                      outputs=[new_output("stream", name="stdout", text="7 epoch(s) in 4968 s\n")]),
        _table_cell("tbl-history", "Loss terms and query metrics per epoch.", history, 4),
    ]
    return nb


def bridge_notebook() -> nbformat.NotebookNode:
    """Chapter 9's figure and verdict table, which the results page embeds beside chapter 5's."""
    runs = bridge.load_settings(root=REPO)
    _, grid_png = _figures()
    nb = plain_notebook("09_bridge")
    nb.cells += [
        _figure_cell("fig-bridge", "The three networks in each setting.", grid_png, 2),
        _table_cell("tbl-bridge-verdicts", "The rule applied per setting.",
                    bridge.verdicts_table(bridge.bridge_verdicts(runs), digits=3), 3),
    ]
    return nb


def evaluation_notebook() -> nbformat.NotebookNode:
    """The evaluation chapter's kinds of content, its results table built as the real one is
    (``results_table`` over the study's records), its cells tagged as the real ones."""
    import pandas as pd

    runs, note = load_study(REPO / "results" / "sketchy-mini")
    assert runs is not None, note
    ours = pd.DataFrame([[0.577, 0.584, 0.604, 0.536, 0.199, 0.110]], columns=list(TABLE_METRICS),
                        index=pd.Index(["Semi3-Net (this book's run)"], name="model"))
    table = results_table(ours, runs)
    pr_png, grid_png = _figures()
    cells = [
        new_markdown_cell(
            f"# {NOTEBOOK_TITLES['05_evaluation']}\n\n"
            "Each query sketch ranks the whole gallery; a photo is relevant when it shows the sketch's "
            "category. The mean average precision over the $Q$ queries,\n\n"
            "```{math}\n:label: eq-map\n\\mathrm{mAP}=\\frac{1}{Q}\\sum_{q=1}^{Q} \\mathrm{AP}_q ,\n```\n\n"
            "is reported for every model in [](#tbl-results), with precision-recall curves in "
            "[](#fig-pr-curves) and example rankings in [](#fig-retrieval-grid)."
        ),
        new_code_cell('profile = "cpu"', metadata={"tags": ["parameters", "hide-input"]}, execution_count=1),
        new_code_cell('# Parameters\nprofile = "smoke"\n', metadata={"tags": ["injected-parameters", "hide-input"]},
                      execution_count=2),
        new_code_cell(PLUMBING_SOURCE, metadata={"tags": ["hide-input"]}, execution_count=3,
                      outputs=[new_output("stream", name="stdout", text="checkpoint runs/x/last.pt: 1250 queries\n")]),
        new_code_cell(METHOD_SOURCE, execution_count=4, metadata={"tags": ["show-input"]},
                      outputs=[new_output("stream", name="stdout", text="mAP@all 0.577\n")]),
        new_code_cell(
            "#| label: tbl-results\n#| tbl-cap: Retrieval on the query split.\nresults = results_table(book_table, runs)\nresults",
            metadata={"tags": ["hide-input"]}, execution_count=5,
            outputs=[new_output("execute_result", execution_count=5,
                                data={"text/html": table._repr_html_(), "text/plain": repr(table)})],
        ),
        new_code_cell('print("HIDDEN-CELL")', metadata={"tags": ["hide-cell"]}, execution_count=9,
                      outputs=[new_output("stream", name="stdout", text="HIDDEN-CELL output\n")]),
        new_code_cell('results_path = book.write_results(results_dir, "05_evaluation", {})\nprint("REMOVED-CELL")',
                      metadata={"tags": ["remove-cell"]}, execution_count=6,
                      outputs=[new_output("stream", name="stdout", text="REMOVED-CELL wrote results\n")]),
        new_markdown_cell(
            ":::{note} The paper's numbers\nThe paper reports mAP 0.916 on the full Sketchy; these runs "
            "use sketchy-mini, so compare the rows with each other. The metric is [](#eq-map).\n:::"
        ),
        new_code_cell(
            "#| label: fig-pr-curves\n#| fig-cap: Precision-recall curves on the query split.\n"
            "plot_pr_curves(curves)",
            execution_count=7,
            outputs=[
                new_output("stream", name="stdout", text="evaluated 1250 queries against 3125 photos\n"),
                new_output("display_data", data={"image/png": pr_png, "text/plain": "<Figure size 550x360>"}),
            ],
        ),
        new_code_cell(
            "#| label: fig-retrieval-grid\n#| fig-cap: Top-5 photos for two query sketches; green frames "
            "are correct, red ones wrong.\nplot_retrieval_grid(ranking)",
            execution_count=8,
            outputs=[new_output("display_data", data={"image/png": grid_png, "text/plain": "<Figure size 800x300>"})],
        ),
        new_markdown_cell("## Summary\n\nSemi3-Net ranks above both baselines on every metric."),
    ]
    # The study's other items, which the results page embeds: each run with its hardware, the
    # tuning search and its rule.
    tuning, _ = load_study(REPO / "results" / "tuning", split="val")
    cells += [
        _figure_cell("fig-study", "mAP@all of every row of the study.", pr_png, 10),
        _table_cell("tbl-study-runs", "Each run of the study, its training minutes, mAP@all and hardware.",
                    runs_reader_table(runs), 11),
        _table_cell("tbl-tuning", "The tuning search on the validation sketches.",
                    study_table(tuning, groups=TUNING_GROUPS, reference="backbone-lr-1.0"), 12),
        _figure_cell("fig-tuning", "The tuning search on the validation sketches.", grid_png, 13),
        _table_cell("tbl-tuning-rule", "The rule on the validation sketches.",
                    reader_table(outcomes_table(against_reference(tuning, "backbone-lr-1.0"), "backbone-lr-1.0"),
                                 integers=("seeds",)), 14),
    ]
    cells[6:6] = _maths_cell("05_evaluation")
    return new_notebook(cells=cells, metadata=_metadata("05_evaluation"))


PLUMBING_SOURCE = ("from semi3lib.study.reporting import (PAPER_REPORTED, TABLE_METRICS, TUNING_GROUPS, load_study, "
                   "margin_over, paper_reported_table, reader_table, results_table, runs_reader_table, spread_queries, "
                   "study_table)  # PLUMBING-CELL, a long line that must wrap")
METHOD_SOURCE = "metrics = retrieval_metrics(query, query_labels, gallery, gallery_labels)  # METHOD-CELL"


def plain_notebook(name: str) -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(f"# {NOTEBOOK_TITLES[name]}\n\nA stand-in page for `{name}`."),
        *_maths_cell(name),
        _directive_cell(1),
    ]
    return new_notebook(cells=cells, metadata=_metadata(name))


STANDINS = {"01_data": data_notebook, "03_model": model_notebook, "04_training": training_notebook,
            "05_evaluation": evaluation_notebook, "09_bridge": bridge_notebook}


def write_standin_project(dest: Path, install: bool = True) -> Path:
    """``dest`` becomes a copy of the book project whose executed notebooks are stand-ins.

    With ``install``, the template's packages are installed in the repository if missing and
    linked into the copy.
    """
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "myst.yml", dest / "myst.yml")
    shutil.copytree(REPO / "book", dest / "book", ignore=shutil.ignore_patterns("node_modules"))
    for records in ("results", "configs"):  # what the generated pages are computed from (book.generated)
        shutil.copytree(REPO / records, dest / records)
    if install:
        template = REPO / "book" / "site-template"
        ensure_template_installed(template)
        (dest / "book" / "site-template" / "node_modules").symlink_to(template / "node_modules")
    executed = dest / "_build" / "executed"
    executed.mkdir(parents=True)
    for name in NOTEBOOK_TITLES:
        nb = STANDINS.get(name, functools.partial(plain_notebook, name))()
        nbformat.write(nb, executed / f"{name}.ipynb")
    return dest


def _require_tools() -> None:
    """mystmd and npm must exist; in CI their absence is a failure, elsewhere a skip."""
    try:
        find_myst()
        if shutil.which("npm") is None:
            raise SiteBuildError("npm is not on PATH")
    except SiteBuildError as err:
        if IN_CI:
            pytest.fail(f"the book cannot be built in CI: {err}")
        pytest.skip(f"the book's build tools are missing: {err}")


@pytest.fixture(scope="module")
def standin_project(tmp_path_factory) -> Path:
    _require_tools()
    return write_standin_project(tmp_path_factory.mktemp("book"))


@pytest.fixture(scope="module")
def site(standin_project) -> Path:
    return build_site(standin_project, strict=True)


# ---- the build ---------------------------------------------------------------------------------
def test_myst_yml_lists_the_notebooks_in_order_between_intro_and_results():
    files = toc_files(read_config(REPO))
    assert files[:4] == ["book/intro.md", "book/reproduce.md", "book/interactive.md", "book/architecture.md"]
    assert files[4:-2] == [f"_build/executed/{name}.ipynb" for name in NOTEBOOK_TITLES]
    assert files[-2:] == ["book/results.md", "book/paper-vs-book.md"]


def test_build_names_every_missing_notebook_before_running_myst(tmp_path):
    project = write_standin_project(tmp_path / "book", install=False)
    for name in ("03_model", "06_coattention"):
        (project / "_build" / "executed" / f"{name}.ipynb").unlink()
    with pytest.raises(SiteBuildError) as err:
        build_site(project, strict=True)
    assert "_build/executed/03_model.ipynb" in str(err.value)
    assert "_build/executed/06_coattention.ipynb" in str(err.value)
    assert not (project / "_build" / "html").exists()


@pytest.mark.slow
def test_strict_build_fails_on_a_broken_cross_reference(standin_project, tmp_path):
    _require_tools()
    project = tmp_path / "book"
    shutil.copytree(standin_project, project, symlinks=True, ignore=shutil.ignore_patterns("html", "site", "cache"))
    with (project / "book" / "results.md").open("a") as fh:
        fh.write("\nSee [](#fig-that-does-not-exist).\n")
    with pytest.raises(SiteBuildError, match="fig-that-does-not-exist"):
        build_site(project, strict=True)


@pytest.mark.slow
def test_built_site_has_every_page_and_figure(site):
    assert check_site(site.parents[1]) == []
    for slug in ["reproduce", "interactive", "architecture", "data", "edgemaps", "model", "training", "evaluation", "coattention",
                 "embeddings", "bridge", "results", "paper-vs-book"]:
        assert (site / slug / "index.html").is_file(), slug
    assert len(list((site / "build").glob("*.png"))) == 2  # the stand-ins reuse two figures
    assert (site / "_static" / "katex" / "katex.min.css").is_file()


@pytest.mark.slow
def test_check_site_names_a_deleted_figure(site, tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(site.parents[1], copy, symlinks=True)
    figure = next((copy / "_build" / "html" / "build").glob("*.png"))
    figure.unlink()
    missing = check_site(copy)
    assert any(figure.name in m for m in missing), missing


# ---- the browser -------------------------------------------------------------------------------
PROBE = """<!DOCTYPE html><html><body><iframe id="page" src="{src}" style="width:1280px;height:4000px"></iframe>
<script>
document.getElementById('page').addEventListener('load', () => {{
  const doc = document.getElementById('page').contentDocument;
  const images = [...doc.images].map((img) => ({{src: img.getAttribute('src'), complete: img.complete,
    naturalWidth: img.naturalWidth}}));
  const katex = doc.querySelectorAll('.katex').length;
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify({{images, katex, title: doc.title}});
  document.body.appendChild(pre);
}});
</script></body></html>"""


# Loads each page in turn in a frame as wide as a screen and reports how it lays out: whether
# the page scrolls sideways; every element wider than the screen (an element inside an explicit
# scroll container, or inside a box that clips it such as KaTeX's hidden MathML, counts as that
# container); every .math element whose content overflows its box or whose formula runs under
# its equation number; the figure and table numbers of its captions; whether the table of
# contents is shown, and behind which button; and what each collapse toggle does when clicked.
LAYOUT_PROBE = """<!DOCTYPE html><html><body style="margin:0"><script>
const pages = {pages}, width = {width}, report = [];
const scroller = (win, el) => {{
  for (let e = el.parentElement; e && e.tagName !== 'BODY'; e = e.parentElement) {{
    if (win.getComputedStyle(e).overflowX !== 'visible') return e;
  }}
  return null;
}};
const rect = (el) => el.getBoundingClientRect();
const overlaps = (a, b) => a.right > b.left + 1 && a.left < b.right - 1 && a.bottom > b.top + 1 && a.top < b.bottom - 1;
function mathProblems(doc) {{
  const problems = [];
  for (const el of doc.querySelectorAll('.math, .math-body')) {{
    if (el.scrollWidth > el.clientWidth + 1) problems.push(`${{el.className}} #${{el.id}}: ${{el.scrollWidth}} px in ${{el.clientWidth}}`);
    const box = rect(el);
    for (const part of el.querySelectorAll('.katex-html, .base')) {{
      const r = rect(part);
      if (r.left < box.left - 1 || r.right > box.right + 1) {{
        problems.push(`${{el.className}} #${{el.id}}: formula ${{Math.round(r.left)}}..${{Math.round(r.right)}} outside ${{Math.round(box.left)}}..${{Math.round(box.right)}}`);
        break;
      }}
    }}
  }}
  for (const number of doc.querySelectorAll('.equation-number')) {{
    const n = rect(number);
    if ([...number.parentElement.querySelectorAll('.base')].some((b) => overlaps(rect(b), n))) problems.push(`equation number ${{number.textContent}} over its formula`);
  }}
  return problems;
}}
const height = (el) => (el ? el.getBoundingClientRect().height : -1);
// A closed <details> keeps its content laid out but hidden (content-visibility), so ask.
const shown = (el) => (el ? (el.checkVisibility ? el.checkVisibility() : el.getClientRects().length > 0) : null);
async function check(src) {{
  const frame = document.createElement('iframe');
  frame.style.cssText = `width:${{width}}px;height:2400px;border:0;display:block`;
  document.body.appendChild(frame);
  await new Promise((done) => {{ frame.onload = done; frame.src = src; }});
  const doc = frame.contentDocument, win = frame.contentWindow, vw = doc.documentElement.clientWidth;
  const wide = [];
  for (const el of doc.body.querySelectorAll('*')) {{
    const own = rect(el);
    if ((own.width === 0 && own.height === 0) || (own.left >= -1 && own.right <= vw + 1)) continue;
    const box = scroller(win, el), r = box ? rect(box) : own;
    if (r.width === 0) continue;  // inside a closed toggle
    if (r.left < -1 || r.right > vw + 1) wide.push(`${{el.tagName}}.${{el.className}} ${{Math.round(r.left)}}..${{Math.round(r.right)}}`);
  }}
  const numbers = [...doc.querySelectorAll('.caption-number')].map((c) => c.textContent.replace(/\\s+/g, ' ').replace(/:\\s*$/, '').trim());
  const sidebar = doc.querySelector('.sidebar'), menu = doc.querySelector('.menu-button');
  const title = doc.querySelector('.page-title');
  const nav = {{sidebar: shown(sidebar), menu: shown(menu), titleTop: title ? Math.round(rect(title).top) : null}};
  if (nav.menu) {{ menu.click(); nav.sidebarAfterMenu = shown(sidebar); nav.sidebarRight = Math.round(rect(sidebar).right); menu.click(); }}
  const toggles = [];
  for (const d of doc.querySelectorAll('details.hidden-input, details.hidden-output, details.hidden-cell')) {{
    const summary = d.querySelector(':scope > summary'), body = d.querySelector(':scope > :not(summary)');
    const closed = {{open: d.open, shown: shown(body), summary: height(summary), label: summary.textContent}};
    summary.click();
    const opened = {{open: d.open, shown: shown(body), body: height(body),
                     overflows: body ? body.scrollWidth > body.clientWidth + 1 : null}};
    summary.click();
    toggles.push({{closed, opened}});
  }}
  report.push({{src, vw, scrollWidth: doc.documentElement.scrollWidth, wide, toggles, maths: mathProblems(doc), numbers, nav}});
  frame.remove();
}}
(async () => {{
  for (const src of pages) await check(src);
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(report);
  document.body.appendChild(pre);
}})();
</script></body></html>"""


class _Handler(SimpleHTTPRequestHandler):
    """Serves the site, plus /__probe__?src=PAGE: a page that loads PAGE and reports on it, and
    /__layout__?width=W&pages=P1,P2: :data:`LAYOUT_PROBE` for those pages at that width."""

    def _send_html(self, text: str) -> None:
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path.startswith("/__layout__?"):
            from urllib.parse import parse_qs, urlsplit

            query = parse_qs(urlsplit(self.path).query)
            return self._send_html(LAYOUT_PROBE.format(pages=json.dumps(query["pages"][0].split(",")),
                                                       width=int(query["width"][0])))
        if self.path.startswith("/__probe__?src="):
            return self._send_html(PROBE.format(src=html.escape(self.path.split("=", 1)[1])))
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def chromium():
    return require_chromium()


def run_chromium(chromium: str, url: str, *args: str, budget_ms: int = 5000) -> str:
    profile = tempfile.mkdtemp(prefix="semi3-chromium-")
    try:
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args, url],
            capture_output=True, text=True, timeout=120, check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert result.returncode == 0, f"chromium failed on {url}: {result.stderr[-2000:]}"
    return result.stdout


@functools.lru_cache(maxsize=None)
def dom(chromium: str, url: str) -> str:
    """The page's DOM after its scripts ran and its resources loaded (cached per URL)."""
    return run_chromium(chromium, url, "--dump-dom")


def probe(chromium: str, served: str, path: str) -> dict:
    page = dom(chromium, f"{served}/__probe__?src={path}")
    match = re.search(r'<pre id="probe">(.*?)</pre>', page, re.S)
    assert match, f"the probe page did not report on {path}"
    return json.loads(html.unescape(match.group(1)))


def visible_text(page: str) -> str:
    """The page's text as a reader sees it: no markup, no KaTeX's MathML copy of the source."""
    page = re.sub(r'<span class="katex-mathml">.*?</math></span>', " ", page, flags=re.S)
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", page)).replace("\xa0", " ")
    return re.sub(r"\s+", " ", text)


def navigation_titles(page: str) -> list[str]:
    nav = re.search(r'<nav class="sidebar".*?</nav>', page, re.S)
    assert nav, "the page has no navigation sidebar"
    return [html.unescape(t) for t in re.findall(r'<span class="toc-title">(.*?)</span>', nav.group(0))]


@pytest.mark.parametrize("path", ["/", "/evaluation/", "/results/"])
def test_navigation_lists_every_chapter(chromium, served, path):
    titles = navigation_titles(dom(chromium, served + path))
    expected = ["Introduction", "Reproduce", "Interactive", "Architecture", *NOTEBOOK_TITLES.values(), "Results",
                "Paper vs. this book"]
    assert titles == expected


@pytest.mark.parametrize("path", ["/", "/evaluation/"])
def test_math_is_rendered_by_katex_not_left_as_tex(chromium, served, path):
    page = dom(chromium, served + path)
    assert page.count('class="katex"') >= 2
    text = visible_text(page)
    for raw in (r"\frac", r"\sum", r"\mathrm", r"\mathcal", "$$"):
        assert raw not in text, f"raw TeX {raw!r} is visible on {path}"
    assert probe(chromium, served, path)["katex"] >= 2


@pytest.mark.parametrize("path", ["/evaluation/", "/results/"])
def test_results_table_and_figures_are_shown(chromium, served, path):
    page = dom(chromium, served + path)
    table = re.search(r'<table[^>]*class="dataframe reader-table( stack)?".*?</table>', page, re.S)
    assert table, f"no results table on {path}"
    table = table.group(0)
    positions = [table.index(f">{row}<") for row in RESULTS_ROWS]
    assert positions == sorted(positions), "the rows are grouped by meaning: baselines, ablations, tuned"
    groups = re.findall(r'<tr class="group-row"><th[^>]*>(.*?)</th>', table)
    assert groups[:2] == ["Floor and baselines", "The method"] and len(groups) == 5
    assert re.search(r'<tr class="reference-row"><th scope="row" class="row-label">semi3net <span class="ref-mark">', table)
    runs, _ = load_study(REPO / "results" / "sketchy-mini")
    best = study_statistics(runs)["mAP@all mean"].max()
    assert re.search(rf'<td class="best"[^>]*><strong>{best:.3f}', table)  # the best mAP@all of the records, in bold
    assert ">3<" in table and "3.0" not in table  # seeds are counts
    assert "mAP@all" in table
    text = visible_text(page)
    assert "Table 1:" in text and "Figure 1:" in text and "Figure 2:" in text
    assert "Precision-recall curves on the query split." in text
    report = probe(chromium, served, path)
    figures = [img for img in report["images"] if img["src"].startswith("/build/")]
    assert len(figures) >= 2, report
    for img in figures:
        assert img["complete"] and img["naturalWidth"] > 0, f"figure {img['src']} did not load on {path}"


def test_cross_references_link_to_their_targets(chromium, served):
    page = dom(chromium, served + "/evaluation/")
    for target, text in [("tbl-results", "Table"), ("fig-pr-curves", "Figure"), ("eq-map", "(1)")]:
        assert re.search(rf'<a class="xref" href="#{target}">[^<]*{re.escape(text)}', page), target
        assert f'id="{target}"' in page


ALL_PAGES = ["/", "/reproduce/", "/interactive/", "/architecture/", *(f"/{slug}/" for slug in ("data", "edgemaps", "model", "training", "evaluation",
                                                            "coattention", "embeddings", "benchmarks",
                                                            "bridge")),
             "/results/", "/paper-vs-book/"]


@functools.lru_cache(maxsize=None)
def layout(chromium: str, served: str, width: int) -> list[dict]:
    """:data:`LAYOUT_PROBE`'s report on every page at ``width`` (one browser run per width)."""
    page = run_chromium(chromium, f"{served}/__layout__?width={width}&pages={','.join(ALL_PAGES)}", "--dump-dom",
                        f"--window-size={width + 40},900", budget_ms=30000)
    match = re.search(r'<pre id="probe">(.*?)</pre>', page, re.S)
    assert match, f"the layout probe did not report at {width} px"
    report = json.loads(html.unescape(match.group(1)))
    assert [r["src"] for r in report] == ALL_PAGES
    return report


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_scrolls_sideways_and_nothing_is_wider_than_the_screen(chromium, served, width):
    for page in layout(chromium, served, width):
        assert page["vw"] == width, page
        assert page["scrollWidth"] <= page["vw"], f"{page['src']} scrolls sideways at {width} px"
        assert page["wide"] == [], f"{page['src']} at {width} px: wider than the screen: {page['wide']}"


@pytest.mark.parametrize("width", WIDTHS)
def test_display_maths_fits_its_box_and_its_number_never_covers_it(chromium, served, width):
    pages = layout(chromium, served, width)
    by_src = {page["src"]: page for page in pages}
    for page in pages:
        assert page["maths"] == [], f"{page['src']} at {width} px: {page['maths']}"
    # The chapters carry their real display maths: chapter 4's loss is the widest.
    training = dom(chromium, served + "/training/")
    assert "max" in visible_text(training) and 'class="math math-display numbered"' in training
    assert by_src["/training/"]["maths"] == []


@pytest.mark.parametrize("width", WIDTHS)
def test_figure_and_table_numbers_are_unique_on_every_page(chromium, served, width):
    for page in layout(chromium, served, width):
        numbers = page["numbers"]
        assert len(numbers) == len(set(numbers)), f"{page['src']} repeats a number: {numbers}"
    results = next(p for p in layout(chromium, served, width) if p["src"] == "/results/")
    # Chapters 5 and 9 each number their items from 1; embedded side by side they are renumbered.
    assert {"Figure 1", "Figure 4", "Table 1", "Table 5"} <= set(results["numbers"]), results["numbers"]


def test_the_table_of_contents_folds_behind_a_button_on_a_phone(chromium, served):
    for page in layout(chromium, served, 390):
        nav = page["nav"]
        assert nav["sidebar"] is False and nav["menu"] is True, (page["src"], nav)
        assert nav["titleTop"] < 200, f"{page['src']}: the title is pushed down to {nav['titleTop']} px"
        assert nav["sidebarAfterMenu"] is True and nav["sidebarRight"] <= 390, (page["src"], nav)
    for page in layout(chromium, served, 1400):
        assert page["nav"]["sidebar"] is True and page["nav"]["menu"] is False, (page["src"], page["nav"])


def test_the_paper_view_drops_test_directives_folds_code_and_long_prints(chromium, served):
    for path in ("/data/", "/model/", "/training/"):
        assert "NBVAL" not in dom(chromium, served + path), path
    training = dom(chromium, served + "/training/")
    untagged = re.findall(r'<details class="hidden-input">.*?</details>', training, re.S)
    assert any("UNTAGGED-CELL" in d for d in untagged), "a code cell without show-input is folded"
    folded = re.search(r'<details class="hidden-output long-output"><summary>Show the other (\d+) lines</summary>', training)
    assert folded and int(folded.group(1)) > 20, "the printed config is folded after its first lines"
    assert CONFIG_PRINT_MARK in visible_text(training)


def test_printed_tables_counts_and_category_ids_read_as_a_reader_expects(chromium, served):
    model = dom(chromium, served + "/model/")
    tables = re.findall(r'<table class="text-table[^"]*">.*?</table>', model, re.S)
    assert len(tables) == 2, "pandas' printed tables are shown as tables"
    assert "<th>sketch edge</th>" in tables[0] and 'data-label="n params">1,018,512<' in tables[0]
    assert 'data-label="input">(2, 40, 16, 16) + (2, 40, 16, 16)<' in tables[1]  # values with spaces stay whole
    data = visible_text(dom(chromium, served + "/data/"))
    assert "photos: 3,125" in data and "3125" not in data
    results = dom(chromium, served + "/results/")
    assert "issue 7" not in visible_text(results)
    assert re.search(r'<table class="stack"[^>]*><thead><tr><th>run</th>', results), "the book's runs table stacks"
    assert 'data-label="mAP@all"' in results


def test_the_introduction_lists_every_chapter(chromium, served):
    text = visible_text(dom(chromium, served + "/"))
    for title in [*NOTEBOOK_TITLES.values(), "Architecture"]:
        assert title in text, title


@pytest.mark.parametrize("width", WIDTHS)
def test_collapsed_code_opens_and_closes_with_its_toggle(chromium, served, width):
    evaluation = next(p for p in layout(chromium, served, width) if p["src"] == "/evaluation/")
    toggles = evaluation["toggles"]
    assert len(toggles) >= 5, toggles  # parameters, injected parameters, imports, the table's code, a hidden cell
    for toggle in toggles:
        assert toggle["closed"]["open"] is False and toggle["closed"]["shown"] is False, toggle
        assert toggle["closed"]["summary"] > 0 and toggle["closed"]["label"].strip(), "the toggle is visible"
        assert toggle["opened"]["open"] is True and toggle["opened"]["shown"] is True, toggle
        assert toggle["opened"]["body"] > 0, toggle
        assert toggle["opened"]["overflows"] is False, "long code lines wrap instead of scrolling"


def test_plumbing_is_collapsed_removed_cells_are_gone_and_the_method_shows(chromium, served):
    """Code is folded unless its cell is tagged show-input, as the method cell here is."""
    page = dom(chromium, served + "/evaluation/")
    assert "REMOVED-CELL" not in page
    collapsed = re.findall(r'<details class="hidden-input">.*?</details>', page, re.S)
    assert any("PLUMBING-CELL" in d for d in collapsed) and any("tbl-results" in d or "results_table" in d for d in collapsed)
    assert not any("METHOD-CELL" in d for d in collapsed) and "METHOD-CELL" in page
    hidden = re.findall(r'<details class="hidden-cell">.*?</details>', page, re.S)
    assert len(hidden) == 1 and "HIDDEN-CELL output" in hidden[0]  # a hide-cell cell: code and output
    assert "checkpoint runs/x/last.pt" in visible_text(page)  # a collapsed cell's output still shows
    summaries = re.findall(r"<summary>(.*?)</summary>", page)
    assert {"Show the default parameters", "Show the parameters this page was run with", "Show code"} <= set(summaries)


def test_paper_vs_book_page_has_a_verdict_for_every_claim(chromium, served):
    text = visible_text(dom(chromium, served + "/paper-vs-book/"))
    assert "full text was not available" in text
    for verdict in ("supported", "not supported here", "untested here"):
        assert verdict in text
    assert "Sketchy: mAP@all 0.916, P@200 0.930" in text and "semi3net 0.582" in text


def test_results_page_states_the_bridge_comparison_per_setting_from_the_records(chromium, served):
    text = visible_text(dom(chromium, served + "/results/")).replace("\u2019", "'")  # the site curls apostrophes
    section = text[text.index("Per setting, from the records"):]
    runs = bridge.load_settings(root=REPO)
    in_short = "In short: " + bridge.in_short(runs).replace("*", "")  # the sentences as the page shows them
    assert in_short[:60] in section and in_short[-40:] in section, in_short
    per_setting = [line for line in bridge.findings(runs).splitlines() if line.startswith("- ")]
    for setting, line in zip(bridge.SETTINGS, per_setting, strict=True):
        assert setting.name in section
        plain = line[2:].replace("**", "").replace("`", "")
        assert plain[:60] in section and plain[-40:] in section, plain


def test_screenshots_of_the_results_page_at_both_widths(chromium, served, screenshots):
    for width in WIDTHS:
        shot = screenshots / f"results-{width}.png"
        shot.unlink(missing_ok=True)
        run_chromium(chromium, served + "/results/", f"--screenshot={shot}", f"--window-size={width},3000")
        assert shot.is_file() and shot.stat().st_size > 20_000, f"{shot} is missing or blank"


def test_screenshots_of_the_rendered_book(chromium, served, screenshots):
    for name, path, height in [("evaluation", "/evaluation/", 2600), ("results", "/results/", 2000),
                               ("introduction", "/", 1600)]:
        shot = screenshots / f"{name}.png"
        shot.unlink(missing_ok=True)
        run_chromium(chromium, served + path, f"--screenshot={shot}", f"--window-size=1280,{height}")
        assert shot.is_file() and shot.stat().st_size > 20_000, f"{shot} is missing or blank"
