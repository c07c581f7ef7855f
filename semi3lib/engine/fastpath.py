"""The training step's optional fast paths, and what a step costs in floating-point operations.

Three switches of ``train`` (all off by default, so a run computes what it always did):

- ``train.cpu_precision``: ``fp32`` (default), ``auto`` (bf16 autocast where the CPU computes
  bf16 natively, fp32 elsewhere) or ``bf16`` (bf16 autocast even where the CPU only emulates
  it). Native means AVX512_BF16 or AMX on x86 (``/proc/cpuinfo`` flags ``avx512_bf16``,
  ``amx_bf16``; torch's own ``torch.cpu._is_avx512_bf16_supported``) or the ``bf16`` feature
  on Arm; without them every bf16 value is converted to fp32 and back, which costs more than
  it saves (measured: an AVX-512 EPYC without AVX512_BF16 ran a step 1.5x slower in bf16).
  On CUDA, ``train.amp`` keeps deciding, as before.
- ``train.compile``: the step calls ``torch.compile`` of the model; the model itself stays the
  plain module, so checkpoints keep their keys (no ``_orig_mod.`` prefix) and evaluation runs
  eager. On CPU the inductor backend needs a C++ compiler, checked before the run starts.
- ``train.fused_optimizer``: the optimiser's fused kernel (``fused=True``), or its for-each
  kernel where this torch has no fused one for the device.

A fourth, ``train.keep_freed_memory``, is on by default since it changes where tensors live, not
what is computed (:mod:`semi3lib.engine.allocator`).

What a run actually used is a :class:`FastPath`, written into every epoch's row of the run's
history (``metrics.jsonl`` and the run record). :func:`count_flops` counts the matrix
FLOPs of a callable (a training step: forward and backward) with torch's
``FlopCounterMode``; the training benchmark divides them by the step's time.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from semi3lib.config import ConfigError, TrainConfig

# CPU feature flags that mean bf16 arithmetic in hardware: x86 (AVX512_BF16, AMX) and Arm.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@dataclass(frozen=True)
class Bf16Support:
    """Whether this CPU computes bf16 natively, and why we think so."""

    native: bool
    reason: str


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (x86 ``flags``, Arm ``Features``);
    empty where the file is missing (macOS, Windows)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_bf16_support(flags: Iterable[str], capability: str | None = None,
                     torch_reports_bf16: bool | None = None) -> Bf16Support:
    """Decide from the CPU's ``flags``, torch's kernel ``capability`` (``AVX2``, ``AVX512``,
    ...) and torch's own AVX512_BF16/AMX check whether bf16 is native. The capability alone
    does not decide: AVX-512 without AVX512_BF16 still emulates bf16."""
    found = sorted(set(flags) & set(BF16_CPU_FLAGS))
    kernels = f"torch's CPU kernels: {capability or 'unknown'}"
    if found:
        return Bf16Support(True, f"native bf16: CPU flags {', '.join(found)} ({kernels})")
    if torch_reports_bf16:
        return Bf16Support(True, f"native bf16: torch reports AVX512_BF16/AMX ({kernels})")
    return Bf16Support(False, f"bf16 not supported natively: no {'/'.join(BF16_CPU_FLAGS)} CPU flag ({kernels}); "
                              "bf16 would be emulated through fp32")


def detect_cpu_bf16() -> Bf16Support:
    """:func:`cpu_bf16_support` for this machine."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    torch_says = any(bool(probe()) for probe in probes if probe is not None)
    return cpu_bf16_support(cpu_flags(), torch.backends.cpu.get_cpu_capability(), torch_says)


@dataclass(frozen=True)
class Precision:
    """The autocast a step runs under: ``dtype`` None means plain fp32."""

    name: str  # "fp32" | "bf16"
    dtype: torch.dtype | None
    reason: str
    emulated: bool = False  # bf16 on a CPU without native bf16


def resolve_precision(train: TrainConfig, device: torch.device,
                      support: Callable[[], Bf16Support] = detect_cpu_bf16) -> Precision:
    """The precision ``train`` asks for on ``device``: ``train.amp`` on CUDA (unchanged),
    ``train.cpu_precision`` on the CPU, fp32 elsewhere."""
    if device.type == "cuda":
        if train.amp:
            return Precision("bf16", torch.bfloat16, "train.amp=true: bf16 autocast on CUDA")
        return Precision("fp32", None, "train.amp=false")
    if device.type != "cpu":
        return Precision("fp32", None, f"no bf16 autocast on {device.type}")
    choice = train.cpu_precision
    if choice == "fp32":
        return Precision("fp32", None, "train.cpu_precision=fp32 (the default)")
    found = support()
    if choice == "auto":
        if found.native:
            return Precision("bf16", torch.bfloat16, f"train.cpu_precision=auto: {found.reason}")
        return Precision("fp32", None, f"train.cpu_precision=auto: {found.reason}")
    return Precision("bf16", torch.bfloat16, f"train.cpu_precision=bf16: {found.reason}", emulated=not found.native)


