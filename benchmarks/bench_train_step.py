"""Training throughput: triplets per second for one Semi3-Net training step, per backbone,
image size and fast-path mode, against the FLOP rate the machine's dense matrix product reaches.

    python benchmarks/bench_train_step.py                  # CPU: both backbones at 128 and 224 px, every mode
    python benchmarks/bench_train_step.py --configs efficientnet_lite0:128 --batch 32   # the book's run
    python benchmarks/bench_train_step.py --configs efficientnet_lite0:64 --batch 4 --steps 1 \\
        --modes fp32-channels_last,fp32-channels_last+fused_adamw --out /tmp/t.json       # a quick check
    python benchmarks/bench_train_step.py --device cuda --compile   # on a GPU machine

One step is what ``semi3lib.engine.train.train`` does per batch: forward of the three branches,
the hybrid loss, backward, gradient clipping and the optimiser's step (the book config's
AdamW, ``configs/sketchy-mini-cpu.yaml``), on a batch of B (sketch, photo, edgemap) triplets.
Backbones start from random weights (the time does not depend on them, and VGG19 has no
weights offline). For each (backbone, size) and mode:

- **synthetic**: one batch of random tensors kept in memory: the model's own speed.
- **loader** (for ``--loader-modes``): batches from ``TrainTriplets`` on sketchy-mini through a
  ``DataLoader`` with the training config's workers (2), edgemap cache warmed first: what
  training sees. The time spent waiting for the next batch is reported as ``data_wait``.
- **loader_only**: the same loader iterated without training: how many triplets per second
  the data pipeline can deliver. If it delivers fewer than the synthetic step consumes, the
  data pipeline is the bottleneck. ``loader_workers`` (on the baseline row) repeats the
  loader step and the loader alone with 0, 1 and 2 worker processes (``--loader-workers``).
- **FLOPs**: one step is counted once per (backbone, size, batch) with torch's
  ``FlopCounterMode`` (matrix products and convolutions, forward and backward; the same for
  every mode); ``achieved_gflops`` divides them by the synthetic step's time and
  ``gemm_peak_ratio`` by the dense-GEMM rate measured in the same run (a large fp32 ``torch.mm``
  at the mode's thread count; bf16 too where the CPU computes bf16 natively, or on CUDA).

Modes (``--modes``, names joined by ``+``): ``fp32-eager`` (NCHW), ``fp32-channels_last`` (the
training loop's step as it ran before ``train.keep_freed_memory``, with the platform's default
allocator: the baseline every other mode is compared with), ``bf16-autocast``
(bf16 autocast; on a CPU without native bf16 it is timed anyway and labelled emulated), and the
options ``+channels_last``, ``+compile`` (``torch.compile`` of the model; the first step's extra
time is ``compile_seconds``, amortised over the book's run in ``book_run``), ``+fused_adamw``
(``train.fused_optimizer``), ``+threadsN`` (N torch threads instead of ``--threads``) and
``+inplace_relu6`` (the backbone's ReLU6 in place, as timm builds it and as the step ran before
the backbone took it out of place: the comparison for that change) and ``+keep_freed_memory``
(``train.keep_freed_memory``, ``semi3lib.engine.allocator``: glibc keeps freed memory for the
next step instead of unmapping it; the setting cannot be undone within a process, so such a
mode runs in a child process of its own). Every row records ``peak_rss_mb`` (the process's
resident memory, sampled through its steps), and each of its timings ``page_faults_per_step``
(minor faults of the timed steps: memory the kernel had to map in).
``fast_path_ab`` then times the fast path (``--ab-mode``, the helpful switches together) against
the baseline in ``--ab-rounds`` interleaved rounds of fresh processes (baseline, then fast path),
the speed-up being the median of the rounds': a shared machine's load drifts over a run by more
than the effects measured, so the single run's ``speedup_vs_baseline`` is indicative only. A mode
that fails (no C++ compiler for inductor, no fused kernel) is recorded with its ``error``.

The median over ``--steps`` timed steps after ``--warmup`` untimed ones is reported; a
configuration whose steps take longer than ``--slow-seconds`` (VGG19 at 224 px: ~18 s per
step on 2 CPU cores) gets one warm-up step and ``--slow-steps`` timed steps only, and says so.
Emulated bf16 (tens of times slower than fp32 on an AVX2 CPU) is timed on one step, no warm-up,
and skipped (``skipped`` says why) where the baseline step takes over ``--emulated-bf16-limit``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_result  # noqa: E402

from semi3lib.config import ExperimentConfig, ModelConfig, load_config  # noqa: E402
from semi3lib.models.losses import HybridLoss  # noqa: E402
from semi3lib.models import RandomInitWarning, Semi3Net  # noqa: E402
from semi3lib.engine.fastpath import (compile_unavailable, compiled, count_flops,  # noqa: E402
                                      detect_cpu_bf16)
from semi3lib.engine.allocator import keep_freed_memory  # noqa: E402
from semi3lib.engine.train import batch_to_device, build_optimizer_with_kernel, optimiser_update  # noqa: E402

NUM_CLASSES = 125  # Sketchy's categories
DEFAULT_CONFIGS = "efficientnet_lite0:128,efficientnet_lite0:224,vgg19:128,vgg19:224"
DATA_CONFIG = "configs/sketchy-mini-cpu.yaml"  # the book's run: its optimiser, loss, data and epochs
BASELINE = "fp32-channels_last"  # the training step before train.keep_freed_memory, on every device
CPU_MODES = ("fp32-eager", BASELINE, "bf16-autocast+channels_last", f"{BASELINE}+compile",
             f"{BASELINE}+fused_adamw", f"{BASELINE}+threads1", f"{BASELINE}+inplace_relu6",
             f"{BASELINE}+keep_freed_memory")
# The switches that help, together. On the CPU that is the training's default step, which
# computes exactly what the baseline computes (tests/test_allocator.py): fused AdamW is left out,
# its updates being rounded differently (tests/test_fastpath.py).
FAST_PATH = {"cpu": f"{BASELINE}+keep_freed_memory",
             "cuda": "bf16-autocast+channels_last+fused_adamw"}
CUDA_MODES = ("fp32-eager", "bf16-autocast+channels_last")
CUDA_COMPILE_MODE = "bf16-autocast+channels_last+compile"
NO_GPU_REASON = ("no GPU on the machine these results were measured on; the GPU modes (fp32 eager, "
                 "bf16 autocast + channels_last, optional torch.compile) run with --device cuda")


@dataclass(frozen=True)
class Mode:
    """One way of running the step, parsed from its name (see the module docstring)."""

    name: str
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False
    fused: bool = False
    threads: int | None = None  # None: --threads
    inplace_relu6: bool = False  # timm's in-place ReLU6, as the backbone ran before it went out of place
    keep_freed_memory: bool = False  # glibc keeps freed memory (engine.allocator); run in a child process


def parse_mode(name: str) -> Mode:
    """``fp32-eager``, ``fp32-channels_last`` or ``bf16-autocast``, then ``+option`` parts."""
    head, *options = name.split("+")
    heads = {"fp32-eager": {}, "fp32-channels_last": {"channels_last": True}, "bf16-autocast": {"bf16": True}}
    if head not in heads:
        raise ValueError(f"mode {name!r}: starts with one of {', '.join(heads)}")
    fields: dict[str, Any] = dict(heads[head])
    for option in options:
        if option in ("channels_last", "compile"):
            fields[option] = True
        elif option == "fused_adamw":
            fields["fused"] = True
        elif option in ("inplace_relu6", "keep_freed_memory"):
            fields[option] = True
        elif option.startswith("threads") and option[7:].isdigit() and int(option[7:]) > 0:
            fields["threads"] = int(option[7:])
        else:
            raise ValueError(f"mode {name!r}: unknown option {option!r} "
                             "(channels_last, compile, fused_adamw, inplace_relu6, keep_freed_memory, threadsN)")
    return Mode(name=name, **fields)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_batch(batch: int, size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random triplets shaped like ``TrainTriplets`` batches: images (B, 3, S, S) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(NUM_CLASSES, (batch,), generator=g)
    photo_labels = labels.roll(1)
    return {"sketch": torch.rand(batch, 3, size, size, generator=g),
            "photo": torch.rand(batch, 3, size, size, generator=g),
            "edge": torch.rand(batch, 3, size, size, generator=g),
            "sketch_label": labels, "photo_label": photo_labels, "same": (labels == photo_labels).float()}


def book_dataset(size: int) -> Any:
    """``TrainTriplets`` of the book's run (``configs/sketchy-mini-cpu.yaml``) at ``size`` px,
    its edgemap cache filled first."""
    from semi3lib.data.experiment import load_experiment_data, train_dataset, with_overrides

    cfg = with_overrides(load_config(DATA_CONFIG), data={"image_size": size})
    data = load_experiment_data(cfg.data)
    dataset = train_dataset(data, cfg.data, seed=0)
    dataset.loader.edges.precompute([data.index.photos[j].path for j in data.split.train_photos], progress=False)
    return dataset


def real_loader(dataset: Any, batch: int, workers: int, device: torch.device) -> torch.utils.data.DataLoader:
    """Shuffled batches of ``dataset`` as training builds them."""
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
        generator=torch.Generator().manual_seed(0), pin_memory=device.type == "cuda",
        persistent_workers=False)


class Stepper:
    """One training step of a fresh model, as ``engine.train`` runs it: forward (under bf16
    autocast if asked, through ``torch.compile`` if asked), hybrid loss in fp32, backward,
    gradient clipping, the book config's optimiser (fused if asked)."""

    def __init__(self, backbone: str, device: torch.device, mode: Mode, book: ExperimentConfig) -> None:
        torch.manual_seed(0)
        model = Semi3Net(ModelConfig(backbone=backbone, pretrained=False), NUM_CLASSES).to(device).train()
        for module in model.modules():
            if mode.inplace_relu6 and isinstance(module, torch.nn.ReLU6):
                module.inplace = True
        if mode.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.forward = compiled(model) if mode.compile else model
        self.loss_fn = HybridLoss(book.loss)
        cfg = dataclasses.replace(book, train=dataclasses.replace(book.train, fused_optimizer=mode.fused))
        self.optimizer, self.optimizer_kernel = build_optimizer_with_kernel(model, cfg)
        self.grad_clip = book.train.grad_clip
        self.device, self.amp, self.channels_last = device, mode.bf16, mode.channels_last

    def __call__(self, batch: dict[str, Any]) -> None:
        batch = batch_to_device(batch, self.device, self.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            outputs = self.forward(sketch=batch["sketch"], photo=batch["photo"], edge=batch["edge"])
        loss, _ = self.loss_fn({k: v.float() if torch.is_tensor(v) else v for k, v in outputs.items()}, batch)
        optimiser_update(self.model, self.optimizer, loss, self.grad_clip)


def _summary(step_times: list[float], batch: int, warmup_seconds: float, **extra: Any) -> dict[str, Any]:
    sec = statistics.median(step_times)
    return {"sec_per_step": round(sec, 4), "triplets_per_sec": round(batch / sec, 2),
            "steps_timed": len(step_times), "step_seconds": [round(t, 4) for t in step_times],
            "warmup_seconds_total": round(warmup_seconds, 3), **extra}


def _gpu_utilisation(device: torch.device) -> int | None:
    try:
        return int(torch.cuda.utilization(device)) if device.type == "cuda" else None
    except Exception:  # needs pynvml; absent is fine
        return None


def run_steps(step: Stepper, batches: Iterator[dict[str, Any]], warmup: int, steps: int, slow_steps: int,
              slow_seconds: float, batch: int, first_step: Callable[[Callable[[], None]], None] | None = None,
              compiles: bool = False) -> dict[str, Any]:
    """Time ``steps`` steps after ``warmup`` untimed ones, each including the wait for its
    batch (also reported on its own). Slow steps (> ``slow_seconds``) end the warm-up after one
    step and the timing after ``slow_steps``; with ``compiles`` the first step does not count
    as slow (it compiles; and is never timed). ``first_step``, if given, runs the first step (to
    count its FLOPs; it then is a warm-up step even with ``warmup`` 0)."""
    device = step.device
    warm = []
    for i in range(max(warmup, 1 if first_step is not None or compiles else 0)):
        item = next(batches)
        t0 = time.perf_counter()
        if i == 0 and first_step is not None:
            first_step(lambda: step(item))
        else:
            step(item)
        _sync(device)
        warm.append(time.perf_counter() - t0)
        if warm[-1] > slow_seconds and (i > 0 or not compiles):
            break
    times, waits, util = [], [], []
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        item = next(batches)
        waits.append(time.perf_counter() - start)
        step(item)
        _sync(device)
        times.append(time.perf_counter() - start)
        if (u := _gpu_utilisation(device)) is not None:
            util.append(u)
        if len(times) >= slow_steps and times[0] > slow_seconds:
            break
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    extra: dict[str, Any] = {"data_wait_sec": round(statistics.median(waits), 4),
                             "page_faults_per_step": round(faults / len(times)),
                             "first_step_seconds": round(warm[0] if warm else times[0], 3)}
    if len(times) < steps:
        extra["note"] = f"slow step (> {slow_seconds:g} s): {len(times)} timed steps only"
    if util:
        extra["gpu_utilisation_pct_median"] = statistics.median(util)
    return _summary(times, batch, sum(warm), warmup_steps=len(warm), **extra)


def loader_only(loader: torch.utils.data.DataLoader, batches: int, batch: int) -> dict[str, Any]:
    """Triplets per second the loader delivers on its own (worker start-up excluded)."""
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    sec = (time.perf_counter() - start) / batches
    return {"sec_per_batch": round(sec, 4), "triplets_per_sec": round(batch / sec, 1), "batches_timed": batches}


def _forever(loader: torch.utils.data.DataLoader) -> Iterator[dict[str, Any]]:
    while True:
        yield from loader


def gemm_peak(device: torch.device, dtype: torch.dtype, n: int, repeats: int) -> dict[str, Any]:
    """The best rate of ``repeats`` (n x n) @ (n x n) products in ``dtype`` on ``device``
    after one untimed one: the dense-GEMM peak this machine reaches from torch."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(n, n, generator=g).to(device, dtype)
    b = torch.rand(n, n, generator=g).to(device, dtype)
    torch.mm(a, b)
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return {"gflops": round(2 * n**3 / best / 1e9, 1), "n": n, "dtype": str(dtype).removeprefix("torch."),
            "threads": torch.get_num_threads() if device.type == "cpu" else None, "best_seconds": round(best, 5)}


class GemmPeaks:
    """The fp32 (and, where native, bf16) GEMM peak, measured once per thread count."""

    def __init__(self, device: torch.device, n: int, repeats: int, bf16_native: bool, bf16_reason: str) -> None:
        self.device, self.n, self.repeats = device, n, repeats
        self.bf16_native, self.bf16_reason = bf16_native, bf16_reason
        self._peaks: dict[tuple[str, int], dict[str, Any]] = {}

    def get(self, dtype: torch.dtype) -> dict[str, Any]:
        key = (str(dtype), torch.get_num_threads())
        if key not in self._peaks:
            if dtype == torch.bfloat16 and not self.bf16_native:
                self._peaks[key] = {"gflops": None, "dtype": "bfloat16", "reason": self.bf16_reason}
            else:
                self._peaks[key] = gemm_peak(self.device, dtype, self.n, self.repeats)
                print(f"GEMM peak {key[0]} {key[1]} threads: {self._peaks[key]['gflops']} GFLOP/s", file=sys.stderr)
        return self._peaks[key]

    def measured(self) -> list[dict[str, Any]]:
        return list(self._peaks.values())


class MemoryWatch:
    """Peak resident memory of the process over a block, sampled every few milliseconds."""

    PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def __init__(self) -> None:
        self.peak_bytes, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> int:
        try:
            with open("/proc/self/statm") as statm:
                return int(statm.read().split()[1]) * self.PAGE
        except OSError:  # not Linux: the process's peak so far (ru_maxrss: bytes on macOS, KiB elsewhere)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return peak if sys.platform == "darwin" else peak * 1024

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_bytes = max(self.peak_bytes, self._rss())

    def __enter__(self) -> "MemoryWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._rss())

    @property
    def peak_mb(self) -> float:
        return round(self.peak_bytes / 2**20, 1)


class Threads:
    """``torch.set_num_threads(n)`` for a block (None: leave as is)."""

    def __init__(self, n: int | None) -> None:
        self.n, self.before = n, torch.get_num_threads()

    def __enter__(self) -> None:
        if self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: Any) -> None:
        torch.set_num_threads(self.before)


def _error_text(err: BaseException) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0][:300] if lines else ''}"


def modes_for(device: torch.device, compile_model: bool) -> list[str]:
    """The default modes: every CPU fast path, or the GPU's precision modes (+ compile)."""
    if device.type != "cuda":
        return list(CPU_MODES)
    return [*CUDA_MODES, *([CUDA_COMPILE_MODE] if compile_model else [])]


def _flop_fields(row: dict[str, Any], flops: int | None, peaks: GemmPeaks, mode: Mode) -> None:
    """Achieved GFLOP/s of the synthetic step and its ratio to the GEMM peak(s)."""
    if not flops:
        return
    sec = row["synthetic"]["sec_per_step"]
    achieved = flops / sec / 1e9
    row["flops_per_step"] = flops
    row["achieved_gflops"] = round(achieved, 2)
    fp32 = peaks.get(torch.float32)
    row["gemm_peak_gflops"] = fp32["gflops"]
    row["gemm_peak_ratio"] = round(achieved / fp32["gflops"], 4)
    if mode.bf16:
        bf16 = peaks.get(torch.bfloat16)
        row["bf16_gemm_peak_gflops"] = bf16["gflops"]
        row["bf16_gemm_peak_ratio"] = round(achieved / bf16["gflops"], 4) if bf16["gflops"] else None


def _book_run(row: dict[str, Any], baseline: dict[str, Any] | None, book: ExperimentConfig,
              steps_per_epoch: int | None, batch: int) -> dict[str, Any]:
    """What compiling costs and saves over the book's run (its epochs and steps per epoch)."""
    compile_s = max(0.0, row["synthetic"]["first_step_seconds"] - row["synthetic"]["sec_per_step"])
    out: dict[str, Any] = {"compile_seconds": round(compile_s, 1), "config": DATA_CONFIG, "epochs": book.train.epochs,
                           "batch": book.train.batch_size, "steps_per_epoch": steps_per_epoch}
    if batch != book.train.batch_size:
        out["note"] = f"step times measured at batch {batch}, the book trains with {book.train.batch_size}"
    if steps_per_epoch is None or baseline is None or "synthetic" not in baseline:
        return out
    steps = book.train.epochs * steps_per_epoch
    saved = baseline["synthetic"]["sec_per_step"] - row["synthetic"]["sec_per_step"]
    out.update(steps=steps, saved_seconds_per_step=round(saved, 4),
               amortised_compile_seconds_per_step=round(compile_s / steps, 4),
               net_seconds_saved_over_run=round(steps * saved - compile_s, 1),
               break_even_steps=round(compile_s / saved) if saved > 0 else None)
    return out


@dataclass
class Bench:
    """What every configuration shares: arguments, device, book config, GEMM peaks."""

    args: argparse.Namespace
    device: torch.device
    book: ExperimentConfig
    peaks: GemmPeaks
    bf16_native: bool
    bf16_reason: str
    compile_error: str | None


def bench_mode(bench: Bench, backbone: str, size: int, mode: Mode, loader: Any, count: bool,
               baseline_seconds: float | None = None) -> tuple[dict, int | None]:
    """One mode's row (synthetic, and the real loader if ``loader``); counts the step's
    FLOPs on its first warm-up step when ``count``. Emulated bf16 is skipped where the
    baseline's step (``baseline_seconds``, when measured) is over ``--emulated-bf16-limit``.
    Returns (row, FLOPs or None)."""
    args, device = bench.args, bench.device
    row: dict[str, Any] = {"backbone": backbone, "size": size, "batch": args.batch, "mode": mode.name,
                           "amp": mode.bf16, "channels_last": mode.channels_last, "compile": mode.compile,
                           "fused_optimizer": mode.fused, "threads": mode.threads or args.threads}
    if mode.bf16 and device.type == "cpu":
        row["precision"] = {"name": "bf16", "native": bench.bf16_native, "reason": bench.bf16_reason}
        row["bf16_emulated"] = not bench.bf16_native
    if mode.compile and bench.compile_error:
        row["error"] = bench.compile_error
        return row, None
    if mode.keep_freed_memory and not args.in_process:
        return _in_child(bench, backbone, size, mode, row, with_loader=loader is not None), None
    limit = args.emulated_bf16_limit
    if row.get("bf16_emulated") and baseline_seconds is not None and baseline_seconds > limit:
        row["skipped"] = (f"emulated bf16 not timed: the fp32 step takes {baseline_seconds:.1f} s "
                          f"(> --emulated-bf16-limit {limit:g} s) and emulation is tens of times slower")
        return row, None
    flops: list[int] = []
    first = (lambda fn: flops.append(count_flops(fn))) if count else None
    warmup, steps = args.warmup, args.steps
    if row.get("bf16_emulated"):  # tens of times slower than fp32 on such a CPU: one step tells
        warmup, steps, first = 0, 1, None
    try:
        with Threads(mode.threads):
            if mode.keep_freed_memory:
                row["allocator"] = str(keep_freed_memory())
            step = Stepper(backbone, device, mode, bench.book)
            row["optimizer"] = step.optimizer_kernel
            fixed = synthetic_batch(args.batch, size)
            with MemoryWatch() as memory:
                row["synthetic"] = run_steps(step, iter(lambda: fixed, None), warmup, steps, args.slow_steps,
                                             args.slow_seconds, args.batch, first_step=first, compiles=mode.compile)
            row["peak_rss_mb"] = memory.peak_mb
            if row.get("bf16_emulated"):
                row["synthetic"]["note"] = "one step, timed without warm-up"
            if loader is not None:
                row["loader"] = run_steps(step, _forever(loader), args.warmup, args.steps, args.slow_steps,
                                          args.slow_seconds, args.batch)
                row["loader_slowdown"] = round(row["loader"]["sec_per_step"] / row["synthetic"]["sec_per_step"], 3)
            del step
    except Exception as err:  # a mode this machine cannot run is a result, not a crash
        row.pop("synthetic", None)
        row["error"] = _error_text(err)
    return row, (flops[0] if flops else None)


def _in_child(bench: Bench, backbone: str, size: int, mode: Mode, row: dict[str, Any],
              with_loader: bool) -> dict[str, Any]:
    """Run ``mode`` (which changes the allocator for good) in a child process of this script
    (with the real loader too if ``with_loader``) and take its row; its FLOP fields are filled
    in here, as for any row."""
    args = bench.args
    data = ["--loader-modes", mode.name, "--workers", str(args.workers)] if with_loader else ["--synthetic-only"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "child.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--configs", f"{backbone}:{size}",
                   "--batch", str(args.batch), "--modes", mode.name, *data, "--loader-workers", "",
                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--slow-steps", str(args.slow_steps),
                   "--slow-seconds", str(args.slow_seconds), "--threads", str(args.threads), "--gemm-size", "256",
                   "--device", args.device, "--in-process", "--out", str(out)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            return {**row, "error": f"child process failed ({done.returncode}): {done.stderr.strip()[-500:]}"}
        child = json.loads(out.read_text())["runs"][0]
    keep = ("optimizer", "allocator", "synthetic", "loader", "loader_slowdown", "peak_rss_mb", "error")
    return {**row, **{k: child[k] for k in keep if k in child}, "process": "child (the allocator setting cannot be undone)"}


def fast_path_ab(bench: Bench, backbone: str, size: int, fast: Mode, rounds: int) -> dict[str, Any]:
    """The fast path against the baseline, robust to a shared machine's drift: ``rounds``
    rounds, each a fresh process of the baseline and then one of ``fast`` (synthetic batch), so
    both sides of a round see the same background load; the verdict is the median of the
    rounds' speed-ups. Fresh processes also give ``+keep_freed_memory`` its own process."""
    lines, pair = [], {}
    for i in range(rounds):
        pair = {}
        for side, mode in (("baseline", parse_mode(BASELINE)), ("fast", fast)):
            row = _in_child(bench, backbone, size, mode, {}, with_loader=False)
            if "synthetic" not in row:
                return {"mode": fast.name, "backbone": backbone, "size": size, "error": row.get("error", "no timing")}
            pair[side] = row
        lines.append({"round": i + 1,
                      **{f"{side} s/step": pair[side]["synthetic"]["sec_per_step"] for side in pair},
                      **{f"{side} page faults/step": pair[side]["synthetic"]["page_faults_per_step"] for side in pair},
                      **{f"{side} peak RSS MB": pair[side]["peak_rss_mb"] for side in pair},
                      "speed-up": round(pair["baseline"]["synthetic"]["sec_per_step"]
                                        / pair["fast"]["synthetic"]["sec_per_step"], 3)})
        print(f"{backbone} {size}px fast path round {i + 1}: {lines[-1]}", file=sys.stderr)
    return {"mode": fast.name, "backbone": backbone, "size": size, "batch": bench.args.batch, "rounds": lines,
            "median_speedup": statistics.median(line["speed-up"] for line in lines),
            "optimizer": pair["fast"].get("optimizer"), "allocator": pair["fast"].get("allocator")}


def loader_sweep(bench: Bench, backbone: str, size: int, dataset: Any, rows: list[dict[str, Any]]) -> None:
    """Loader alone (and the baseline step with the loader) per worker count, on the baseline row."""
    args, device = bench.args, bench.device
    sweep: dict[str, Any] = {}
    for workers in args.loader_workers:
        loader = real_loader(dataset, args.batch, workers, device)
        entry: dict[str, Any] = {"loader_only": loader_only(loader, args.loader_batches, args.batch)}
        baseline = next((r for r in rows if r["mode"] == BASELINE and "synthetic" in r), None)
        if baseline is not None:
            if workers == args.workers and "loader" in baseline:
                entry["step"] = baseline["loader"]
            else:
                step = Stepper(backbone, device, parse_mode(BASELINE), bench.book)
                entry["step"] = run_steps(step, _forever(loader), args.warmup, args.steps, args.slow_steps,
                                          args.slow_seconds, args.batch)
        sweep[str(workers)] = entry
        print(f"{backbone} {size}px loader, {workers} workers: {entry['loader_only']['triplets_per_sec']} triplets/s"
              + (f", baseline step {entry['step']['triplets_per_sec']}" if "step" in entry else ""), file=sys.stderr)
    target = next((r for r in rows if r["mode"] == BASELINE), rows[0] if rows else None)
    if target is not None:
        target["loader_workers"] = sweep


def bench_config(bench: Bench, backbone: str, size: int) -> list[dict[str, Any]]:
    args, device = bench.args, bench.device
    dataset = book_dataset(size) if not args.synthetic_only else None
    loader = None
    if dataset is not None:
        loader = real_loader(dataset, args.batch, args.workers, device)
    rows: list[dict[str, Any]] = []
    flops: int | None = None
    for mode in args.modes:
        with_loader = loader if (args.loader_modes == "all" or mode.name in args.loader_modes) else None
        baseline_seconds = next((r["synthetic"]["sec_per_step"] for r in rows
                                 if r["mode"] == BASELINE and "synthetic" in r), None)
        row, counted = bench_mode(bench, backbone, size, mode, with_loader, count=flops is None and not mode.compile,
                                  baseline_seconds=baseline_seconds)
        flops = flops or counted
        rows.append(row)
        if "synthetic" not in row:
            print(f"{backbone} {size}px {mode.name}: {row.get('error') or row.get('skipped')}", file=sys.stderr)
            continue
        print(f"{backbone} {size}px {mode.name}: synthetic {row['synthetic']['triplets_per_sec']} triplets/s"
              + (f", loader {row['loader']['triplets_per_sec']}" if "loader" in row else ""), file=sys.stderr)
    if flops is None and any("synthetic" in r for r in rows):  # every mode compiled: count an eager step
        step = Stepper(backbone, device, parse_mode(BASELINE), bench.book)
        fixed = synthetic_batch(args.batch, size)
        flops = count_flops(lambda: step(fixed))
    baseline = next((r for r in rows if r["mode"] == BASELINE and "synthetic" in r), None)
    steps_per_epoch = len(dataset) // bench.book.train.batch_size if dataset is not None else bench.args.book_steps
    for row, mode in zip(rows, args.modes):
        if "synthetic" not in row:
            continue
        with Threads(mode.threads):
            _flop_fields(row, flops, bench.peaks, mode)
        if baseline is not None:
            base_seconds = baseline["synthetic"]["sec_per_step"]
            row["speedup_vs_baseline"] = round(base_seconds / row["synthetic"]["sec_per_step"], 3)
        if mode.compile:
            row["book_run"] = _book_run(row, baseline, bench.book, steps_per_epoch, args.batch)
    if dataset is not None:
        only = loader_only(loader, args.loader_batches, args.batch)
        timed = [r for r in rows if "synthetic" in r]
        fastest = max((r["synthetic"]["triplets_per_sec"] for r in timed), default=0.0)
        for r in timed:
            r["loader_only"] = only
            r["data_pipeline_is_bottleneck"] = only["triplets_per_sec"] < fastest
        if args.loader_workers:
            loader_sweep(bench, backbone, size, dataset, rows)
    return rows


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated backbone:size pairs")
    parser.add_argument("--batch", type=int, default=16, help="triplets per batch (the book trains with 32)")
    parser.add_argument("--modes", default=None,
                        help=f"comma-separated modes (default on CPU: {','.join(CPU_MODES)})")
    parser.add_argument("--loader-modes", default=f"fp32-eager,{BASELINE},{BASELINE}+keep_freed_memory",
                        help="modes also timed with the real loader (comma-separated, or 'all')")
    parser.add_argument("--loader-workers", type=_int_list, default=[0, 1, 2],
                        help="worker counts for the loader sweep on the baseline row ('' to skip)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (1 if slow)")
    parser.add_argument("--slow-steps", type=int, default=2, help="timed steps when a step is slow")
    parser.add_argument("--slow-seconds", type=float, default=10.0, help="what counts as a slow step")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--interop", type=int, default=None, help="torch inter-op threads (set once, at start)")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"DataLoader workers (default: data.num_workers of {DATA_CONFIG})")
    parser.add_argument("--emulated-bf16-limit", type=float, default=3.0,
                        help="skip emulated bf16 where the fp32 channels-last step takes longer (seconds)")
    parser.add_argument("--loader-batches", type=int, default=20, help="batches timed for loader_only")
    parser.add_argument("--synthetic-only", action="store_true", help="skip the real data loader")
    parser.add_argument("--book-steps", type=int, default=None,
                        help="steps per epoch of the book's run when --synthetic-only (else from the data)")
    parser.add_argument("--gemm-size", type=int, default=None, help="n of the n x n GEMM peak (2048 CPU, 8192 CUDA)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--compile", action="store_true",
                        help=f"CUDA: also time {CUDA_COMPILE_MODE} (on CPU the default modes include compile)")
    parser.add_argument("--out", default=None, help="JSON path (default: results/benchmarks/train_step.json)")
    parser.add_argument("--ab-rounds", type=int, default=4,
                        help="interleaved rounds of the fast path against the baseline (0 to skip)")
    parser.add_argument("--ab-mode", default=None,
                        help=f"the fast path of those rounds (default: {FAST_PATH['cpu']}; on CUDA {FAST_PATH['cuda']})")
    parser.add_argument("--in-process", action="store_true",
                        help="run +keep_freed_memory modes in this process (it keeps the setting for good)")
    args = parser.parse_args(argv)
    names = args.modes.split(",") if args.modes else modes_for(torch.device(args.device), args.compile)
    try:
        args.modes = [parse_mode(n.strip()) for n in names if n.strip()]
    except ValueError as err:
        parser.error(str(err))
    args.ab_mode = args.ab_mode or FAST_PATH[args.device]
    if args.loader_modes != "all":
        args.loader_modes = [m.strip() for m in args.loader_modes.split(",") if m.strip()]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    book = load_config(DATA_CONFIG)
    if args.workers is None:
        args.workers = book.data.num_workers
    if args.interop:
        torch.set_num_interop_threads(args.interop)  # only before any inter-op work: first thing
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", RandomInitWarning)  # random weights are intended here
    logging.getLogger("semi3lib.models.backbones").setLevel(logging.ERROR)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    if device.type == "cuda":
        bf16_native = torch.cuda.is_bf16_supported()
        bf16_reason = (f"CUDA bf16 {'supported' if bf16_native else 'not supported'} "
                       f"by {torch.cuda.get_device_name(device)}")
    else:
        support = detect_cpu_bf16()
        bf16_native, bf16_reason = support.native, support.reason
    needs_compile = any(m.compile for m in args.modes)
    compile_error = compile_unavailable(device) if needs_compile else None
    peaks = GemmPeaks(device, args.gemm_size or (8192 if device.type == "cuda" else 2048), 5, bf16_native, bf16_reason)
    bench = Bench(args, device, book, peaks, bf16_native, bf16_reason, compile_error)
    peaks.get(torch.float32)
    peaks.get(torch.bfloat16)
    runs, ab = [], []
    for item in args.configs.split(","):
        backbone, size = item.split(":")
        runs += bench_config(bench, backbone, int(size))
        if args.ab_rounds and not args.in_process:
            ab.append(fast_path_ab(bench, backbone, int(size), parse_mode(args.ab_mode), args.ab_rounds))

    machine = machine_info()
    config = {k: v for k, v in vars(args).items() if k != "out"}
    config["modes"] = [m.name for m in args.modes]
    result = {
        "benchmark": "train_step",
        "command": " ".join(["python benchmarks/bench_train_step.py", *(sys.argv[1:] if argv is None else argv)]),
        "config": config,
        "step": (f"forward (3 branches) + hybrid loss + backward + grad clip {book.train.grad_clip} + "
                 f"{book.train.optimizer} ({DATA_CONFIG}); random-init weights"),
        "device": (f"cpu ({torch.get_num_threads()} torch threads)" if device.type == "cpu"
                   else torch.cuda.get_device_name(device)),
        "data": (f"synthetic: one in-memory batch of random tensors; loader: TrainTriplets on sketchy-mini "
                 f"({DATA_CONFIG}, image_size overridden), DataLoader with {args.workers} workers, "
                 f"edgemap cache warm"),
        "baseline_mode": BASELINE,
        "flops": ("torch.utils.flop_counter.FlopCounterMode on one real step (matrix products and convolutions, "
                  "forward + backward; elementwise work and the optimiser not counted)"),
        "gemm_peak": {"fp32": peaks.get(torch.float32), "bf16": peaks.get(torch.bfloat16),
                      "measured": peaks.measured()},
        "bf16": {"native": bf16_native, "reason": bf16_reason},
        "compile_backend": {"available": compile_error is None if needs_compile else None, "error": compile_error,
                            "cxx": shutil.which("g++")},
        "threads": {"intra": args.threads, "interop": torch.get_num_interop_threads()},
        "runs": runs,
        **({"fast_path_ab": ab} if ab else {}),
        "gpu": machine["gpu"] if device.type == "cuda" else None,
        "machine": machine,
    }
    if device.type != "cuda":
        result["gpu_reason"] = NO_GPU_REASON
    write_result("train_step", result, args.out)


if __name__ == "__main__":
    main()
