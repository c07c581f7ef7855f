"""A description of the machine a result was measured on (CPU, cores, RAM, GPU, library
versions, git commit): every results file carries one (:func:`machine_info`), so numbers are
never orphaned."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # not installed, or no version attribute
        return None


def hardware_label(machine: dict[str, Any] | None) -> str | None:
    """A results file's "machine" block in a few words: the GPU if one was used, else the CPU,
    the instruction set torch's kernels used where recorded, and its usable cores ("AMD EPYC
    (AVX2), 2 cores"); None without one. Two hosts that report the same CPU name can differ in
    instruction set, and with it in the last digits of a training run."""
    if not machine:
        return None
    if machine.get("gpu"):
        return str(machine["gpu"])
    cpu = machine.get("cpu")
    if machine.get("cpu_capability"):
        cpu = f"{cpu} ({machine['cpu_capability']})"
    cores = machine.get("usable_cores")
    return f"{cpu}, {cores} cores" if cores else cpu


UNKNOWN_ISA = "instruction set not recorded"  # records written before machine_info kept cpu_capability
UNRECORDED_HOST = "an unrecorded host"


def host_kind(machine: dict[str, Any] | None) -> str:
    """The kind of host a result was computed on, as the comparison rule matches hosts: the CPU
    name *and* the instruction set torch's kernels used (an "AMD EPYC" with AVX-512 and one
    with AVX2 train to other numbers), and the GPU when one ran it; e.g. ``AMD EPYC (AVX2)``,
    ``NVIDIA H200 on AMD EPYC (AVX512)``. A record without ``cpu_capability`` says so
    (``AMD EPYC (instruction set not recorded)``) rather than guess; no machine block gives
    :data:`UNRECORDED_HOST`. Cores and threads are left out: they change the time, not the digits."""
    if not machine or not machine.get("cpu"):
        return UNRECORDED_HOST
    cpu = f"{machine['cpu']} ({machine.get('cpu_capability') or UNKNOWN_ISA})"
    return f"{machine['gpu']} on {cpu}" if machine.get("gpu") else cpu


def current_host_kind() -> str:
    """:func:`host_kind` of this machine, without the rest of :func:`machine_info`."""
    info = _torch_info()
    return host_kind({"cpu": _cpu_model(), "cpu_capability": info["cpu_capability"], "gpu": info["gpu"]})


def host_slug(kind: str) -> str:
    """A kind of host as a file-name part: ``AMD EPYC (AVX2)`` -> ``amd-epyc-avx2``."""
    return "-".join("".join(c if c.isalnum() else " " for c in kind.lower()).split()) or "unknown-host"


def _torch_info() -> dict[str, Any]:
    """torch's threads and GPU; None each where torch is not installed (the book's runner
    describes its machine without needing torch)."""
    try:
        import torch
    except ImportError:
        return {"torch_threads": None, "gpu": None, "cpu_capability": None}
    return {"torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            # the kernels torch dispatches to (DEFAULT, AVX2, AVX512, ...): the same CPU name with
            # another instruction set computes other last digits
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict[str, Any]:
    """CPU, cores, RAM, GPU, library versions and git commit: the "machine" block of every
    result (run records, benchmarks, the book's runs)."""
    try:
        import psutil
        ram_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        ram_gb = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    torch_info = _torch_info()
    return {
        "cpu": _cpu_model(),
        "cpu_capability": torch_info["cpu_capability"],
        "cpu_count": os.cpu_count(),
        "usable_cores": affinity,
        "torch_threads": torch_info["torch_threads"],
        "ram_gb": ram_gb,
        "load_average_1_5_15min": load,
        "gpu": torch_info["gpu"],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "sklearn": _version("sklearn"),
        "faiss": _version("faiss"),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
    }