def compile_unavailable(device: torch.device) -> str | None:
    """Why ``torch.compile``'s default backend cannot run on ``device`` here (None: it can).
    On the CPU, inductor writes C++ and needs a compiler for it."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    if device.type == "cpu":
        try:
            from torch._inductor import config as inductor_config

            # the compilers inductor tries, e.g. (None, "g++"): None is a conda install it does not
            # make by default, the name is $CXX or g++
            configured = inductor_config.cpp.cxx
            configured = configured if isinstance(configured, (tuple, list)) else (configured,)
            names = [c for c in configured if isinstance(c, str)] or ["g++"]
        except Exception:  # private module: its layout may change between versions
            names = ["g++"]
        if not any(shutil.which(name) for name in names):
            return f"no C++ compiler found ({', '.join(dict.fromkeys(names))}): torch.compile's CPU backend needs one"
    return None


def check_fast_paths(train: TrainConfig, device: torch.device) -> None:
    """Refuse, before a run starts, a fast path this machine cannot take (one line naming the
    setting)."""
    if train.compile and (why := compile_unavailable(device)):
        raise ConfigError(f"train.compile=true: {why}; set train.compile=false")


def compiled(module: torch.nn.Module) -> Callable[..., Any]:
    """``torch.compile(module)``: a callable sharing ``module``'s parameters. Keep ``module``
    for state dicts and evaluation: the compiled wrapper's keys carry ``_orig_mod.``."""
    return torch.compile(module)


def make_optimizer(cls: type[torch.optim.Optimizer], groups: list[dict[str, Any]], fused: bool,
                   **kwargs: Any) -> tuple[torch.optim.Optimizer, str]:
    """``cls(groups, **kwargs)``, with its fused kernel when ``fused``; returns the optimiser
    and which implementation it uses (``default``, ``fused``, or ``foreach (no fused kernel
    here: ...)``)."""
    if not fused:
        return cls(groups, **kwargs), "default"
    try:
        return cls(groups, fused=True, **kwargs), "fused"
    except (RuntimeError, ValueError, TypeError) as err:  # no fused kernel for this device or dtype
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        return cls(groups, foreach=True, **kwargs), f"foreach (no fused kernel here: {reason})"


@dataclass(frozen=True)
class FastPath:
    """What a training step ran with: recorded in each epoch's history row."""

    device: str
    precision: str
    precision_reason: str
    bf16_emulated: bool
    channels_last: bool
    compile: bool
    optimizer: str  # e.g. "adamw (default)", "adamw (fused)"
    torch_threads: int
    allocator: str = "not recorded"  # engine.allocator: whether freed memory is kept for the next step

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _conv_backward_flops(grad_out_shape: Any, x_shape: Any, w_shape: Any, _bias: Any, _stride: Any,
                         _padding: Any, _dilation: Any, transposed: bool, _output_padding: Any, _groups: Any,
                         output_mask: Any, out_shape: Any = None, **_: Any) -> int:
    """A convolution's backward: its input gradient and its weight gradient each cost what the
    forward convolution costs. torch's own formula counts the weight gradient of a grouped
    convolution as if it were dense (groups ignored): 40x too many FLOPs for a step of
    EfficientNet, whose depthwise convolutions have as many groups as channels."""
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def count_flops(step: Callable[[], Any]) -> int:
    """The floating-point operations of one call of ``step``, counted by torch's
    ``FlopCounterMode`` (matrix products and convolutions, forward and backward; a
    multiply-add counts 2) with grouped convolutions' backward counted right (see
    :func:`_conv_backward_flops`). Elementwise work (activations, the optimiser) is not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping={
        torch.ops.aten.convolution_backward: _conv_backward_flops})
    with counter:
        step()
    return int(counter.get_total_flops())


__all__ = ["BF16_CPU_FLAGS", "Bf16Support", "FastPath", "Precision", "check_fast_paths", "compile_unavailable",
           "compiled", "count_flops", "cpu_bf16_support", "cpu_flags", "detect_cpu_bf16", "make_optimizer",
           "resolve_precision"]
