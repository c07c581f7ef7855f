"""Training throughput: triplets per second for one Semi3-Net training step, per backbone and
image size, with synthetic in-memory input and with the real data loader.

    python benchmarks/bench_train_step.py                  # CPU: both backbones at 128 and 224 px
    python benchmarks/bench_train_step.py --configs efficientnet_lite0:128 --steps 2 --out /tmp/t.json
    python benchmarks/bench_train_step.py --device cuda --compile   # on a GPU machine

One step is what ``semi3lib.engine.train.train`` does per batch: forward of the three branches,
the hybrid loss, backward, gradient clipping and an AdamW step, on a batch of B (sketch,
photo, edgemap) triplets. Backbones start from random weights (the time does not depend on
them, and VGG19 has no weights offline). For each (backbone, size) and precision mode:

- **synthetic**: one batch of random tensors kept in memory: the model's own speed.
- **loader**: batches from ``TrainTriplets`` on sketchy-mini through a ``DataLoader`` with
  the training config's workers (2), edgemap cache warmed first: what training sees. The
  time spent waiting for the next batch is reported as ``data_wait``.
- **loader_only**: the same loader iterated without training: how many triplets per second
  the data pipeline can deliver. If it delivers fewer than the synthetic step consumes, the
  data pipeline is the bottleneck.

The median over ``--steps`` timed steps after ``--warmup`` untimed ones is reported; a
configuration whose steps take longer than ``--slow-seconds`` (VGG19 at 224 px: ~18 s per
step on 2 CPU cores) gets one warm-up step and ``--slow-steps`` timed steps only, and says so.

Modes: on CPU, fp32 eager in NCHW and in channels_last (the training loop's default; bf16
autocast is not used on CPU: on this project's AVX-512 EPYC without AMX it was slower than
fp32 channels_last, 2.7 s against 1.8 s per step of 32 triplets at 128 px). With
``--device cuda``: fp32 eager, bf16 autocast + channels_last, and with ``--compile`` the
latter under ``torch.compile``; GPU utilisation is sampled with ``torch.cuda.utilization``
where available.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_result  # noqa: E402

from semi3lib.config import LossConfig, ModelConfig, load_config  # noqa: E402
from semi3lib.models.losses import HybridLoss  # noqa: E402
from semi3lib.models import RandomInitWarning, Semi3Net  # noqa: E402
from semi3lib.engine.train import batch_to_device  # noqa: E402

NUM_CLASSES = 125  # Sketchy's categories
GRAD_CLIP = 5.0  # as in configs/sketchy-mini-cpu.yaml
DEFAULT_CONFIGS = "efficientnet_lite0:128,efficientnet_lite0:224,vgg19:128,vgg19:224"
DATA_CONFIG = "configs/sketchy-mini-cpu.yaml"
NO_GPU_REASON = ("no GPU on the machine these results were measured on; the GPU modes (fp32 eager, "
                 "bf16 autocast + channels_last, optional torch.compile) run with --device cuda")


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


def real_loader(size: int, batch: int, workers: int, device: torch.device) -> torch.utils.data.DataLoader:
    """Shuffled ``TrainTriplets`` batches of sketchy-mini at ``size`` px, as training builds
    them (``configs/sketchy-mini-cpu.yaml``), after filling the edgemap cache."""
    from semi3lib.data.experiment import load_experiment_data, train_dataset, with_overrides

    cfg = load_config(DATA_CONFIG)
    cfg = with_overrides(cfg, data={"image_size": size})
    data = load_experiment_data(cfg.data)
    dataset = train_dataset(data, cfg.data, seed=0)
    dataset.loader.edges.precompute([data.index.photos[j].path for j in data.split.train_photos],
                                    progress=False)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
        generator=torch.Generator().manual_seed(0), pin_memory=device.type == "cuda",
        persistent_workers=False)


class Stepper:
    """One training step of a fresh model: forward (under bf16 autocast if asked), hybrid
    loss in fp32, backward, gradient clipping, AdamW."""

    def __init__(self, backbone: str, device: torch.device, amp: bool, channels_last: bool,
                 compile_model: bool) -> None:
        torch.manual_seed(0)
        model = Semi3Net(ModelConfig(backbone=backbone, pretrained=False), NUM_CLASSES).to(device).train()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.forward = torch.compile(model) if compile_model else model
        self.loss_fn = HybridLoss(LossConfig())
        self.optimizer = torch.optim.AdamW(model.parameter_groups(), lr=1e-4)
        self.device, self.amp, self.channels_last = device, amp, channels_last

    def __call__(self, batch: dict[str, Any]) -> None:
        batch = batch_to_device(batch, self.device, self.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            outputs = self.forward(sketch=batch["sketch"], photo=batch["photo"], edge=batch["edge"])
        loss, _ = self.loss_fn({k: v.float() if torch.is_tensor(v) else v for k, v in outputs.items()}, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), GRAD_CLIP)
        self.optimizer.step()


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
              slow_seconds: float, batch: int) -> dict[str, Any]:
    """Time ``steps`` steps after ``warmup`` untimed ones, each including the wait for its
    batch (also reported on its own). Slow steps (> ``slow_seconds``) end the warm-up after
    one step and the timing after ``slow_steps``."""
    device = step.device
    warm = []
    for _ in range(warmup):
        t0 = time.perf_counter()
        step(next(batches))
        _sync(device)
        warm.append(time.perf_counter() - t0)
        if warm[-1] > slow_seconds:
            break
    times, waits, util = [], [], []
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
    extra: dict[str, Any] = {"data_wait_sec": round(statistics.median(waits), 4)}
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


def modes_for(device: torch.device, compile_model: bool) -> list[dict[str, Any]]:
    if device.type != "cuda":
        return [{"mode": "fp32-eager", "amp": False, "channels_last": False, "compile": False},
                {"mode": "fp32-channels_last", "amp": False, "channels_last": True, "compile": False}]
    modes = [{"mode": "fp32-eager", "amp": False, "channels_last": False, "compile": False},
             {"mode": "bf16-autocast+channels_last", "amp": True, "channels_last": True, "compile": False}]
    if compile_model:
        modes.append({"mode": "bf16-autocast+channels_last+compile", "amp": True, "channels_last": True,
                      "compile": True})
    return modes


def bench_config(backbone: str, size: int, args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    loader = real_loader(size, args.batch, args.workers, device) if not args.synthetic_only else None
    rows = []
    for mode in modes_for(device, args.compile):
        step = Stepper(backbone, device, mode["amp"], mode["channels_last"], mode["compile"])
        fixed = synthetic_batch(args.batch, size)
        row: dict[str, Any] = {"backbone": backbone, "size": size, "batch": args.batch, **mode}
        row["synthetic"] = run_steps(step, iter(lambda: fixed, None), args.warmup, args.steps, args.slow_steps,
                                     args.slow_seconds, args.batch)
        if loader is not None:
            row["loader"] = run_steps(step, _forever(loader), args.warmup, args.steps, args.slow_steps,
                                      args.slow_seconds, args.batch)
            row["loader_slowdown"] = round(row["loader"]["sec_per_step"] / row["synthetic"]["sec_per_step"], 3)
        rows.append(row)
        print(f"{backbone} {size}px {mode['mode']}: synthetic {row['synthetic']['triplets_per_sec']} triplets/s"
              + (f", loader {row['loader']['triplets_per_sec']}" if loader is not None else ""), file=sys.stderr)
        del step
    if loader is not None:
        only = loader_only(loader, args.loader_batches, args.batch)
        fastest = max(r["synthetic"]["triplets_per_sec"] for r in rows)
        for r in rows:
            r["loader_only"] = only
            r["data_pipeline_is_bottleneck"] = only["triplets_per_sec"] < fastest
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated backbone:size pairs")
    parser.add_argument("--batch", type=int, default=16, help="triplets per batch")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (1 if slow)")
    parser.add_argument("--slow-steps", type=int, default=2, help="timed steps when a step is slow")
    parser.add_argument("--slow-seconds", type=float, default=10.0, help="what counts as a slow step")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"DataLoader workers (default: data.num_workers of {DATA_CONFIG})")
    parser.add_argument("--loader-batches", type=int, default=20, help="batches timed for loader_only")
    parser.add_argument("--synthetic-only", action="store_true", help="skip the real data loader")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (CUDA only)")
    parser.add_argument("--out", default=None, help="JSON path (default: results/benchmarks/train_step.json)")
    args = parser.parse_args()
    if args.workers is None:
        args.workers = load_config(DATA_CONFIG).data.num_workers

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", RandomInitWarning)  # random weights are intended here
    logging.getLogger("semi3lib.models.backbones").setLevel(logging.ERROR)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    runs = []
    for item in args.configs.split(","):
        backbone, size = item.split(":")
        runs += bench_config(backbone, int(size), args, device)

    machine = machine_info()
    result = {
        "benchmark": "train_step",
        "command": ("python benchmarks/bench_train_step.py " + " ".join(sys.argv[1:])).strip(),
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "step": "forward (3 branches) + hybrid loss + backward + grad clip 5.0 + AdamW; random-init weights",
        "device": (f"cpu ({torch.get_num_threads()} torch threads)" if device.type == "cpu"
                   else torch.cuda.get_device_name(device)),
        "data": (f"synthetic: one in-memory batch of random tensors; loader: TrainTriplets on sketchy-mini "
                 f"({DATA_CONFIG}, image_size overridden), DataLoader with {args.workers} workers, "
                 f"edgemap cache warm"),
        "runs": runs,
        "gpu": machine["gpu"] if device.type == "cuda" else None,
        "machine": machine,
    }
    if device.type != "cuda":
        result["gpu_reason"] = NO_GPU_REASON
    write_result("train_step", result, args.out)


if __name__ == "__main__":
    main()
