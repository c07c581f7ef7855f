"""Shared helpers for the benchmarks: machine description, peak memory, JSON output."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from semi3lib.engine.hardware import machine_info
from semi3lib.io import atomic_write_text

__all__ = ["RESULTS", "PeakRSS", "machine_info", "write_result"]

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results" / "benchmarks"


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every ``interval`` seconds
    in a thread (numpy, torch and BLAS allocations all count)."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self.baseline = self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self) -> "PeakRSS":
        self.baseline = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def increase_mb(self) -> float:
        return round((self.peak - self.baseline) / 2**20, 1)

    @property
    def peak_mb(self) -> float:
        return round(self.peak / 2**20, 1)


def write_result(name: str, result: dict[str, Any], out: str | None = None) -> Path:
    """Print ``result`` as JSON and write it to results/benchmarks/<name>.json (or ``out``),
    atomically (:func:`semi3lib.io.atomic_write`)."""
    path = Path(out) if out else RESULTS / f"{name}.json"
    text = json.dumps(result, indent=2)
    atomic_write_text(path, text + "\n")
    print(text)
    print(f"written to {path}", file=sys.stderr)
    return path
