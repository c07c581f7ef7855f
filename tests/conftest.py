"""Shared fixtures and the suite's rules.

In CI (``CI=true`` or ``SEMI3_REQUIRE_DATA=1``) a missing sketchy-mini is an error, not a
skip, so a broken data path can never pass as green.

Markers are given by rule, never only by hand (:func:`pytest_collection_modifyitems`):

- ``data``: every test whose fixtures include ``sketchy_mini_root``, directly or through
  ``smoke_run``, ``search_export``, a module's own fixture, ...
- ``slow``: every test whose fixtures include one of :data:`SLOW_FIXTURES` (a training or a
  notebook run made once per session).
- ``browser``: every test whose body, fixtures or the module helpers they call use a helper of
  ``tests/browser.py`` (:data:`browser.BROWSER_HELPERS`).

At run time, a test that (itself or through a fixture it sets up) starts a training, a study,
a notebook kernel, a site build, JupyterLab or Chromium as a subprocess without carrying
``slow`` or ``browser`` fails, naming the command (:func:`heavy_command`), so the fast loop
``pytest -m "not slow and not browser"`` cannot quietly grow slow again. Chromium needs
``browser`` itself, so ``-m "not browser"`` leaves out every test that needs it.

Last, the session fails if a test wrote into the repository (:func:`repository_untouched`).
Screenshots go to a temporary folder (:func:`screenshots`), or to ``$SEMI3_SCREENSHOTS``.
"""

from __future__ import annotations

import inspect
import os
import shlex
import subprocess
import tempfile
import types
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pytest
import torch

import browser
from semi3lib.paths import DatasetNotFoundError, find_dataset_root

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS_ENV = "SEMI3_SCREENSHOTS"

# hypothesis keeps its example database and caches in ./.hypothesis: a write into the repository.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", tempfile.mkdtemp(prefix="semi3-hypothesis-"))

# One intra-op thread unless SEMI3_TEST_THREADS says otherwise: the tests' tensors are small, and on
# a busy 2-core machine two OpenMP threads wait for each other whenever one is descheduled
# (tests/test_model.py and test_model_inspect.py at load 7-10: 45-55 s with one thread, 133-213 s with two).
torch.set_num_threads(max(1, int(os.environ.get("SEMI3_TEST_THREADS", "1"))))


def _require_data() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("SEMI3_REQUIRE_DATA") == "1"


# --------------------------------------------------------------------------- fixtures


def _shared_dataset(name: str) -> Path:
    """A real dataset beside the repository (read in place, never copied): required in CI,
    skipped elsewhere when missing."""
    old = Path.cwd()
    try:
        os.chdir(REPO)
        return find_dataset_root(name)
    except DatasetNotFoundError as err:
        if _require_data():
            pytest.fail(f"{name} is required in CI: {err}")
        pytest.skip(f"{name} not available: {err}")
    finally:
        os.chdir(old)


@pytest.fixture(scope="session")
def sketchy_mini_root() -> Path:
    """The real sketchy-mini extract."""
    return _shared_dataset("sketchy-mini")


@pytest.fixture(scope="session")
def quickdraw_root() -> Path:
    """The real quickdraw5 doodles."""
    return _shared_dataset("quickdraw5")


@pytest.fixture(scope="session")
def smoke_run(sketchy_mini_root, tmp_path_factory) -> Path:
    """A real (seconds-long) smoke training run on 5 sketchy-mini categories; its out_dir."""
    from semi3lib.config import load_config
    from semi3lib.engine.train import train

    out = tmp_path_factory.mktemp("smoke-run")
    cfg = load_config(REPO / "configs" / "smoke.yaml",
                      [f"data.root={sketchy_mini_root}", f"data.cache_dir={out / 'edges'}",
                       f"train.out_dir={out / 'run'}"])
    train(cfg, progress=False)
    return out / "run"


@pytest.fixture(scope="session")
def search_export(smoke_run, tmp_path_factory) -> Path:
    """``semi3 export`` of the smoke checkpoint: ONNX sketch encoder, float16 gallery,
    thumbnails, examples and index.npz; its folder."""
    from semi3lib.retrieval.export import export_search

    out = tmp_path_factory.mktemp("search-export")
    export_search(smoke_run / "last.pt", out, progress=False)
    return out


@pytest.fixture(scope="session")
def fine_grained_run(tmp_path_factory) -> Path:
    """A tiny fine-grained (``data.protocol: instance``) run on a fixture dataset in sketchy-fg10's
    layout (3 categories x 8 photos, the last 4 of each the test photos: a gallery of 12);
    random weights, 32 px, 2 steps: seconds. Its out_dir (last.pt, split.json)."""
    from data_fixtures import make_instance_dataset
    from semi3lib.config import load_config
    from semi3lib.engine.train import train

    base = tmp_path_factory.mktemp("fine-grained-run")
    root = make_instance_dataset(base / "sketchy-fg10", photos_per_category=8, test_per_category=4)
    cfg = load_config(REPO / "configs" / "fine-grained-cpu.yaml", [
        f"data.root={root}", f"data.cache_dir={base / 'edges'}", "data.image_size=32", "data.num_workers=0",
        "model.pretrained=false", "model.embed_dim=16", "model.hidden_dim=32", "train.epochs=1",
        "train.batch_size=4", "train.instance_photos_per_category=2", "train.max_steps_per_epoch=2",
        "train.device=cpu", f"train.out_dir={base / 'run'}"])
    train(cfg, progress=False)
    return base / "run"


