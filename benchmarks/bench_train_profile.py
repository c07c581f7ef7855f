"""Where one training step's CPU time goes: the book's step under ``torch.profiler``, its
operators' own (self) CPU time summed into the kinds of work a reader can act on.

    python benchmarks/bench_train_profile.py                          # the book's step, 1 thread
    python benchmarks/bench_train_profile.py --threads 2 --out /tmp/p.json

The step is ``bench_train_step``'s (``Stepper``: a fresh Semi3-Net, one synthetic batch, the
hybrid loss, backward, gradient clipping, the book config's optimiser) in ``--mode`` (by default
the CPU fast path: channels-last with freed memory kept, the training's default step). It runs
``--warmup`` times unprofiled, then ``--steps`` times under the profiler; times are per step.

The kinds: convolutions by their weight's shape (depthwise: one input channel per group and a
kernel over 1x1; pointwise: 1x1; dense: the rest), forward and backward apart; batch norm
forward and backward; the ReLU6 activations (``clamp`` forward, ``hardtanh_backward``); matrix
products (the heads' linear layers); every operator inside the optimiser's step; the rest.

The heaviest depthwise-convolution backward (by its shape) is then timed on its own, its two
gradients apart (``aten::convolution_backward`` with one output each), to show which of them
the time goes to.

One torch thread by default: with more, a parallel region waits for every thread at its end,
and on a shared machine a thread the kernel has put aside turns that wait into seconds an
operator did not spend working. Results go to ``results/benchmarks/train_profile.json``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_result  # noqa: E402
from bench_train_step import DATA_CONFIG, FAST_PATH, Stepper, parse_mode, synthetic_batch  # noqa: E402

from semi3lib.config import load_config  # noqa: E402
from semi3lib.engine.allocator import keep_freed_memory  # noqa: E402
from semi3lib.engine.train import batch_to_device  # noqa: E402
from semi3lib.models.backbones import RandomInitWarning  # noqa: E402

CONV_KINDS = ("depthwise", "pointwise", "dense")
KINDS = (*(f"{kind} conv, {way}" for kind in CONV_KINDS for way in ("forward", "backward")),
         "batch norm, forward", "batch norm, backward", "ReLU6, forward and backward",
         "matrix products", "optimiser step", "everything else")
# Forward convolution operators, outermost first: their weight is their second input.
_CONV_FORWARD = ("aten::conv2d", "aten::convolution", "aten::_convolution", "aten::mkldnn_convolution",
                 "aten::_slow_conv2d_forward", "aten::thnn_conv2d", "aten::_nnpack_spatial_convolution")
_BN_FORWARD = ("aten::batch_norm", "aten::_batch_norm_impl_index", "aten::native_batch_norm",
               "aten::_native_batch_norm_legit", "aten::_native_batch_norm_legit_no_training",
               "aten::_batch_norm_with_update")
_BN_BACKWARD = ("aten::native_batch_norm_backward", "aten::batch_norm_backward")
_RELU6 = ("aten::hardtanh", "aten::hardtanh_", "aten::clamp", "aten::clamp_", "aten::hardtanh_backward",
          "aten::relu6")
_MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear")


def conv_kind(weight_shape: Sequence[int]) -> str:
    """``depthwise`` (one input channel a group, a kernel larger than 1x1), ``pointwise`` (1x1)
    or ``dense``, from a 2-d convolution's weight shape (out, in/groups, kh, kw)."""
    if len(weight_shape) != 4:
        return "dense"
    _, per_group, kh, kw = weight_shape
    if kh == kw == 1:
        return "pointwise"
    return "depthwise" if per_group == 1 else "dense"


def kind_of(name: str, shapes: Sequence[Sequence[int]], in_optimizer: bool) -> str:
    """The kind of work (one of :data:`KINDS`) of one profiled operator: its name, its inputs'
    shapes (empty when the profiler did not record them) and whether it ran inside the
    optimiser's step."""
    if in_optimizer:
        return "optimiser step"
    if name == "aten::convolution_backward" and len(shapes) > 2:
        return f"{conv_kind(shapes[2])} conv, backward"
    if name in _CONV_FORWARD and len(shapes) > 1:
        return f"{conv_kind(shapes[1])} conv, forward"
    if name in _BN_FORWARD:
        return "batch norm, forward"
    if name in _BN_BACKWARD:
        return "batch norm, backward"
    if name in _RELU6:
        return "ReLU6, forward and backward"
    if name in _MATMUL:
        return "matrix products"
    return "everything else"


def _inside_optimizer(event: Any) -> bool:
    parent = event
    while parent is not None:
        if parent.name.startswith("Optimizer.step"):
            return True
        parent = parent.cpu_parent
    return False


