"""``make lab``: JupyterLab opens the py:percent notebooks as notebooks, and their paths resolve
from the project root although JupyterLab starts kernels in ``notebooks/``; opening and saving
a notebook without an edit leaves ``git status`` clean (``jupytext.toml`` and the server's
contents manager), checked through a real JupyterLab server's contents API and in Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import jupytext
import pytest
from nbformat.v4 import new_output

from semi3lib.interactive import find_project_root, use_project_root
from semi3lib.interactive.lab import (CONTENTS_MANAGER, OVERRIDES, PROJECT_KERNEL, add_kernel_language_info,
                                      install_settings, kernel_language_info, lab_command, settings_file)
from browser import chromium_page, require_chromium

REPO = Path(__file__).resolve().parents[1]


def test_project_root_is_found_from_the_notebooks_folder(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "configs").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert find_project_root() == tmp_path.resolve()
    assert use_project_root() == tmp_path.resolve()
    assert Path.cwd() == tmp_path.resolve()
    assert use_project_root() == tmp_path.resolve()  # a no-op in the root


def test_outside_a_project_the_working_directory_is_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert use_project_root() == tmp_path.resolve()


def test_every_notebook_moves_to_the_project_root_before_using_a_path():
    for path in sorted((REPO / "notebooks").glob("0*.py")):
        cells = path.read_text().split("\n# %%")
        parameters = next(i for i, c in enumerate(cells) if "tags=[" in c.split("\n")[0] and '"parameters"' in c.split("\n")[0])
        assert "use_project_root()" in cells[parameters + 1], f"{path.name}: the cell after the parameters"


def test_settings_override_makes_py_files_open_as_jupytext_notebooks(tmp_path):
    target = settings_file(tmp_path)
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
                                  "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"r": "Editor"}}}))
    install_settings(tmp_path)
    settings = json.loads(target.read_text())
    assert settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"] == {
        "r": "Editor", "python": "Jupytext Notebook"}
    assert settings["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert json.loads(OVERRIDES.read_text())  # shipped in the package


def test_environment_has_the_settings_override():
    installed = settings_file(sys.prefix)
    assert installed.is_file(), "make env installs the JupyterLab settings override"
    viewers = json.loads(installed.read_text())["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["python"] == "Jupytext Notebook"


def test_lab_command_binds_localhost_and_allows_root_only_as_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    command = lab_command(REPO, port=9999, open_browser=False, token="t")
    assert "--ServerApp.ip=127.0.0.1" in command and "--allow-root" in command and "--no-browser" in command
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "--allow-root" not in lab_command(REPO)


NOTEBOOKS = sorted((REPO / "notebooks").glob("0*.py"))


def as_jupyterlab_leaves_it(notebook):
    """The notebook as a JupyterLab session leaves it without an edit: the kernel's
    ``language_info``, run cells (outputs, counts, timing), a collapsed heading, trust."""
    add_kernel_language_info(notebook)
    for n, cell in enumerate(notebook.cells):
        cell.metadata.update({"trusted": True, "execution": {"iopub.status.busy": "2026-01-01T00:00:00Z"}})
        if cell.cell_type == "code":
            cell.execution_count = n + 1
            cell.outputs = [new_output("stream", name="stdout", text="ran\n")]
        elif cell.source.startswith("#"):
            cell.metadata["jp-MarkdownHeadingCollapsed"] = True
    return notebook


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_writing_a_notebook_back_with_the_projects_jupytext_settings_changes_no_byte(path):
    from jupytext.config import load_jupytext_configuration_file

    config = load_jupytext_configuration_file(str(REPO / "jupytext.toml"))
    text = path.read_text()
    notebook = as_jupyterlab_leaves_it(jupytext.reads(text, fmt="py:percent", config=config))
    assert jupytext.writes(notebook, fmt="py:percent", config=config) == text
    # Without the project's settings jupytext writes its version into the header: the test can fail.
    assert jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="py:percent") != text


def test_a_notebook_of_the_project_kernel_is_served_with_the_kernels_language_info():
    info = kernel_language_info()
    assert info["name"] == "python" and info["version"] == sys.version.split()[0]
    notebook = {"metadata": {"kernelspec": {"name": PROJECT_KERNEL}}}
    assert add_kernel_language_info(notebook)["metadata"]["language_info"] == info
    other = {"metadata": {"kernelspec": {"name": "ir"}}}
    assert "language_info" not in add_kernel_language_info(other)["metadata"]
    kept = {"metadata": {"kernelspec": {"name": PROJECT_KERNEL}, "language_info": {"name": "python"}}}
    assert add_kernel_language_info(kept)["metadata"]["language_info"] == {"name": "python"}
    assert f"--ServerApp.contents_manager_class={CONTENTS_MANAGER}" in lab_command(REPO)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyterlab(project: Path, settings: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """`make lab`'s server (``python -m semi3lib.interactive.lab``) on ``project``, started from
    its ``notebooks/`` with its user settings under ``settings``; yields (url, token)."""
    port, token = _free_port(), "semi3-test"
    env = {**os.environ, **(env or {}),
           "JUPYTER_CONFIG_DIR": str(settings / "jupyter-config"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings / "lab-user-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(settings / "lab-workspaces")}
    server = subprocess.Popen(
        [sys.executable, "-m", "semi3lib.interactive.lab", "--no-browser", "--port", str(port), "--token", token],
        cwd=project / "notebooks", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    pytest.fail(f"JupyterLab did not start:\n{server.stdout.read()[-3000:]}")
                time.sleep(0.5)
        yield url, token
    finally:
        try:  # the server's own shutdown stops its kernels too
            urllib.request.urlopen(urllib.request.Request(f"{url}/api/shutdown?token={token}", method="POST"),
                                   timeout=5)
        except OSError:
            server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def copy_project(dest: Path) -> Path:
    """What `make lab` serves, copied (so a save from JupyterLab never touches the repository):
    the notebooks, the configs, jupytext's settings and the ignore rules."""
    for name in ("notebooks", "configs"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
    for name in ("jupytext.toml", ".gitignore"):
        shutil.copy2(REPO / name, dest / name)
    return dest


@pytest.fixture
def lab_project(tmp_path, sketchy_mini_root):
    """`make lab`'s server on a copy of the project; yields (url, token, project)."""
    require_chromium()
    project = copy_project(tmp_path / "project")
    with jupyterlab(project, tmp_path, {"SEMI3_DATA": str(sketchy_mini_root.parent)}) as (url, token):
        yield url, token, project


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=semi3", "-c", "user.email=semi3@localhost", *args], cwd=project,
                          check=True, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_opening_and_saving_every_notebook_through_jupyterlab_leaves_git_clean(tmp_path):
    """What JupyterLab's Ctrl+S does without an edit, for every notebook: GET the notebook model
    through the server's contents API and PUT it back as it came."""
    project = copy_project(tmp_path / "project")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "the project")
    committed = {path.name: (project / "notebooks" / path.name).read_bytes() for path in NOTEBOOKS}
    with jupyterlab(project, tmp_path) as (url, token):
        def contents(path: str, body: dict | None = None) -> dict:
            request = urllib.request.Request(
                f"{url}/api/contents/{path}?type=notebook&content=1&token={token}", method="PUT" if body else "GET",
                data=json.dumps(body).encode() if body else None, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)

        for name in committed:
            model = contents(f"notebooks/{name}")
            assert model["type"] == "notebook" and model["content"]["cells"], name
            # Served with what the kernel will report, so JupyterLab opens it unmodified.
            assert model["content"]["metadata"]["language_info"] == kernel_language_info(), name
            saved = contents(f"notebooks/{name}", {"type": "notebook", "format": "json", "content": model["content"]})
            assert saved["path"] == f"notebooks/{name}"
    for name, before in committed.items():
        after = (project / "notebooks" / name).read_bytes()
        assert after == before, f"{name}: the save changed the file:\n" + git(project, "diff", "--", f"notebooks/{name}")
    assert git(project, "status", "--porcelain") == "", "a save left files behind"


