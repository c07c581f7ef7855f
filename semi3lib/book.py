"""The book: run the notebooks headlessly, and the small helpers they share.

Running
-------
``python -m semi3lib.book run --profile smoke|cpu|full [--only NAME] [--out _build]`` (or
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
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

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
    hardware: dict[str, Any] = field(default_factory=dict)


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
    raw = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(raw) - set(PROFILE_SECTIONS))
    if unknown:
        raise BookError(f"{path}: unknown section {unknown[0]!r} (valid: {', '.join(PROFILE_SECTIONS)})")
    per_notebook = raw.get("notebooks") or {}
    bad = sorted(set(per_notebook) - set(NOTEBOOKS))
    if bad:
        raise BookError(f"{path}: unknown notebook {bad[0]!r} (notebooks: {', '.join(NOTEBOOKS)})")
    common = raw.get("common") or {}
    return {"__common__": dict(common), **{n: dict(per_notebook.get(n) or {}) for n in NOTEBOOKS}}


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
            )
        except PapermillExecutionError as err:
            raise NotebookFailed(name, executed, err.cell_index, err.exec_count, err.source,
                                 f"{err.ename}: {err.evalue}") from None
        except Exception as err:  # kernel died, timeout, unreadable notebook
            raise NotebookFailed(name, executed, error=f"{type(err).__name__}: {err}") from err


def hardware_summary() -> dict[str, Any]:
    """What ran the book: CPU count, torch threads, GPU name (if any)."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu_count": os.cpu_count()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # the runner itself does not need torch
        pass
    return info


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
    names = resolve_notebooks(only)
    profile_values = load_profile(profile, root)
    book = BookRun(profile=profile, hardware=hardware_summary())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="semi3-book-") as tmp:
        prepared: dict[str, tuple[Path, dict[str, Any]]] = {}
        for name in names:  # check every notebook's parameters before running anything
            source = root / NOTEBOOK_DIR / f"{name}.py"
            if not source.is_file():
                raise BookError(f"notebook source {source} is missing")
            ipynb = to_ipynb(source, Path(tmp) / f"{name}.ipynb")
            params = notebook_parameters(profile_values, name, declared_parameters(ipynb), extra_parameters)
            prepared[name] = (ipynb, params)
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
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(json.dumps(asdict(book), indent=2, default=str) + "\n")
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


def build_parser(prog: str = "python -m semi3lib.book") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Execute the book's notebooks with papermill")
    sub = parser.add_subparsers(dest="book_command", metavar="COMMAND", required=True)
    run = sub.add_parser("run", help="execute the notebooks of a profile into _build/executed/")
    add_run_arguments(run)
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


# --------------------------------------------------------------------------- notebook helpers


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

    path = Path(results_dir) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plain(payload), indent=2) + "\n")
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


@contextlib.contextmanager
def quiet_random_init() -> Any:
    """Silence the backbone's random-initialisation warning where the random weights are
    overwritten or irrelevant (loading a checkpoint, counting parameters)."""
    import logging

    log = logging.getLogger("semi3lib.models.backbones")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*RANDOM initialisation.*")
            yield
    finally:
        log.setLevel(level)


def load_trained(checkpoint: str | Path, device: Any = "cpu") -> tuple[Any, Any, dict[str, Any], Any]:
    """A checkpoint's model, config and contents, and its experiment data (the split saved
    beside it). :func:`require_checkpoint` explains a missing file."""
    from semi3lib.evaluation import load_model
    from semi3lib.experiment import load_experiment_data

    path = require_checkpoint(checkpoint)
    with quiet_random_init():  # the architecture is built empty, then the weights are loaded
        model, cfg, ckpt = load_model(path, device)
    data = load_experiment_data(cfg.data, path.parent / "split.json")
    return model, cfg, ckpt, data


def pick_device(name: str = "auto") -> "torch.device":
    """``auto``: CUDA when present, else CPU."""
    from semi3lib.training import select_device

    return select_device(name)


# --------------------------------------------------------------------------- 01: data

VARIANT_NAMES = {
    "tx_000000000000": "whole canvas",
    "tx_000100000000": "bounding box",
}


def variant_label(variant: str) -> str:
    return f"{variant} ({VARIANT_NAMES[variant]})" if variant in VARIANT_NAMES else variant


