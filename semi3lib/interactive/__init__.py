"""The interactive book: JupyterLab (``make lab``), draw-to-search in a notebook (an anywidget,
:mod:`semi3lib.interactive.widget`) and in the rendered book (an ONNX export run by
onnxruntime-web, :mod:`semi3lib.retrieval.export` and ``web/``).

This module stays light (no torch): every notebook imports it first.
"""

from __future__ import annotations

import os
from pathlib import Path

# A folder is the project root when it holds both of these (the notebooks' parameters are
# paths relative to it: configs/..., results/..., figures/..., runs/...).
ROOT_MARKERS = ("notebooks", "configs")


def find_project_root(start: str | os.PathLike | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the working directory) that holds
    ``notebooks/`` and ``configs/``; None when there is none."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if all((folder / marker).is_dir() for marker in ROOT_MARKERS):
            return folder
    return None


def use_project_root() -> Path:
    """Make the project root the working directory, so a notebook's paths resolve the same
    way in JupyterLab (whose kernels start in ``notebooks/``) as under papermill (which
    starts them in the root). A no-op in the root; outside any project the working
    directory is left as it is. Returns the working directory."""
    root = find_project_root()
    if root is not None and root != Path.cwd().resolve():
        os.chdir(root)
    return Path.cwd()