def breakdown(events: Iterable[Any], steps: int) -> dict[str, Any]:
    """Self CPU milliseconds a step per kind of work, and the ten heaviest operator shapes,
    from a profile's function events (``prof.events()``) over ``steps`` steps."""
    per_kind: dict[str, float] = defaultdict(float)
    per_shape: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    for event in events:
        if event.device_type != torch.autograd.DeviceType.CPU:
            continue
        ms = event.self_cpu_time_total / 1e3 / steps
        shapes = [list(s) for s in (event.input_shapes or [])]
        per_kind[kind_of(event.name, shapes, _inside_optimizer(event))] += ms
        entry = per_shape[(event.name, str([s for s in shapes if s]))]
        entry[0] += ms
        entry[1] += 1 / steps
    total = sum(per_kind.values())
    kinds = [{"kind": kind, "ms_per_step": round(per_kind.get(kind, 0.0), 2),
              "share": round(per_kind.get(kind, 0.0) / total, 4) if total else 0.0} for kind in KINDS]
    heaviest = sorted(per_shape.items(), key=lambda item: -item[1][0])[:10]
    return {"self_cpu_ms_per_step": round(total, 2), "kinds": kinds,
            "heaviest_operators": [{"operator": name, "input_shapes": shapes, "ms_per_step": round(ms, 2),
                                    "calls_per_step": round(calls, 2)}
                                   for (name, shapes), (ms, calls) in heaviest]}


def _median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1e3, 2)


def depthwise_gradients(model: torch.nn.Module, forward: Callable[[], Any], channels_last: bool,
                        repeats: int = 5) -> dict[str, Any] | None:
    """The depthwise convolution of ``model`` whose backward costs most, each as ``forward()``
    calls it, timed on its own: its input gradient and its weight gradient apart (milliseconds,
    median of ``repeats``); None where the model has none."""
    seen: list[tuple[torch.nn.Conv2d, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append((mod, inp[0].detach())))
             for m in model.modules()
             if isinstance(m, torch.nn.Conv2d) and conv_kind(list(m.weight.shape)) == "depthwise"]
    with torch.no_grad():
        forward()
    for hook in hooks:
        hook.remove()
    if not seen:
        return None
    best = None
    for conv, x in seen:
        out = conv(x).detach()
        grad = torch.randn_like(out)
        args = (grad, x, conv.weight.detach(), None, list(conv.stride), list(conv.padding), list(conv.dilation),
                False, [0, 0], conv.groups)
        backward = lambda mask, a=args: torch.ops.aten.convolution_backward(*a, mask)  # noqa: E731
        grad_input = _median_ms(lambda: backward([True, False, False]), repeats)
        grad_weight = _median_ms(lambda: backward([False, True, False]), repeats)
        if best is None or grad_input + grad_weight > best["grad_input_ms"] + best["grad_weight_ms"]:
            best = {"input_shape": list(x.shape), "weight_shape": list(conv.weight.shape),
                    "stride": list(conv.stride), "channels_last": channels_last,
                    "forward_ms": _median_ms(lambda c=conv, t=x: c(t), repeats),
                    "grad_input_ms": grad_input, "grad_weight_ms": grad_weight}
    return best


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--size", type=int, default=128, help="image size (px)")
    parser.add_argument("--batch", type=int, default=32, help="triplets a step")
    parser.add_argument("--mode", default=FAST_PATH["cpu"], help="a bench_train_step mode (CPU only)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: robust to a shared machine)")
    parser.add_argument("--warmup", type=int, default=2, help="unprofiled steps first")
    parser.add_argument("--steps", type=int, default=3, help="profiled steps")
    parser.add_argument("--out", default=None, help="JSON path (default results/benchmarks/train_profile.json)")
    args = parser.parse_args(argv)
    for name in ("size", "batch", "threads", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    try:
        args.parsed_mode = parse_mode(args.mode)
    except ValueError as err:
        parser.error(str(err))
    if args.parsed_mode.bf16 or args.parsed_mode.compile:
        parser.error(f"--mode {args.mode}: the profile reads eager fp32 operators; bf16 and compile are timed "
                     "by bench_train_step")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    mode = args.parsed_mode
    torch.set_num_threads(mode.threads or args.threads)
    warnings.simplefilter("ignore", RandomInitWarning)  # random weights are intended here
    logging.getLogger("semi3lib.models.backbones").setLevel(logging.ERROR)
    allocator = keep_freed_memory(mode.keep_freed_memory)
    step = Stepper(args.backbone, torch.device("cpu"), mode, load_config(DATA_CONFIG))
    batch = synthetic_batch(args.batch, args.size)
    for _ in range(args.warmup):
        step(batch)
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(args.steps):
            step(batch)
    wall = (time.perf_counter() - start) / args.steps
    found = breakdown(prof.events(), args.steps)
    batch = batch_to_device(batch, torch.device("cpu"), mode.channels_last)  # as the step sees it
    result = {
        "benchmark": "train_profile",
        "command": " ".join(["python benchmarks/bench_train_profile.py", *(sys.argv[1:] if argv is None else argv)]),
        "config": {"backbone": args.backbone, "size": args.size, "batch": args.batch, "mode": args.mode,
                   "threads": torch.get_num_threads(), "warmup": args.warmup, "steps": args.steps},
        "allocator": str(allocator),
        "step": f"bench_train_step's Stepper ({DATA_CONFIG}), one synthetic batch, random-init weights",
        "profiled_wall_seconds_per_step": round(wall, 3),
        **found,
        "heaviest_depthwise_backward": depthwise_gradients(
            step.model, lambda: step.model(sketch=batch["sketch"], photo=batch["photo"], edge=batch["edge"]),
            mode.channels_last),
        "machine": machine_info(),
    }
    write_result("train_profile", result, args.out)


if __name__ == "__main__":
    main()
