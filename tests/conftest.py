"""Shared fixtures. In CI (``CI=true`` or ``SEMI3_REQUIRE_DATA=1``) a missing sketchy-mini
is an error, not a skip, so a broken data path can never pass as green."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from semi3lib.paths import DatasetNotFoundError, find_dataset_root

REPO = Path(__file__).resolve().parents[1]

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def _require_data() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("SEMI3_REQUIRE_DATA") == "1"


@pytest.fixture(scope="session")
def sketchy_mini_root() -> Path:
    """The real sketchy-mini extract (read in place, never copied)."""
    old = Path.cwd()
    try:
        os.chdir(REPO)
        return find_dataset_root("sketchy-mini")
    except DatasetNotFoundError as err:
        if _require_data():
            pytest.fail(f"sketchy-mini is required in CI: {err}")
        pytest.skip(f"sketchy-mini not available: {err}")
    finally:
        os.chdir(old)


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