@pytest.fixture(scope="session")
def fine_grained_export(fine_grained_run, tmp_path_factory) -> Path:
    """``semi3 export`` of :func:`fine_grained_run`'s checkpoint (its 12 test photos); its folder."""
    from semi3lib.retrieval.export import export_search

    out = tmp_path_factory.mktemp("search-export-fine-grained")
    export_search(fine_grained_run / "last.pt", out, progress=False)
    return out


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where the browser tests save screenshots and measurements: a temporary folder, or
    ``$SEMI3_SCREENSHOTS`` for whoever wants to keep them (the repository guard allows it)."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen).resolve() if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --------------------------------------------------------------------------- markers by rule

DATA_FIXTURES = frozenset({"sketchy_mini_root", "quickdraw_root"})
# Session fixtures that cost tens of seconds: whoever uses them is out of the fast loop.
SLOW_FIXTURES = frozenset({
    "smoke_run",     # trains the smoke model (also behind search_export)
    "fine_grained_run",  # trains a tiny fine-grained model (behind fine_grained_export)
    "smoke_book",    # runs every notebook of the smoke profile (tests/test_notebooks.py)
    "finished_run",  # trains a tiny run for the refusals of tests/test_hostile_inputs.py
    "instance_run",  # trains tiny instance-level runs (tests/test_instance.py)
    "instance_study",  # runs a tiny instance-level study plan (tests/test_instance.py)
    "category_checkpoints",  # trains tiny category runs to start fine-grained ones (tests/test_instance.py)
})


