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
