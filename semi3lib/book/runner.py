"""The book: run the notebooks headlessly; where they write their results.

Running
-------
``python -m semi3lib.book.runner run --profile smoke|cpu|full [--only NAME] [--out _build]`` (or
``semi3 book run ...``) executes ``notebooks/NN_name.py`` in order:

1. the jupytext ``py:percent`` source becomes an ``.ipynb`` (kernel ``python3``);
2. papermill executes it with the profile's parameters for that notebook
   (``notebooks/profiles/<profile>.yaml``), with the project root as working directory, so
   every path in a notebook is relative to the root (``configs/``, ``runs/``, ``results/``,
   ``figures/``); papermill records the injected values in the executed notebook;
3. the executed copy is written to ``<out>/executed/NN_name.ipynb`` (the MyST site reads
   them there), and the wall time of every notebook to ``<out>/book-<profile>.json``.

A failing cell stops the run with one message naming the notebook, the cell and the error;
the command exits 1. A profile that sets a parameter a notebook does not declare is an error
before anything runs (a typo never silently falls back to a default).

Profile files have two sections: ``common`` (applied to every notebook that declares the
parameter, e.g. ``results_dir``) and ``notebooks`` (``{NN_name: {parameter: value}}``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence


from semi3lib.engine.hardware import machine_info

# The notebooks' kernels have no ipywidgets: tqdm.auto falls back to text bars, and need not
# warn about it in every executed page.
warnings.filterwarnings("ignore", message="IProgress not found")

NOTEBOOKS = (
    "01_data",
    "02_edgemaps",
    "03_model",
    "04_training",
    "05_evaluation",
    "06_coattention",
    "07_embeddings",
    "08_benchmarks",
    "09_bridge",
    "10_fine_grained",
    "11_why_edgemap",
)
PROFILES = ("smoke", "cpu", "full")
KERNEL_NAME = "python3"
KERNELSPEC = {"display_name": "Python 3 (semi3)", "language": "python", "name": KERNEL_NAME}
NOTEBOOK_DIR = "notebooks"
PROFILE_DIR = "notebooks/profiles"
PROFILE_SECTIONS = ("common", "notebooks")


class BookError(Exception):
    """The book could not run as asked (unknown profile or notebook, bad parameters)."""


class NotebookFailed(BookError):
    """A notebook cell raised. The message names the notebook, the cell and the error."""

    def __init__(self, notebook: str, executed: Path, cell_index: int | None = None,
                 execution_count: int | None = None, source: str = "", error: str = "") -> None:
        self.notebook, self.executed, self.cell_index = notebook, executed, cell_index
        self.execution_count, self.source, self.error = execution_count, source, error
        where = "" if cell_index is None else f" in cell {cell_index}" + (
            f" (execution count {execution_count})" if execution_count is not None else "")
        lines = source.strip().splitlines()
        excerpt = "\n".join(f"    | {line}" for line in lines[:12])
        if len(lines) > 12:
            excerpt += f"\n    | ... ({len(lines) - 12} more lines)"
        super().__init__(
            f"notebook {notebook} failed{where}: {error}\n"
            + (f"  cell source:\n{excerpt}\n" if excerpt else "")
            + f"  executed copy with the traceback: {executed}"
        )


@dataclass
class NotebookRun:
    name: str
    executed: str
    parameters: dict[str, Any]
    seconds: float


@dataclass
class BookRun:
    profile: str
    notebooks: list[NotebookRun] = field(default_factory=list)
    seconds: float = 0.0
    hardware: dict[str, Any] = field(default_factory=dict)  # engine.hardware.machine_info: what ran the book


# --------------------------------------------------------------------------- profiles


def resolve_notebooks(only: Sequence[str] | None = None) -> list[str]:
    """Notebook names in book order; ``only`` accepts full names (``05_evaluation``), numbers
    (``05``, ``5``) or the part after the number (``evaluation``)."""
    if not only:
        return list(NOTEBOOKS)
    picked = set()
    for item in only:
        matches = [n for n in NOTEBOOKS if item in (n, n[:2], n[:2].lstrip("0"), n[3:])]
        if not matches:
            raise BookError(f"unknown notebook {item!r}; notebooks: {', '.join(NOTEBOOKS)}")
        picked.update(matches)
    return [n for n in NOTEBOOKS if n in picked]


def load_profile(profile: str, root: str | Path = ".") -> dict[str, dict[str, Any]]:
    """Parameters per notebook for ``profile``: ``{NN_name: {param: value}}``, with the
    ``common`` section filled in (later given only to notebooks that declare the key)."""
    path = Path(root) / PROFILE_DIR / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (Path(root) / PROFILE_DIR).glob("*.yaml"))
        raise BookError(f"no profile {profile!r} ({path} is missing); profiles: {', '.join(known) or 'none'}")
    from semi3lib.config import ConfigError, load_yaml

    raw, lines = load_yaml(path, "book profile")
    unknown = sorted(set(raw) - set(PROFILE_SECTIONS))
    if unknown:
        raise BookError(f"{path}:{lines[unknown[0]]}: unknown section {unknown[0]!r} "
                        f"(valid: {', '.join(PROFILE_SECTIONS)})")
    for section in PROFILE_SECTIONS:
        if not isinstance(raw.get(section) or {}, dict):
            raise ConfigError(f"{path}:{lines[section]}: {section!r} must be a mapping of names to values")
    per_notebook = raw.get("notebooks") or {}
    bad = sorted(set(per_notebook) - set(NOTEBOOKS))
    if bad:
        raise BookError(f"{path}:{lines[f'notebooks.{bad[0]}']}: unknown notebook {bad[0]!r} "
                        f"(notebooks: {', '.join(NOTEBOOKS)})")
    for name, values in per_notebook.items():
        if not isinstance(values or {}, dict):
            raise ConfigError(f"{path}:{lines[f'notebooks.{name}']}: notebook {name!r} must map parameters to values")
    common = raw.get("common") or {}
    return {"__common__": dict(common), "__lines__": {k: f"{path}:{v}" for k, v in lines.items()},
            **{n: dict(per_notebook.get(n) or {}) for n in NOTEBOOKS}}


def check_common_parameters(profile: Mapping[str, Mapping[str, Any]], declared: Mapping[str, Mapping[str, Any]]
                            ) -> None:
    """Every key of a profile's ``common`` section must be a parameter of some notebook
    (``declared``: every notebook's parameters), so a misspelt key is an error, never ignored."""
    known = set().union(*(set(d) for d in declared.values()))
    unknown = sorted(set(profile.get("__common__", {})) - known)
    if unknown:
        where = profile.get("__lines__", {}).get(f"common.{unknown[0]}", "profile")
        raise BookError(f"{where}: common parameter {unknown[0]!r} is not a parameter of any notebook "
                        f"(they are: {', '.join(sorted(known))})")


def notebook_parameters(profile: Mapping[str, Mapping[str, Any]], name: str, declared: Mapping[str, Any],
                        extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The values injected into notebook ``name``: common keys it declares, then its own
    section, then ``extra`` (keys it declares). Its own keys must all be declared."""
    own = dict(profile.get(name, {}))
    undeclared = sorted(set(own) - set(declared))
    if undeclared:
        raise BookError(
            f"profile sets {undeclared[0]!r} for {name}, which has no such parameter "
            f"(its parameters: {', '.join(declared)})"
        )
    values = {k: v for k, v in profile.get("__common__", {}).items() if k in declared}
    values.update(own)
    values.update({k: v for k, v in (extra or {}).items() if k in declared})
    return values


# --------------------------------------------------------------------------- execution


def to_ipynb(source: str | Path, dest: str | Path) -> Path:
    """Convert a jupytext ``py:percent`` notebook to ``.ipynb`` with the ``python3`` kernel."""
    import jupytext

    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.metadata.setdefault("language_info", {"name": "python"})
    notebook.metadata.pop("jupytext", None)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(notebook, dest, fmt="ipynb")
    return dest


def parameters_cell(notebook: Any) -> Any:
    """The cell tagged ``parameters`` (exactly one is required)."""
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise BookError(f"expected one cell tagged 'parameters', found {len(cells)}")
    return cells[0]


def parse_parameters(source: str) -> dict[str, Any]:
    """Names and values of a parameters cell. Only ``name = <plain literal>`` statements are
    allowed (numbers, strings, booleans, None, lists/dicts/tuples of those): a parameters cell
    does no I/O and no computation. (papermill's own inspection misreads values containing
    ``=``, such as ``["train.epochs=3"]``, hence this parser.)"""
    import ast

    values: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise BookError(f"parameters cell line {node.lineno}: only `name = literal` assignments are allowed")
        try:
            values[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise BookError(f"parameters cell line {node.lineno}: the value of {node.targets[0].id!r} "
                            f"is not a plain literal") from None
    return values


def declared_parameters(ipynb: str | Path) -> dict[str, Any]:
    """Names and default values of a notebook's ``parameters`` cell."""
    import nbformat

    try:
        return parse_parameters(parameters_cell(nbformat.read(str(ipynb), as_version=4)).source)
    except BookError as err:
        raise BookError(f"{ipynb}: {err}") from None


def execute_notebook(name: str, source: Path, executed: Path, parameters: dict[str, Any],
                     cwd: Path, prepared: Path | None = None) -> None:
    """Execute one notebook with papermill; a failing cell raises :class:`NotebookFailed`."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    import logging

    # Parameters were checked by parse_parameters; papermill's own inspection misreads some
    # values and would warn about them.
    logging.getLogger("papermill").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="semi3-book-") as tmp:
        ipynb = prepared or to_ipynb(source, Path(tmp) / f"{name}.ipynb")
        executed.parent.mkdir(parents=True, exist_ok=True)
        try:
            papermill.execute_notebook(
                str(ipynb), str(executed), parameters=parameters, kernel_name=KERNEL_NAME,
                cwd=str(cwd), progress_bar=False, log_output=False, report_mode=False,
                kernel_manager_class=_ipc_kernel_manager(),
            )
        except PapermillExecutionError as err:
            raise NotebookFailed(name, executed, err.cell_index, err.exec_count, err.source,
                                 f"{err.ename}: {err.evalue}") from None
        except Exception as err:  # kernel died, timeout, unreadable notebook
            raise NotebookFailed(name, executed, error=f"{type(err).__name__}: {err}") from err
    collapse_injected_parameters(executed)


def _ipc_kernel_manager() -> type:
    """A kernel manager that talks to its kernel over local IPC sockets, not TCP: the kernel then
    has no reason to print ipykernel's "running over TCP without encryption" warning, once per
    notebook, into every ``semi3 book run``. Unix sockets are POSIX; Windows keeps TCP."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum

    if os.name != "posix":
        return AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc")

    return IPCKernelManager


def collapse_injected_parameters(executed: Path) -> None:
    """Tag papermill's injected-parameters cell ``hide-input``, as the notebook's own
    parameters cell is: the book shows how each page was made one click away, not inline."""
    import nbformat

    notebook = nbformat.read(str(executed), as_version=4)
    changed = False
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            cell.metadata["tags"] = [*tags, "hide-input"]
            changed = True
    if changed:
        nbformat.write(notebook, str(executed))


def run_book(profile: str, only: Sequence[str] | None = None, out: str | Path = "_build",
             root: str | Path = ".", extra_parameters: Mapping[str, Any] | None = None,
             log: Callable[[str], None] = print) -> BookRun:
    """Execute the book's notebooks (all, or ``only``) with ``profile``'s parameters.

    ``root`` is the project folder (``notebooks/``, ``configs/``) and the working directory of
    every notebook; ``out`` is relative to it unless absolute. ``extra_parameters`` are given
    to every notebook that declares them (tests use it to redirect outputs). Returns the
    timings; raises :class:`NotebookFailed` at the first failing cell.
    """
    root = Path(root).resolve()
    out = Path(out) if Path(out).is_absolute() else root / out
    if out.exists() and not out.is_dir():
        raise BookError(f"build folder {out} is a file, not a folder")
    names = resolve_notebooks(only)
    profile_values = load_profile(profile, root)
    book = BookRun(profile=profile, hardware=machine_info())
    started = time.perf_counter()
    from semi3lib.io import atomic_write_text, folder_lock

    with tempfile.TemporaryDirectory(prefix="semi3-book-") as tmp:
        prepared: dict[str, tuple[Path, dict[str, Any]]] = {}
        declared: dict[str, dict[str, Any]] = {}
        for name in NOTEBOOKS:  # check every notebook's parameters before running anything
            source = root / NOTEBOOK_DIR / f"{name}.py"
            if not source.is_file():
                if name in names:
                    raise BookError(f"notebook source {source} is missing")
                continue
            ipynb = to_ipynb(source, Path(tmp) / f"{name}.ipynb")
            declared[name] = declared_parameters(ipynb)
            if name in names:
                params = notebook_parameters(profile_values, name, declared[name], extra_parameters)
                prepared[name] = (ipynb, params)
        check_common_parameters(profile_values, declared)
        # One book run per build folder: two would write the same executed notebooks, results and figures.
        with folder_lock(out, what="build folder", busy="another semi3 book run (process {holder}) writes to it",
                         advice="wait for it to finish"):
            for name in names:
                ipynb, params = prepared[name]
                executed = out / "executed" / f"{name}.ipynb"
                log(f"[book:{profile}] {name} ...")
                t0 = time.perf_counter()
                execute_notebook(name, root / NOTEBOOK_DIR / f"{name}.py", executed, params, root, prepared=ipynb)
                seconds = time.perf_counter() - t0
                log(f"[book:{profile}] {name} done in {seconds:.1f} s -> {executed.relative_to(root) if executed.is_relative_to(root) else executed}")
                book.notebooks.append(NotebookRun(name, str(executed), params, round(seconds, 2)))
            book.seconds = round(time.perf_counter() - started, 2)
            summary = out / f"book-{profile}.json"
            atomic_write_text(summary, json.dumps(asdict(book), indent=2, default=str) + "\n")
    log(f"[book:{profile}] {len(names)} notebook(s) in {book.seconds:.1f} s; timings in {summary}")
    return book


# --------------------------------------------------------------------------- command line


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="cpu", help=f"parameter profile: {', '.join(PROFILES)} (default: cpu)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this notebook (e.g. 05_evaluation, 05 or evaluation); repeatable")
    parser.add_argument("--out", default="_build", help="build folder; executed notebooks go to OUT/executed/")
    parser.add_argument("--root", default=".", help="project folder holding notebooks/ and configs/ (default: .)")


def cmd_run(args: argparse.Namespace) -> int:
    try:
        run_book(args.profile, only=args.only, out=args.out, root=args.root)
    except NotebookFailed as err:
        print(f"semi3 book: {err}", file=sys.stderr)
        return 1
    except BookError as err:
        print(f"semi3 book: error: {err}", file=sys.stderr)
        return 2
    return 0


def build_parser(prog: str = "python -m semi3lib.book.runner") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Execute the book's notebooks with papermill")
    sub = parser.add_subparsers(dest="book_command", metavar="COMMAND", required=True)
    run = sub.add_parser("run", help="execute the notebooks of a profile into _build/executed/")
    add_run_arguments(run)
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


# --------------------------------------------------------------------------- notebook outputs and inputs


def write_results(results_dir: str | Path, name: str, payload: Mapping[str, Any]) -> Path:
    """Write a notebook's numbers to ``<results_dir>/<name>.json`` (indented, keys in
    insertion order); numpy scalars and arrays are converted, NaN/inf are refused."""

    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if hasattr(value, "tolist"):
            return plain(value.tolist())
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"results {name}: non-finite value {value}")
        if isinstance(value, Path):
            return str(value)
        return value

    from semi3lib.io import atomic_write_text

    path = Path(results_dir) / f"{name}.json"
    atomic_write_text(path, json.dumps(plain(payload), indent=2) + "\n")
    return path


def require_checkpoint(path: str | Path) -> Path:
    """The checkpoint a notebook reads, or a FileNotFoundError that says how to make it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} not found: run notebook 04_training first with the same profile "
            f"(`semi3 book run --profile <profile> --only 04_training`), or set the notebook's "
            f"`checkpoint` parameter to an existing last.pt / best.pt"
        )
    return path


if __name__ == "__main__":
    sys.exit(main())