def run_cells(page, count: int) -> None:
    """Run the notebook's first ``count`` cells (Shift+Enter from the first), once its kernel
    answers: a run asked for while the kernel is still connecting is dropped by JupyterLab."""
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    first_code = page.locator(".jp-NotebookPanel .jp-CodeCell").first
    for _ in range(6):
        page.locator(".jp-NotebookPanel .jp-Cell").first.click()
        for _ in range(count):
            page.keyboard.press("Shift+Enter")
        try:
            # any count: a run that outlasts the wait is queued again and numbered on
            first_code.locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]")).wait_for(timeout=20_000)
            return
        except Exception:  # noqa: BLE001 (playwright's TimeoutError): not run, try again
            page.keyboard.press("Escape")
    pytest.fail("JupyterLab never ran the first cell")


@pytest.mark.slow
@pytest.mark.data
def test_lab_opens_a_py_notebook_as_a_notebook_and_runs_its_first_cells(lab_project, screenshots):
    url, token, project = lab_project
    source_before = (project / "notebooks" / "01_data.py").read_text()
    with chromium_page(1280, 1000) as page:
        page.goto(f"{url}/lab/tree/notebooks/01_data.py?token={token}", timeout=90_000)
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-CodeCell", timeout=90_000)
        # JupyterLab renders a long notebook's cells progressively.
        page.wait_for_function("document.querySelectorAll('.jp-NotebookPanel .jp-Cell').length > 10",
                               timeout=60_000)
        assert page.locator(".jp-FileEditor").count() == 0
        page.locator(".jp-NotebookPanel .jp-MarkdownCell h1", has_text="The data: Sketchy and its splits"
                     ).wait_for(timeout=30_000)
        # Opened, with its kernel started, the notebook is not marked modified (no dot on its tab).
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
        assert page.locator(".lm-TabBar-tab.jp-mod-dirty").count() == 0, "the notebook opened as modified"
        code_cells = page.locator(".jp-NotebookPanel .jp-CodeCell")
        run_cells(page, 3)  # the title, the parameters, then the root helper with the config and data
        second = code_cells.nth(1)
        second.locator(".jp-InputPrompt", has_text="[2]").wait_for(timeout=120_000)
        outputs = second.locator(".jp-OutputArea").inner_text()
        assert "dataset 'sketchy-mini' read from" in outputs, outputs
        assert "Error" not in outputs and "Traceback" not in outputs, outputs
        page.screenshot(path=str(screenshots / "lab-01_data.png"))
        source = project / "notebooks" / "01_data.py"
        before = source.stat().st_mtime_ns
        page.keyboard.press("Control+s")  # saving writes the .py (jupytext), nothing else
        deadline = time.monotonic() + 30
        while source.stat().st_mtime_ns == before and time.monotonic() < deadline:
            time.sleep(0.5)
        assert source.stat().st_mtime_ns != before, "Ctrl+S did not save the notebook"
    # Run and saved without an edit, the .py file is byte for byte what it was (no git diff).
    assert (project / "notebooks" / "01_data.py").read_text() == source_before
    assert not list((project / "notebooks").glob("*.ipynb"))


