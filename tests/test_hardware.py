"""The one machine description: every result (run records, benchmarks, the book's runs) carries
``machine_info()``."""

from __future__ import annotations

import sys

from semi3lib.engine.hardware import hardware_label, machine_info

KEYS = {"cpu", "cpu_capability", "cpu_count", "usable_cores", "torch_threads", "ram_gb", "load_average_1_5_15min", "gpu", "python",
        "platform", "torch", "numpy", "sklearn", "faiss", "date", "git_commit"}


def test_the_machine_block_names_the_hardware_the_libraries_and_the_commit():
    info = machine_info()
    assert set(info) == KEYS
    assert info["usable_cores"] >= 1 and info["torch"] and info["numpy"] and info["git_commit"]
    assert hardware_label(info) == info["gpu"] or hardware_label(info).endswith(f"{info['usable_cores']} cores")
    assert isinstance(info["cpu_capability"], str) and info["cpu_capability"]  # e.g. AVX2, AVX512, DEFAULT


def test_the_label_tells_apart_hosts_that_report_one_cpu_name_with_other_instruction_sets():
    old = {"cpu": "AMD EPYC", "usable_cores": 2}  # a record written before the instruction set was kept
    assert hardware_label(old) == "AMD EPYC, 2 cores"
    assert hardware_label({**old, "cpu_capability": "AVX2"}) == "AMD EPYC (AVX2), 2 cores"
    assert hardware_label({**old, "cpu_capability": "AVX512"}) != hardware_label({**old, "cpu_capability": "AVX2"})


def test_without_torch_the_machine_is_still_described(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    info = machine_info()
    assert set(info) == KEYS and info["torch"] is None and info["gpu"] is None and info["torch_threads"] is None
    assert info["cpu_capability"] is None
    assert info["cpu_count"] and info["python"]



def test_the_kind_of_host_is_the_cpu_name_and_its_instruction_set_and_says_when_that_is_unknown():
    from semi3lib.engine.hardware import UNRECORDED_HOST, host_kind

    old = {"cpu": "AMD EPYC", "usable_cores": 2}
    assert host_kind(old) == "AMD EPYC (instruction set not recorded)"  # not guessed
    assert host_kind({**old, "cpu_capability": "AVX2"}) == "AMD EPYC (AVX2)"
    assert host_kind({**old, "cpu_capability": "AVX2", "usable_cores": 16}) == "AMD EPYC (AVX2)"  # cores: time only
    assert host_kind({**old, "cpu_capability": "AVX512"}) != host_kind({**old, "cpu_capability": "AVX2"})
    assert host_kind({**old, "cpu_capability": "AVX512", "gpu": "NVIDIA H200"}) == "NVIDIA H200 on AMD EPYC (AVX512)"
    assert host_kind(None) == host_kind({}) == UNRECORDED_HOST
    assert host_kind(machine_info()).endswith(f"({machine_info()['cpu_capability']})")
