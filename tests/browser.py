"""Headless Debian Chromium driven by playwright's Python package (never a downloaded
browser): the interactive tests' one way to open a page. Missing Chromium is a failure in CI
and a skip elsewhere, as in tests/test_site.py. A test that calls these helpers, directly or
through its fixtures, is marked ``browser`` by rule (tests/conftest.py)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import pytest

CHROMIUM = os.environ.get("SEMI3_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_chromium() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        message = f"Chromium is not installed at {CHROMIUM} (run .ci/install-browser)"
        if IN_CI:
            pytest.fail(f"{message}; CI must run the browser tests")
        pytest.skip(message)
    return CHROMIUM


@contextmanager
def chromium_page(width: int = 1280, height: int = 900) -> Iterator["object"]:
    """A playwright page in headless Debian Chromium."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


# The helpers whose use marks a test `browser` (tests/conftest.py: uses_browser).
BROWSER_HELPERS = (require_chromium, chromium_page)