def category_table(index: Any, split: Any) -> "pd.DataFrame":
    """Per category: photos, sketches per variant, query sketches and training sketches."""
    import pandas as pd

    rows: dict[str, dict[str, int]] = {c: {} for c in index.categories}
    for p in index.photos:
        rows[p.category]["photos"] = rows[p.category].get("photos", 0) + 1
    for s in index.sketches:
        key = f"sketches {VARIANT_NAMES.get(s.variant, s.variant)}"
        rows[s.category][key] = rows[s.category].get(key, 0) + 1
    for name, positions in (("query sketches", split.query), ("train sketches", split.train_sketches),
                            ("val sketches", split.val)):
        for i in positions:
            cat = index.sketches[i].category
            rows[cat][name] = rows[cat].get(name, 0) + 1
    table = pd.DataFrame.from_dict(rows, orient="index").fillna(0).astype(int)
    table.index.name = "category"
    return table.loc[:, (table != 0).any(axis=0)]


def sketch_photo_examples(index: Any, categories: Sequence[str], per_category: int = 1,
                          seed: int = 0) -> list[tuple[Any, Any]]:
    """``(sketch, photo)`` record pairs where the sketch was drawn from that very photo."""
    import numpy as np

    by_id = {(p.category, p.path.stem): p for p in index.photos}
    rng = np.random.default_rng(seed)
    pairs = []
    for cat in categories:
        cands = [s for s in index.sketches if s.category == cat and s.variant == index.query_variant
                 and (cat, s.photo_id) in by_id]
        for k in rng.permutation(len(cands))[:per_category]:
            pairs.append((cands[k], by_id[(cat, cands[k].photo_id)]))
    return pairs


def variant_pairs(index: Any, n: int, seed: int = 0) -> list[tuple[Any, Any]]:
    """Up to ``n`` drawings present in both sketch variants: ``(whole canvas, bounding box)``
    records, from distinct categories where possible."""
    import numpy as np

    variants = index.sketch_variants
    if len(variants) < 2:
        return []
    first = {s.drawing_id: s for s in index.sketches if s.variant == variants[0]}
    both = [(first[s.drawing_id], s) for s in index.sketches if s.variant == variants[1] and s.drawing_id in first]
    rng = np.random.default_rng(seed)
    picked, seen = [], set()
    for k in rng.permutation(len(both)):
        cat = both[k][0].category
        if cat not in seen:
            picked.append(both[k])
            seen.add(cat)
        if len(picked) == n:
            break
    return picked


def sketch_extent(path: str | Path) -> dict[str, float]:
    """Ink fraction (share of pixels darker than 128) and the area of the strokes' bounding
    box as a fraction of the canvas."""
    import numpy as np

    from semi3lib.data.images import load_image

    ink = np.asarray(load_image(path, "L")) < 128
    if not ink.any():
        return {"ink": 0.0, "bbox_area": 0.0}
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    area = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1) / ink.size
    return {"ink": float(ink.mean()), "bbox_area": float(area)}


