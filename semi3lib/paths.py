"""Where datasets, caches and run outputs live.

Datasets are looked up by name in ``./data``, then ``../shared/data`` (relative to the current
directory), unless the user gives a root explicitly or sets ``$SEMI3_DATA``: then only there, so a
typo is an error, never a silent run on another copy of the data.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATASET = "sketchy-mini"


class DatasetNotFoundError(FileNotFoundError):
    """No dataset folder was found; the message names every place looked at."""


def dataset_search_dirs() -> list[Path]:
    """The folders searched for named datasets, in order: ``$SEMI3_DATA`` alone when it is set
    (it must be a folder), else ``./data`` and ``../shared/data``."""
    env = os.environ.get("SEMI3_DATA")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            what = "is a file, not a folder" if path.exists() else "does not exist"
            raise DatasetNotFoundError(f"SEMI3_DATA={env} {what}; set it to the folder that holds the "
                                       "datasets (e.g. ../shared/data) or unset it")
        return [path]
    return [Path("data"), Path("..") / "shared" / "data"]


def find_dataset_root(name: str = DEFAULT_DATASET, root: str | os.PathLike | None = None) -> Path:
    """Return the dataset folder: ``root`` if given, else ``<dir>/<name>`` for the first
    search dir that has it (a search dir that *is* the dataset also counts)."""
    if root is not None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise DatasetNotFoundError(f"dataset root {path} does not exist or is not a folder")
        return path.resolve()
    looked = []
    for base in dataset_search_dirs():
        for candidate in (base / name, base):
            looked.append(str(candidate.resolve()))
            if candidate.is_dir() and (candidate / "sketch").is_dir() and candidate.name == name:
                return candidate.resolve()
        if (base / name).is_dir():
            return (base / name).resolve()
    raise DatasetNotFoundError(
        f"dataset {name!r} not found; looked in: {', '.join(dict.fromkeys(looked))}. "
        + ("" if os.environ.get("SEMI3_DATA") else
           f"Set $SEMI3_DATA to the folder that holds {name}/, or pass its root explicitly.")
    )
