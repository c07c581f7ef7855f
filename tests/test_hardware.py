"""The one machine description: every result (run records, benchmarks, the book's runs) carries
``machine_info()``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from semi3lib.engine.hardware import cpu_isa, hardware_label, host_kind, isa_environment, machine_info

KEYS = {"cpu", "cpu_capability", "cpu_isa", "isa_caps", "cpu_count", "usable_cores", "torch_threads", "ram_gb", "load_average_1_5_15min", "gpu", "python",
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
    capped = {**old, "cpu_capability": "AVX2", "cpu_isa": "AVX512", "isa_caps": {"ATEN_CPU_CAPABILITY": "avx2"}}
    assert hardware_label(capped) == "AMD EPYC (AVX512 capped to AVX2), 2 cores"  # its speed is the AVX512 CPU's
    assert host_kind(capped) == "AMD EPYC (AVX2)"  # what it computes: paired with the AVX2 host's runs


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


needs_avx2 = pytest.mark.skipif(cpu_isa() not in ("AVX2", "AVX512"), reason="an x86 CPU with AVX2")


@needs_avx2
def test_a_cpu_capped_to_avx2_runs_avx2_kernels_and_its_records_name_the_caps():
    env = isa_environment("avx2")
    script = "import json, torch; from semi3lib.engine.hardware import machine_info; print(json.dumps(machine_info()))"
    info = json.loads(subprocess.run([sys.executable, "-c", script], env={**os.environ, **env}, check=True,
                                     capture_output=True, text=True).stdout)
    assert info["cpu_capability"] == "AVX2" and info["cpu_isa"] == cpu_isa()
    assert info["isa_caps"] == env and host_kind(info) == f"{info['cpu']} (AVX2)"
    if cpu_isa() == "AVX512":  # numpy's AVX-512 loops are off too
        assert "X86_V4" in env["NPY_DISABLE_CPU_FEATURES"]


def test_an_instruction_set_that_cannot_be_set_is_refused():
    with pytest.raises(ValueError, match="unknown instruction set 'sse2'"):
        isa_environment("sse2")


@needs_avx2
def test_semi3_isa_starts_the_command_again_with_the_caps(monkeypatch):
    from semi3lib import cli

    for name in isa_environment("avx2"):
        monkeypatch.delenv(name, raising=False)
    started = {}
    monkeypatch.setattr(cli.os, "execvpe", lambda file, args, env: started.update(args=args, env=env))
    cli._restart_with_isa_caps(["--isa", "avx2", "study", "--list"], debug=False)
    assert started["args"][1:] == ["-m", "semi3lib.cli", "--isa", "avx2", "study", "--list"]
    assert started["env"]["ATEN_CPU_CAPABILITY"] == "avx2"
    # called in-process (no process of its own to start again): refused, not run uncapped
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--isa", "avx2", "study", "--list"])
    assert exit_.value.code == cli.EXIT_USER_ERROR