WIDGET_NOTEBOOK = '''# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (semi3)
#     language: python
#     name: python3
# ---

# %%
from semi3lib.interactive.widget import SketchSearch

SketchSearch.from_checkpoint({checkpoint!r}, {index!r})
'''


@pytest.mark.slow
@pytest.mark.data
def test_the_draw_widget_answers_strokes_drawn_in_jupyterlab(lab_project, request, screenshots):
    url, token, project = lab_project
    # $SEMI3_SEARCH_EXPORT (an export of the book's model, after make book): its checkpoint and
    # gallery, as for the README's screenshots; otherwise the smoke model's
    chosen = os.environ.get("SEMI3_SEARCH_EXPORT")
    if chosen:
        checkpoint = json.loads((Path(chosen) / "manifest.json").read_text())["checkpoint"]
        index = Path(chosen).resolve() / "index.npz"
    else:
        checkpoint = request.getfixturevalue("smoke_run") / "last.pt"
        index = request.getfixturevalue("search_export") / "index.npz"
    (project / "notebooks" / "draw.py").write_text(
        WIDGET_NOTEBOOK.format(checkpoint=str(Path(checkpoint).resolve()), index=str(index)))
    with chromium_page(1280, 900) as page:
        page.goto(f"{url}/lab/tree/notebooks/draw.py?token={token}", timeout=90_000)
        page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=90_000)
        run_cells(page, 1)
        canvas = page.locator(".jp-OutputArea canvas")
        canvas.wait_for(timeout=180_000)
        page.wait_for_function("document.querySelector('.semi3-widget-status')?.textContent.includes('Draw a sketch')",
                               timeout=180_000)
        box = canvas.bounding_box()
        for stroke in ([(40, 200), (128, 40), (216, 200), (40, 200)], [(90, 150), (166, 150)]):
            page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
            page.mouse.down()
            for x, y in stroke[1:]:
                page.mouse.move(box["x"] + x, box["y"] + y, steps=5)
            page.mouse.up()
        page.wait_for_function("document.querySelectorAll('.jp-OutputArea figure').length === 10", timeout=60_000)
        assert "Top 10 of" in page.inner_text(".semi3-widget-status")
        assert page.get_attribute(".semi3-widget-confidence", "data-level") in {"clear", "unsure", "unknown"}
        captions = page.locator(".jp-OutputArea figcaption").all_inner_texts()
        assert captions[0].startswith("1. ")
        page.screenshot(path=str(screenshots / "lab-widget.png"))
        # Ctrl+Z reaches the widget inside JupyterLab (not JupyterLab's own undo): three times takes
        # back the three strokes, and the widget is back at its start.
        cells = page.locator(".jp-NotebookPanel .jp-Cell").count()
        canvas.click(position={"x": 250, "y": 250})  # focus, and a dot: a third stroke
        for _ in range(3):
            page.keyboard.press("Control+z")
        page.wait_for_function("document.querySelector('.semi3-widget-status').textContent.includes('Draw a sketch')",
                               timeout=60_000)
        assert page.locator(".jp-OutputArea figure").count() == 0
        assert page.locator(".jp-NotebookPanel .jp-Cell").count() == cells
