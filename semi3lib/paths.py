"""Where datasets, caches and run outputs live.

Datasets are looked up by name in ``$SEMI3_DATA``, then ``./data``, then ``../shared/data``
(relative to the current directory), unless the user gives a root explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_DATASET = "sketchy-mini"


class DatasetNotFoundError(FileNotFoundError):
    """No dataset folder was found; the message names every place looked at."""


def dataset_search_dirs() -> list[Path]:
    """The folders searched for named datasets, in order."""
    dirs = []
    if os.environ.get("SEMI3_DATA"):
        dirs.append(Path(os.environ["SEMI3_DATA"]))
    dirs += [Path("data"), Path("..") / "shared" / "data"]
    return dirs


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
        f"Set $SEMI3_DATA to the folder that holds {name}/, or pass its root explicitly."
    )
