"""``make lab``: JupyterLab opens the py:percent notebooks as notebooks, and their paths resolve
from the project root although JupyterLab starts kernels in ``notebooks/``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jupytext
import pytest

from semi3lib.interactive import find_project_root, use_project_root
from semi3lib.interactive.lab import OVERRIDES, install_settings, lab_command, settings_file
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab_project(tmp_path, sketchy_mini_root):
    """A copy of the notebooks and configs, served by `make lab`'s command (so a save from
    JupyterLab can never touch the repository); yields (url, token, project)."""
    require_chromium()
    project = tmp_path / "project"
    for name in ("notebooks", "configs"):
        shutil.copytree(REPO / name, project / name)
    port, token = _free_port(), "semi3-test"
    env = {**os.environ, "SEMI3_DATA": str(sketchy_mini_root.parent),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-user-settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces")}
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
        yield url, token, project
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
            first_code.locator(".jp-InputPrompt", has_text="[1]").wait_for(timeout=10_000)
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
    saved = jupytext.read(project / "notebooks" / "01_data.py")
    original = jupytext.reads(source_before, fmt="py:percent")
    assert [c.source for c in saved.cells] == [c.source for c in original.cells]
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
def test_the_draw_widget_answers_strokes_drawn_in_jupyterlab(lab_project, smoke_run, search_export, screenshots):
    url, token, project = lab_project
    (project / "notebooks" / "draw.py").write_text(
        WIDGET_NOTEBOOK.format(checkpoint=str(smoke_run / "last.pt"), index=str(search_export / "index.npz")))
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
        captions = page.locator(".jp-OutputArea figcaption").all_inner_texts()
        assert captions[0].startswith("1. ")
        page.screenshot(path=str(screenshots / "lab-widget.png"))
