"""Time one Semi3-Net training step (forward + hybrid loss + backward + AdamW step).

A batch is B triplets (sketch, photo, edgemap) of random images; the backbone starts from
random weights (timing does not depend on them, and VGG19 has none offline). Prints a JSON
list, one object per (backbone, size): the median seconds per step over ``--steps`` steps
after ``--warmup`` untimed ones.

    .venv/bin/python benchmarks/bench_train_step.py
    .venv/bin/python benchmarks/bench_train_step.py --configs efficientnet_lite0:128 --steps 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
import warnings

import torch

from semi3lib.config import LossConfig, ModelConfig
from semi3lib.losses import HybridLoss
from semi3lib.models import RandomInitWarning, Semi3Net

NUM_CLASSES = 125  # Sketchy's categories


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_train_step(backbone: str, size: int, batch: int, steps: int, warmup: int,
                    device: torch.device) -> dict:
    torch.manual_seed(0)
    model = Semi3Net(ModelConfig(backbone=backbone, pretrained=False), NUM_CLASSES).to(device).train()
    loss_fn = HybridLoss(LossConfig())
    optimizer = torch.optim.AdamW(model.parameter_groups(), lr=1e-4)
    sketch = torch.rand(batch, 3, size, size, device=device)
    photo = torch.rand(batch, 3, size, size, device=device)
    edge = torch.rand(batch, 1, size, size, device=device)
    labels = torch.randint(NUM_CLASSES, (batch,), device=device)
    targets = {"sketch_label": labels, "photo_label": labels.roll(1),
               "same": (labels == labels.roll(1)).float()}
    times = []
    for i in range(warmup + steps):
        _sync(device)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss, _ = loss_fn(model(sketch=sketch, photo=photo, edge=edge), targets)
        loss.backward()
        optimizer.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    sec = statistics.median(times)
    return {"backbone": backbone, "size": size, "batch": batch, "sec_per_step": round(sec, 3),
            "triplets_per_sec": round(batch / sec, 2), "steps_timed": steps,
            "device": str(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
            # other processes on a shared machine slow CPU steps down: record how busy it was
            "load_avg_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="efficientnet_lite0:224,vgg19:224,efficientnet_lite0:128",
                        help="comma-separated backbone:size pairs")
    parser.add_argument("--batch", type=int, default=16, help="triplets per batch")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", RandomInitWarning)  # random weights are intended here
    logging.getLogger("semi3lib.models.backbones").setLevel(logging.ERROR)
    device = torch.device(args.device)
    results = []
    for item in args.configs.split(","):
        backbone, size = item.split(":")
        results.append(time_train_step(backbone, int(size), args.batch, args.steps, args.warmup, device))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
