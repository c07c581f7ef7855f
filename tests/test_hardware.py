"""The one machine description: every result (run records, benchmarks, the book's runs) carries
``machine_info()``."""

from __future__ import annotations

import sys

from semi3lib.engine.hardware import hardware_label, machine_info

KEYS = {"cpu", "cpu_count", "usable_cores", "torch_threads", "ram_gb", "load_average_1_5_15min", "gpu", "python",
        "platform", "torch", "numpy", "sklearn", "faiss", "date", "git_commit"}


def test_the_machine_block_names_the_hardware_the_libraries_and_the_commit():
    info = machine_info()
    assert set(info) == KEYS
    assert info["usable_cores"] >= 1 and info["torch"] and info["numpy"] and info["git_commit"]
    assert hardware_label(info) == info["gpu"] or hardware_label(info).endswith(f"{info['usable_cores']} cores")


def test_without_torch_the_machine_is_still_described(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    info = machine_info()
    assert set(info) == KEYS and info["torch"] is None and info["gpu"] is None and info["torch_threads"] is None
    assert info["cpu_count"] and info["python"]