def _referenced_names(code: types.CodeType) -> set[str]:
    """Global names a code object (and the functions, lambdas and comprehensions in it) uses."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _referenced_names(const)
    return names


def calls_browser_helper(func: Callable[..., Any], seen: set[int] | None = None) -> bool:
    """Whether ``func``, or a function of its own module that it calls, uses a helper of
    tests/browser.py."""
    seen = set() if seen is None else seen
    func = inspect.unwrap(func)
    code = getattr(func, "__code__", None)
    if code is None or id(func) in seen:
        return False
    seen.add(id(func))
    scope = getattr(func, "__globals__", {})
    for name in _referenced_names(code):
        value = scope.get(name)
        if any(value is helper for helper in browser.BROWSER_HELPERS):
            return True
        if (inspect.isfunction(value) and value.__module__ == func.__module__
                and calls_browser_helper(value, seen)):
            return True
    return False


def _fixture_functions(item: pytest.Item) -> list[Callable[..., Any]]:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    return [fixturedef.func for defs in info.name2fixturedefs.values() for fixturedef in defs]


def uses_browser(item: pytest.Item) -> bool:
    """The ``browser`` rule: the test or one of its fixtures drives Chromium."""
    functions = [getattr(item, "function", None), *_fixture_functions(item)]
    seen: set[int] = set()
    return any(f is not None and calls_browser_helper(f, seen) for f in functions)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))  # the closure: fixtures of fixtures too
        if fixtures & DATA_FIXTURES:
            item.add_marker(pytest.mark.data)
        if fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
        if uses_browser(item):
            item.add_marker(pytest.mark.browser)


# --------------------------------------------------------------------------- heavy subprocesses

CHROMIUM_NAMES = frozenset({"chromium", "chromium-browser", "chrome", "google-chrome", "headless_shell"})
SLOW_SEMI3_COMMANDS = frozenset({"train", "study"})
TRAINING_SCRIPTS = frozenset({"ddp_worker.py"})  # tests/ddp_worker.py trains a model


def _argv(args: Any) -> list[str]:
    if isinstance(args, (str, bytes, os.PathLike)):
        text = os.fsdecode(args)
        try:
            return shlex.split(text)
        except ValueError:  # unbalanced quotes: still a command line worth classifying
            return text.split()
    return [os.fsdecode(a) for a in args]


def heavy_command(args: Any) -> tuple[str, str] | None:
    """``(marker, what)`` when ``args`` starts something the fast loop must not run: ``marker``
    is ``"browser"`` for Chromium (and playwright's driver, which starts it), ``"slow"`` for
    trainings, studies, notebook kernels, mystmd builds and JupyterLab; else None."""
    argv = _argv(args)
    if not argv:
        return None
    names = [os.path.basename(a) for a in argv]
    program = names[0]
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else None
    after = argv[argv.index("-m") + 2:] if module else argv[1:]
    if program in CHROMIUM_NAMES or argv[0] == browser.CHROMIUM:
        return "browser", "Chromium"
    if "run-driver" in argv:
        return "browser", "playwright's driver (Chromium)"
    if program == "semi3" or module == "semi3lib.cli":
        words = [a for a in after if not a.startswith("-")]
        if words[:1] and words[0] in SLOW_SEMI3_COMMANDS:
            return "slow", f"`semi3 {words[0]}`"
        if words[:2] == ["book", "run"]:
            return "slow", "`semi3 book run`"
    if program == "torchrun" or module in ("torch.distributed.run", "torch.distributed.launch"):
        return "slow", "torchrun"
    if any(name in TRAINING_SCRIPTS for name in names):
        return "slow", "a training script"
    if program == "papermill" or module == "papermill":
        return "slow", "papermill"
    if module in ("ipykernel_launcher", "ipykernel") or any(a.startswith("--nbval") for a in argv):
        return "slow", "a notebook kernel (papermill, nbval, `semi3 book run`)"
    if any(name in ("myst", "myst.cjs") for name in names) and "--version" not in argv:
        return "slow", "a mystmd build"
    if (module in ("jupyterlab", "semi3lib.interactive.lab") and "--install-settings" not in argv) or \
            program == "jupyter-lab" or (program == "jupyter" and after[:1] == ["lab"]):
        return "slow", "JupyterLab"
    return None


_RUNNING: list[pytest.Item] = []  # the test being set up, run or torn down
_REFUSED = pytest.StashKey[list]()
_original_popen_init = subprocess.Popen.__init__


def _checked_popen_init(self: subprocess.Popen, args: Any, *rest: Any, **kwargs: Any) -> None:
    item = _RUNNING[-1] if _RUNNING else None
    found = heavy_command(args) if item is not None else None
    if found is not None:
        marker, what = found
        allowed = ("browser",) if marker == "browser" else ("slow", "browser")
        if not any(item.get_closest_marker(name) for name in allowed):
            command = shlex.join(_argv(args))
            message = (f"{item.nodeid} starts {what} without the `{marker}` marker, so it would run in the fast "
                       f"loop (-m \"not slow and not browser\"). Mark the test (or its module: pytestmark).\n"
                       f"  command: {command[:400]}")
            item.stash.setdefault(_REFUSED, []).append(message)
            pytest.fail(message, pytrace=False)
    _original_popen_init(self, args, *rest, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    # On the class, so subprocess.run, asyncio (playwright) and `from subprocess import Popen` all pass here.
    subprocess.Popen.__init__ = _checked_popen_init  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    subprocess.Popen.__init__ = _original_popen_init  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    # Session and module fixtures are set up inside the first test that needs them: they count as its own.
    _RUNNING.append(item)
    try:
        return (yield)
    finally:
        _RUNNING.pop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    report = yield
    refused = item.stash.get(_REFUSED, [])
    if refused:
        if report.passed:  # the failure was swallowed (a thread, an except BaseException): fail anyway
            report.outcome = "failed"
            report.longrepr = "\n".join(refused)
        refused.clear()  # reported once, not again at teardown
    return report


# --------------------------------------------------------------------------- the repository stays as it was

SKIPPED_DIRS = frozenset({".git", ".venv", "node_modules", "__pycache__", ".pytest_cache", ".ipynb_checkpoints"})


def repository_files(root: Path, skip: Sequence[Path] = ()) -> dict[str, tuple[int, int]]:
    """``{path: (size, mtime_ns)}`` for every file under ``root``, tracked, untracked or
    ignored (so ``_build/`` and ``runs/`` count), except Python's caches, installed packages
    and the folders in ``skip``."""
    skipped = {p.resolve() for p in skip}
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and Path(folder, d).resolve() not in skipped]
        for name in names:
            path = Path(folder, name)
            try:
                stat = path.lstat()
            except FileNotFoundError:  # removed while walking
                continue
            files[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return files


def repository_changes(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    """Lines naming each file added, changed or removed between two :func:`repository_files`."""
    changes = [f"added   {p}" for p in sorted(set(after) - set(before))]
    changes += [f"changed {p}" for p in sorted(set(after) & set(before)) if after[p] != before[p]]
    changes += [f"removed {p}" for p in sorted(set(before) - set(after))]
    return changes


@pytest.fixture(scope="session", autouse=True)
def repository_untouched() -> Iterator[None]:
    """Fails the session, loudly, if a test wrote into the repository (tracked files, build
    folders, anything but caches): tests write only under tmp_path."""
    keep = [Path(os.environ[SCREENSHOTS_ENV])] if os.environ.get(SCREENSHOTS_ENV) else []
    before = repository_files(REPO, keep)
    yield
    changes = repository_changes(before, repository_files(REPO, keep))
    if changes:
        shown = "\n  ".join(changes[:30]) + ("\n  ..." if len(changes) > 30 else "")
        pytest.fail(f"the tests wrote into the repository {REPO} ({len(changes)} files); tests must write "
                    f"under tmp_path:\n  {shown}", pytrace=False)
