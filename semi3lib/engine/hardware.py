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


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` line's value in ``/proc/cpuinfo``; None where there is none to read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(field)), None)


def _cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_isa() -> str | None:
    """The widest x86 vector instruction set this CPU offers (``/proc/cpuinfo`` flags): "AVX512",
    "AVX2", or None (another architecture, or no flags to read). torch's kernels use it unless
    capped (:func:`isa_environment`)."""
    flags = (_cpuinfo("flags") or "").split()
    return "AVX512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None


# Instruction sets a wider CPU can be capped to, so that it computes what a host of that kind
# computes: torch's own kernels (ATen), oneDNN's convolutions, MKL's matrix products (MKL_CBWR:
# its reproducible code path) and numpy's dispatched loops. configs/avx2-cap-check.yaml trains
# a recorded AVX2 run again on a CPU with AVX-512 so capped, to check it (chapter 11).
ISA_CAPS = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                     "MKL_ENABLE_INSTRUCTIONS": "AVX2", "MKL_CBWR": "AVX2"}}
# numpy's dispatch targets an AVX2 host has (x86-64-v3 and below); the others are switched off
_NUMPY_AVX2 = {"SSE", "SSE2", "SSE3", "SSSE3", "SSE41", "POPCNT", "SSE42", "AVX", "F16C", "FMA3", "AVX2",
               "X86_V2", "X86_V3"}
ISA_VARIABLES = tuple(sorted({name for caps in ISA_CAPS.values() for name in caps} | {"NPY_DISABLE_CPU_FEATURES"}))


def _numpy_features_above(allowed: set[str]) -> list[str]:
    """numpy's dispatched CPU features that this machine has and ``allowed`` does not name."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # another numpy layout: its loops stay as they are
        return []
    return [name for name in __cpu_dispatch__ if __cpu_features__.get(name) and name not in allowed]


def isa_environment(isa: str) -> dict[str, str]:
    """The environment variables that cap this machine's kernels to ``isa`` ("avx2"); they must
    be set before the process starts (``semi3 --isa avx2 ...`` restarts itself with them).
    ValueError for an instruction set that cannot be set, or that this CPU lacks."""
    key = isa.lower()
    if key not in ISA_CAPS:
        raise ValueError(f"unknown instruction set {isa!r} (choose from: {', '.join(ISA_CAPS)})")
    if cpu_isa() is None:  # AVX2 is the narrowest cap there is: every CPU cpu_isa names offers it
        raise ValueError(f"this CPU ({_cpu_model()}) does not offer {isa.upper()}")
    env = dict(ISA_CAPS[key])
    above = _numpy_features_above(_NUMPY_AVX2)
    if above:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(above)
    return env


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # not installed, or no version attribute
        return None


def hardware_label(machine: dict[str, Any] | None) -> str | None:
    """A results file's "machine" block in a few words: the GPU if one was used, else the CPU,
    the instruction set torch's kernels used where recorded (and the CPU's own where ``semi3
    --isa`` capped it: "AMD EPYC (AVX512 capped to AVX2)"), and its usable cores ("AMD EPYC
    (AVX2), 2 cores"); None without one. Two hosts that report the same CPU name can differ in
    instruction set, and with it in the last digits of a training run."""
    if not machine:
        return None
    if machine.get("gpu"):
        return str(machine["gpu"])
    cpu, isa, offered = machine.get("cpu"), machine.get("cpu_capability"), machine.get("cpu_isa")
    if isa and machine.get("isa_caps") and offered and offered != isa:
        cpu = f"{cpu} ({offered} capped to {isa})"  # computes as an `isa` host, at this CPU's speed
    elif isa:
        cpu = f"{cpu} ({isa})"
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
        # what the CPU offers, and the caps that made its kernels narrower (semi3 --isa)
        "cpu_isa": cpu_isa(),
        "isa_caps": {name: os.environ[name] for name in ISA_VARIABLES if name in os.environ},
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
