"""The suite's own rules (tests/conftest.py): which subprocesses keep a test out of the fast
loop, the browser rule, and the check that no test writes into the repository."""

from __future__ import annotations

import subprocess
import sys

import pytest

import conftest
from browser import CHROMIUM, chromium_page, require_chromium

PY = sys.executable


@pytest.mark.parametrize("command, expected", [
    ([PY, "-m", "semi3lib.cli", "train", "--quiet", "--config", "c.yaml"], ("slow", "`semi3 train`")),
    (["/venv/bin/semi3", "study", "--plan", "p.yaml"], ("slow", "`semi3 study`")),
    ([PY, "-m", "semi3lib.cli", "--debug", "book", "run", "--profile", "smoke"], ("slow", "`semi3 book run`")),
    (["/venv/bin/torchrun", "--standalone", "--nproc_per_node", "2", "worker.py"], ("slow", "torchrun")),
    ([PY, "tests/ddp_worker.py", "out", "smoke.yaml"], ("slow", "a training script")),
    (["papermill", "in.ipynb", "out.ipynb"], ("slow", "papermill")),
    ([PY, "-m", "ipykernel_launcher", "-f", "kernel.json"], ("slow", "a notebook kernel (papermill, nbval, `semi3 book run`)")),
    ([PY, "-m", "pytest", "--nbval-lax", "a.ipynb"], ("slow", "a notebook kernel (papermill, nbval, `semi3 book run`)")),
    (["/venv/bin/myst", "build", "--html", "--strict"], ("slow", "a mystmd build")),
    ([PY, "-m", "semi3lib.interactive.lab", "--no-browser", "--port", "8888"], ("slow", "JupyterLab")),
    ([CHROMIUM, "--headless", "--dump-dom", "http://127.0.0.1/"], ("browser", "Chromium")),
    ("chromium --headless --screenshot=x.png http://127.0.0.1/", ("browser", "Chromium")),
    (["/usr/bin/node", "playwright/driver/package/cli.js", "run-driver"], ("browser", "playwright's driver (Chromium)")),
])
def test_trainings_notebooks_site_builds_and_chromium_are_heavy(command, expected):
    assert conftest.heavy_command(command) == expected


@pytest.mark.parametrize("command", [
    [PY, "-m", "semi3lib.cli", "data", "info", "--json"],  # reads the dataset: fast
    ["/venv/bin/semi3", "search", "--index", "i.npz", "s.png"],
    ["/venv/bin/myst", "--version"],  # the version check before a build
    [PY, "-m", "semi3lib.interactive.lab", "--install-settings"],
    ["node", "probe.mjs", "preprocess.mjs"],
    ["npm", "ci", "--no-audit"],
    [],
])
def test_quick_commands_are_not_heavy(command):
    assert conftest.heavy_command(command) is None


class _Item:
    """What the subprocess guard reads of a test: its id, markers and stash."""

    def __init__(self, *markers: str):
        self.nodeid = "tests/test_x.py::test_y"
        self.stash = pytest.Stash()
        self._markers = set(markers)

    def get_closest_marker(self, name: str):
        return pytest.mark.__getattr__(name) if name in self._markers else None


def _start_as(item: _Item, command: list[str]) -> None:
    conftest._RUNNING.append(item)
    try:
        subprocess.Popen(command)
    finally:
        conftest._RUNNING.pop()


@pytest.mark.parametrize("program, markers, allowed", [
    ("torchrun", (), False), ("torchrun", ("data",), False), ("torchrun", ("slow",), True),
    ("torchrun", ("browser",), True), ("chromium", ("slow",), False), ("chromium", ("browser",), True),
])
def test_an_unmarked_test_that_starts_a_heavy_subprocess_fails_before_it_starts(tmp_path, program, markers, allowed):
    item, missing = _Item(*markers), str(tmp_path / program)  # no such file: an allowed start fails to exec
    if allowed:
        with pytest.raises(FileNotFoundError):
            _start_as(item, [missing, "--standalone"])
        assert item.stash.get(conftest._REFUSED, []) == []
    else:
        with pytest.raises(pytest.fail.Exception, match=f"starts .* without the `{'browser' if program == 'chromium' else 'slow'}` marker"):
            _start_as(item, [missing, "--standalone"])
        assert len(item.stash[conftest._REFUSED]) == 1 and missing in item.stash[conftest._REFUSED][0]


def _opens_a_page():
    with chromium_page():
        pass


def _checks_for_chromium():
    return [require_chromium()]


def _through_a_helper():
    return _opens_a_page()


def _plain():
    return subprocess.run


# Behind a dict, so that this module's tests do not themselves reference the samples (and by
# the rule become browser tests).
SAMPLES = {"page": _opens_a_page, "require": _checks_for_chromium, "helper": _through_a_helper, "plain": _plain}


@pytest.mark.parametrize("name, expected", [("page", True), ("require", True), ("helper", True), ("plain", False)])
def test_the_browser_rule_follows_calls_to_the_helpers_of_tests_browser(name, expected):
    assert conftest.calls_browser_helper(SAMPLES[name]) is expected


def test_a_file_written_changed_or_removed_in_the_repository_is_named(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "kept.json").write_text("{}")
    (tmp_path / "results" / "edited.json").write_text("{}")
    (tmp_path / "gone.txt").write_text("x")
    (tmp_path / "__pycache__").mkdir()
    before = conftest.repository_files(tmp_path)
    assert set(before) == {"results/kept.json", "results/edited.json", "gone.txt"}
    (tmp_path / "results" / "edited.json").write_text('{"a": 1}')
    (tmp_path / "gone.txt").unlink()
    (tmp_path / "_build" / "screenshots").mkdir(parents=True)
    (tmp_path / "_build" / "screenshots" / "page.png").write_bytes(b"png")
    (tmp_path / "__pycache__" / "m.pyc").write_bytes(b"")  # Python's cache does not count
    after = conftest.repository_files(tmp_path)
    assert conftest.repository_changes(before, after) == [
        "added   _build/screenshots/page.png", "changed results/edited.json", "removed gone.txt"]
    assert conftest.repository_changes(after, conftest.repository_files(tmp_path)) == []
    assert "_build/screenshots/page.png" not in conftest.repository_files(tmp_path, [tmp_path / "_build"])