def variant_extent_table(index: Any, max_per_variant: int | None = None, seed: int = 0) -> "pd.DataFrame":
    """:func:`sketch_extent` of (a seeded sample of) the sketches of every variant."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for variant in index.sketch_variants:
        sketches = [s for s in index.sketches if s.variant == variant]
        if max_per_variant is not None and len(sketches) > max_per_variant:
            sketches = [sketches[i] for i in sorted(rng.choice(len(sketches), max_per_variant, replace=False))]
        rows += [{"variant": variant_label(variant), **sketch_extent(s.path)} for s in sketches]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- 02: edgemaps


def edgemap_speed(photo_paths: Sequence[str | Path], methods: Sequence[str]) -> dict[str, float]:
    """Seconds per photo of each edge method, on one OpenCV thread, decoding excluded."""
    import cv2
    import numpy as np

    from semi3lib.data.images import load_image
    from semi3lib.edges import compute_edgemap

    photos = [np.asarray(load_image(p, "RGB")) for p in photo_paths]
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        out = {}
        for method in methods:
            compute_edgemap(photos[0], method)  # warm-up
            t0 = time.perf_counter()
            for photo in photos:
                compute_edgemap(photo, method)
            out[method] = (time.perf_counter() - t0) / len(photos)
        return out
    finally:
        cv2.setNumThreads(threads)


class _ImageNetEmbedder:
    """ImageNet-feature embeddings of the query sketches and of gallery photos or edgemaps."""

    def __init__(self, data: Any, data_cfg: Any, backbone: str, weights_path: str | None, device: Any) -> None:
        import torch

        from semi3lib.evaluation import ImageNetFeatures

        self.data, self.data_cfg, self.device = data, data_cfg, torch.device(device)
        self.features = ImageNetFeatures(backbone, weights_path).to(self.device).eval()

    def queries(self, which: str = "query") -> tuple[Any, Any]:
        from semi3lib.evaluation import embed_dataset
        from semi3lib.experiment import query_dataset

        return embed_dataset(query_dataset(self.data, self.data_cfg, which), lambda b: self.features(b["sketch"]),
                             self.device)

    def gallery(self, domain: str = "photo", edge_method: str | None = None) -> tuple[Any, Any]:
        import dataclasses

        from semi3lib.evaluation import embed_dataset
        from semi3lib.experiment import gallery_dataset

        cfg = dataclasses.replace(self.data_cfg, edge_method=edge_method or self.data_cfg.edge_method)
        return embed_dataset(gallery_dataset(self.data, cfg), lambda b: self.features(b[domain]), self.device)


def imagenet_embeddings(data: Any, data_cfg: Any, backbone: str = "efficientnet_lite0",
                        weights_path: str | None = None, device: Any = "cpu") -> dict[str, Any]:
    """The no-training floor as embeddings (the same model as
    :func:`semi3lib.evaluation.evaluate_imagenet_baseline`): ``query``, ``query_labels``,
    ``gallery``, ``gallery_labels``."""
    embedder = _ImageNetEmbedder(data, data_cfg, backbone, weights_path, device)
    q, ql = embedder.queries()
    g, gl = embedder.gallery("photo")
    return {"query": q, "query_labels": ql, "gallery": g, "gallery_labels": gl}


def edge_method_retrieval(data: Any, data_cfg: Any, methods: Sequence[str], backbone: str = "efficientnet_lite0",
                          weights_path: str | None = None, device: Any = "cpu") -> "pd.DataFrame":
    """Untrained ImageNet features: query sketches against the gallery rendered as photos and
    as the edgemaps of each method. How sketch-like is each method to a network that has
    never seen a sketch? One row per gallery rendering."""
    import pandas as pd

    from semi3lib.metrics import retrieval_metrics

    embedder = _ImageNetEmbedder(data, data_cfg, backbone, weights_path, device)
    q, ql = embedder.queries()
    rows = []
    for domain, method in [("photo", None), *(("edge", m) for m in methods)]:
        g, gl = embedder.gallery(domain, method)
        metrics = retrieval_metrics(q, ql, g, gl)
        rows.append({"gallery": "photos" if method is None else f"{method} edgemaps",
                     **{k: metrics[k] for k in ("mAP@all", "mAP@200", "P@10", "P@25")}})
    return pd.DataFrame(rows).set_index("gallery")


# --------------------------------------------------------------------------- 03: model


def trace_forward(model: Any, **inputs: Any) -> "pd.DataFrame":
    """Run ``model(**inputs)`` once with hooks on its blocks and list every block call in
    order: the block, the branches whose data it carries, input and output shapes."""
    import pandas as pd
    import torch

    def shapes(value: Any) -> str:
        if torch.is_tensor(value):
            return str(tuple(value.shape))
        if isinstance(value, (tuple, list)):
            return ", ".join(shapes(v) for v in value if torch.is_tensor(v) or isinstance(v, (tuple, list)))
        return ""

    given = [b for b in model.branches if inputs.get(b) is not None]
    carried = {f"bottoms.{name}": [b for b in given if model.bottom_of[b] == name] for name in model.bottoms}
    carried.update({"coattention": ["photo", "edge"], "top": given})
    blocks = {f"bottoms.{name}": module for name, module in model.bottoms.items()}
    if getattr(model, "coattention", None) is not None:
        blocks["coattention"] = model.coattention
    blocks.update({"top": model.top, "pool": model.pool, "embedding": model.embedding, "classifier": model.classifier})
    rows: list[dict[str, str]] = []
    calls: dict[str, int] = {}

    def hook(name: str, args: Any, out: Any) -> None:
        n = calls[name] = calls.get(name, 0) + 1
        branches = carried.get(name, [given[n - 1]] if n <= len(given) else [])
        rows.append({"block": name, "branches": ", ".join(branches), "input": shapes(args), "output": shapes(out)})

    handles = [module.register_forward_hook(lambda _m, args, out, name=name: hook(name, args, out))
               for name, module in blocks.items()]
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for handle in handles:
            handle.remove()
    table = pd.DataFrame(rows)
    table.index = range(1, len(table) + 1)
    return table


def sharing_comparison(model_cfg: Any, num_classes: int) -> "pd.DataFrame":
    """Parameters of the three sharing modes (and co-attention on/off) for one backbone,
    built without pretrained weights (only the counts matter)."""
    import dataclasses

    import pandas as pd

    from semi3lib.models import Semi3Net

    rows = []
    for sharing, coatt in (("semi", True), ("semi", False), ("shared", True), ("separate", True)):
        cfg = dataclasses.replace(model_cfg, sharing=sharing, coattention=coatt, pretrained=False)
        with quiet_random_init():  # random weights on purpose: only the counts are read
            model = Semi3Net(cfg, num_classes)
        rows.append({"sharing": sharing, "co-attention": coatt, "bottoms": len(model.bottoms),
                     "parameters": sum(p.numel() for p in model.parameters())})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- 04: training


def history_table(history: Sequence[Mapping[str, Any]],
                  metrics: Sequence[str] = ("mAP@all", "P@25", "P@200")) -> "pd.DataFrame":
    """One row per epoch: the loss terms that were used (a term that is 0 throughout was
    switched off), the learning rate, wall time and the query metrics where evaluated."""
    import pandas as pd

    table = pd.json_normalize(list(history), sep=" ").set_index("epoch")
    losses = [c for c in table.columns if c.startswith("loss_") and (table[c] != 0).any()]
    queried = [f"query {m}" for m in metrics if f"query {m}" in table.columns]
    return table[losses + ["lr", "wall_seconds"] + queried].round(4)


# --------------------------------------------------------------------------- 05: evaluation

# Commonly quoted for Semi3-Net (Lei et al. 2020); not checked against the paper here.
PAPER_REPORTED = (
    {"dataset": "Sketchy (full: 6,250 queries, 73,002 photos)", "mAP@all": 0.916, "P@200": 0.930},
    {"dataset": "TU-Berlin Extension (2,500 queries, 204,489 photos)", "mAP@all": 0.800, "P@200": 0.813},
)
TABLE_METRICS = ("mAP@all", "mAP@200", "P@10", "P@25", "P@100", "P@200")


def paper_reported_table() -> "pd.DataFrame":
    import pandas as pd

    table = pd.DataFrame(PAPER_REPORTED).set_index("dataset")
    table.columns = [f"{c} (paper)" for c in table.columns]
    return table


def load_study(study_dir: str | Path) -> tuple["pd.DataFrame | None", str]:
    """The reproduction study's runs (``<study_dir>/*.json``, one per run and seed, each with
    ``run``, ``seed`` and ``metrics``) as one row per file; ``(None, reason)`` when there are
    none. Files without ``metrics`` are ignored (other outputs may share the folder)."""
    import pandas as pd

    study_dir = Path(study_dir)
    files = sorted(study_dir.glob("*.json")) if study_dir.is_dir() else []
    rows = []
    for path in files:
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
            continue
        metrics = record["metrics"].get("query", record["metrics"])
        rows.append({"run": record.get("run", path.stem), "seed": record.get("seed"),
                     **{k: metrics.get(k) for k in TABLE_METRICS if k in metrics},
                     "wall_seconds": record.get("wall_seconds"), "file": path.name})
    if not rows:
        why = "does not exist" if not study_dir.is_dir() else "holds no run results (*.json with metrics)"
        return None, f"{study_dir} {why}"
    return pd.DataFrame(rows), f"{len(rows)} run file(s) in {study_dir}"


def summarise_study(runs: "pd.DataFrame") -> "pd.DataFrame":
    """Mean and standard deviation over seeds per run name, ``"0.512 ± 0.010"`` strings
    when a run has several seeds, plain values otherwise."""
    import pandas as pd

    metrics = [m for m in TABLE_METRICS if m in runs.columns]
    rows = {}
    for run, group in runs.groupby("run", sort=False):
        row: dict[str, Any] = {"seeds": int(group["seed"].nunique()) if "seed" in group else len(group)}
        for m in metrics:
            values = group[m].dropna().astype(float)
            if len(values) > 1:
                row[m] = f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"
            elif len(values) == 1:
                row[m] = f"{values.iloc[0]:.3f}"
        rows[run] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "run"
    return table


def results_table(book_metrics: "pd.DataFrame", study: "pd.DataFrame | None" = None) -> "pd.DataFrame":
    """The chapter's main table: the study's runs (already formatted by
    :func:`summarise_study`) then this book's models, with a ``source`` column, values as
    3-decimal strings so that ``mean ± std`` and single numbers line up."""
    import pandas as pd

    columns = [c for c in ("mAP@all", "mAP@200", "P@10", "P@25", "P@100", "P@200") if c in book_metrics.columns]
    ours = book_metrics[columns].map(lambda v: f"{v:.3f}")
    ours.insert(0, "source", "this book")
    parts = [ours]
    if study is not None:
        theirs = study.reindex(columns=["seeds", *columns]).copy()
        theirs.insert(0, "source", "reproduction study")
        parts.insert(0, theirs)
    table = pd.concat(parts)
    table.index.name = "model"
    return table.astype(object).where(table.notna(), "")


def top_k(query: Any, gallery: Any, k: int) -> tuple[Any, Any]:
    """Indices ``(Q, k)`` and cosine scores ``(Q, k)`` of the k best gallery items per query
    (embeddings L2-normalised; ties by gallery order)."""
    import numpy as np

    scores = np.asarray(query, dtype=np.float32) @ np.asarray(gallery, dtype=np.float32).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def spread_queries(ap: Any, labels: Any, n: int) -> list[int]:
    """``n`` query positions from distinct categories at evenly spaced AP ranks (best to
    worst), so a retrieval grid shows successes and failures in their real proportion."""
    import numpy as np

    order = np.argsort(-np.asarray(ap), kind="stable")
    picked, seen = [], set()
    for target in np.linspace(0, len(order) - 1, num=max(n * 4, n)).round().astype(int):
        for pos in order[target:]:
            if labels[pos] not in seen:
                picked.append(int(pos))
                seen.add(labels[pos])
                break
        if len(picked) == n:
            break
    return sorted(picked, key=lambda p: -ap[p])


# --------------------------------------------------------------------------- 06: co-attention


def coattention_weights(model: Any, data: Any, data_cfg: Any, photo_indices: Sequence[int] | None = None,
                        device: Any = "cpu") -> tuple[Any, Any]:
    """Co-attention weights ``(N, C)`` of gallery photos (all, or positions
    ``photo_indices`` into ``index.photos``), each with its own edgemap, and their labels."""
    import torch

    from semi3lib.data.datasets import GalleryPhotos
    from semi3lib.evaluation import embed_dataset
    from semi3lib.experiment import edge_cache_dir

    indices = list(data.split.gallery if photo_indices is None else photo_indices)
    dataset = GalleryPhotos(data.index, indices, image_size=data_cfg.image_size, edge_method=data_cfg.edge_method,
                            cache_dir=edge_cache_dir(data_cfg))
    model.eval()
    return embed_dataset(dataset, lambda b: model.coattention_weights(b["photo"], b["edge"]), torch.device(device))


def restrict_to_categories(data: Any, categories: Sequence[int]) -> Any:
    """The same experiment data with the query and gallery cut to some category codes."""
    import dataclasses

    keep = {data.index.categories[c] for c in categories}
    split = dataclasses.replace(
        data.split,
        query=[i for i in data.split.query if data.index.sketches[i].category in keep],
        gallery=[j for j in data.split.gallery if data.index.photos[j].category in keep],
    )
    return dataclasses.replace(data, split=split)


def boosted_channels(weights: Any, labels: Any, categories: Sequence[str], top: int = 5) -> "pd.DataFrame":
    """Per category, the channels whose mean weight for that category's photos most exceeds
    their mean over all photos: ``channel (+difference)`` strings, plus the category's mean
    weight and its spread across channels."""
    import numpy as np
    import pandas as pd

    weights, labels = np.asarray(weights), np.asarray(labels)
    overall = weights.mean(0)
    rows = {}
    for code, cat in enumerate(categories):
        sel = labels == code
        if not sel.any():
            continue
        mean = weights[sel].mean(0)
        lift = mean - overall
        best = np.argsort(-lift)[:top]
        rows[cat] = {"photos": int(sel.sum()), "mean weight": round(float(mean.mean()), 3),
                     **{f"#{i + 1}": f"{c} (+{lift[c]:.3f})" for i, c in enumerate(best)}}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "category"
    return table


def discriminative_channels(weights: Any, labels: Any, n: int) -> list[int]:
    """The ``n`` channels whose mean weight varies most between categories."""
    import numpy as np

    weights, labels = np.asarray(weights), np.asarray(labels)
    means = np.stack([weights[labels == c].mean(0) for c in np.unique(labels)])
    return [int(c) for c in np.argsort(-means.var(0))[:n]]


def activation_maps(model: Any, photo: Any, edge: Any) -> dict[str, Any]:
    """Channel-mean activation maps ``(B, h, w)`` of the bottom features of photos and their
    edgemaps, before and after co-attention recalibration."""
    import torch

    with torch.no_grad():
        maps = model.photo_feature_maps(photo, edge)
    names = {"before_photo": "photo, before", "after_photo": "photo, after",
             "before_edge": "edgemap, before", "after_edge": "edgemap, after"}
    return {label: maps[key].abs().mean(1).cpu().numpy() for key, label in names.items()}


# --------------------------------------------------------------------------- 07: embeddings


def select_categories(labels: Any, n: int, seed: int = 0) -> list[int]:
    """``n`` category codes present in ``labels``, seeded, sorted."""
    import numpy as np

    present = np.unique(np.asarray(labels))
    if n >= len(present):
        return [int(c) for c in present]
    return sorted(int(c) for c in np.random.default_rng(seed).choice(present, n, replace=False))


def joint_points(emb: Mapping[str, Any], categories: Sequence[int]) -> dict[str, Any]:
    """Query sketches and gallery photos of ``categories`` stacked: ``x`` ``(N, D)``,
    ``category`` (codes re-numbered 0..len-1), ``is_sketch`` ``(N,)`` bool."""
    import numpy as np

    remap = {c: i for i, c in enumerate(categories)}
    qs = np.isin(emb["query_labels"], categories)
    gs = np.isin(emb["gallery_labels"], categories)
    x = np.concatenate([emb["query"][qs], emb["gallery"][gs]])
    labels = np.concatenate([emb["query_labels"][qs], emb["gallery_labels"][gs]])
    return {"x": x, "category": np.array([remap[int(c)] for c in labels]),
            "is_sketch": np.concatenate([np.ones(qs.sum(), bool), np.zeros(gs.sum(), bool)])}


def umap_2d(x: Any, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> Any:
    """A seeded cosine-metric UMAP of ``(N, D)`` to ``(N, 2)``."""
    import umap

    reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, len(x) - 1), min_dist=min_dist,
                        metric="cosine", random_state=seed, n_jobs=1)
    return reducer.fit_transform(x)


def neighbourhood_stats(x: Any, category: Any, is_sketch: Any, k: int = 10) -> dict[str, float]:
    """In the embedding space itself (cosine, not the 2-D projection): among each point's
    ``k`` nearest neighbours, the share of the same category and the share of the other
    domain (0.5-ish: domains mixed; near 0: each domain in its own region)."""
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    k = min(k, len(x) - 1)
    nn = np.argsort(-sims, axis=1)[:, :k]
    category, is_sketch = np.asarray(category), np.asarray(is_sketch)
    return {"same_category": float((category[nn] == category[:, None]).mean()),
            "other_domain": float((is_sketch[nn] != is_sketch[:, None]).mean()),
            "sketch_neighbours_same_category_photos": float(
                ((category[nn] == category[:, None]) & ~is_sketch[nn])[is_sketch].mean()),
            "k": float(k)}

if __name__ == "__main__":
    sys.exit(main())
