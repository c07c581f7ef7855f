"""The training loop: one process or DistributedDataParallel under ``torchrun``.

What a run writes to ``train.out_dir``:
- ``config.yaml`` (the resolved config) and ``split.json`` (reused on resume);
- ``metrics.jsonl`` and ``metrics.csv``: one row per epoch (loss terms, lr, wall time,
  query/validation metrics when evaluated, and ``fast_path``: the precision, memory format,
  compilation and optimiser kernel the steps ran with, see ``engine.fastpath``);
- ``steps.jsonl``: one row every ``train.log_every`` steps and at the end of every epoch
  (epoch, step, lr and the loss terms averaged since the previous row; see :func:`read_steps`);
- ``last.pt`` every epoch and ``best.pt`` on improvement, both written atomically;
- ``embeddings/query-<key>.npz``: the final model's query and gallery embeddings (and
  co-attention weights), read back by ``evaluate.embed_split(..., cache_dir=out_dir)``.

The folder is locked (``.semi3.lock``, an OS file lock) while a process trains in it. One that
already holds a run is continued only with ``resume=True`` and replaced only with
``overwrite=True``; anything else is refused before a file is touched.

Resuming (``resume=True``) restores model, optimiser, scheduler, epoch, history and the
RNG states saved at the end of the last finished epoch, and cuts ``steps.jsonl`` back to that
epoch's last step. Batches are drawn from a permutation seeded by ``(seed, epoch)`` and every
augmentation by ``(seed, epoch, item)``, so with ``train.deterministic`` a run killed at any
point and resumed ends with the same weights, metrics and step log as one that never stopped.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from semi3lib.io import (
    OutputError,
    atomic_write_text,
    clear_run_folder,
    remove_stale_temporaries,
    run_files,
    run_lock,
)
from semi3lib.engine.checkpoints import (
    atomic_torch_save,
    load_checkpoint_file,
    load_initial_weights,
    rng_state,
    model_identity,
    set_rng_state,
)
from semi3lib.engine.device import select_device
from semi3lib.engine.allocator import AllocatorSetting, keep_freed_memory
from semi3lib.engine.fastpath import FastPath, Precision, compiled, make_optimizer, resolve_precision
from semi3lib.config import NOT_WHAT_IS_COMPUTED, ConfigError, ExperimentConfig, load_yaml, save_config
from semi3lib.engine.evaluate import evaluate_model
from semi3lib.engine.prechecks import check_run
from semi3lib.data.experiment import ExperimentData, train_dataset
from semi3lib.data.splits import load_split, save_split
from semi3lib.data.datasets import InstanceTriplets, TrainTriplets
from semi3lib.data.instance import InstanceBatchSampler
from semi3lib.models.losses import HybridLoss
from semi3lib.models import Semi3Net

SELECTION_METRIC = "mAP@all"
INSTANCE_SELECTION_METRIC = "acc@1"  # an instance-level run: is the own photo first?
STEPS_FILE = "steps.jsonl"


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda")
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available() and device_name in ("auto", "cuda"):
        torch.cuda.set_device(info.local_rank)
    return info


class GlobalBatchSampler(Sampler[list[int]]):
    """Seeded global batches, each cut into equal per-rank shards.

    The union over ranks of step t's shards is exactly the single-process batch of step t,
    so DDP on N processes with per-rank batch B/N follows the same trajectory as one
    process with batch B (given mean-reduced losses and fixed BatchNorm statistics).
    """

    def __init__(self, n_items: int, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 max_batches: int | None = None):
        if batch_size % world:
            raise ValueError(f"train.batch_size={batch_size} is not divisible by {world} processes")
        if n_items < batch_size:
            raise ValueError(f"only {n_items} training sketches for train.batch_size={batch_size}")
        self.n_items, self.batch_size, self.seed = n_items, batch_size, seed
        self.rank, self.world, self.max_batches = rank, world, max_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        full = self.n_items // self.batch_size
        return min(full, self.max_batches) if self.max_batches else full

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n_items, generator=generator).tolist()
        shard = self.batch_size // self.world
        for b in range(len(self)):
            batch = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield batch[self.rank * shard:(self.rank + 1) * shard]


def build_optimizer(model: Semi3Net, cfg: ExperimentConfig) -> torch.optim.Optimizer:
    """The config's optimiser over the model's parameter groups (the backbone's learning rate
    scaled), with its fused kernel when ``train.fused_optimizer``."""
    return build_optimizer_with_kernel(model, cfg)[0]


def build_optimizer_with_kernel(model: Semi3Net, cfg: ExperimentConfig) -> tuple[torch.optim.Optimizer, str]:
    """:func:`build_optimizer` and the kernel it runs ("adamw (default)", "adamw (fused)", ...)."""
    t = cfg.train
    groups = []
    for group in model.parameter_groups():
        scale = t.backbone_lr_scale if group["name"] == "backbone" else 1.0
        groups.append({"params": group["params"], "lr": t.lr * scale, "name": group["name"]})
    if t.optimizer == "adamw":
        optimizer, kernel = make_optimizer(torch.optim.AdamW, groups, t.fused_optimizer, lr=t.lr,
                                           weight_decay=t.weight_decay)
    elif t.optimizer == "sgd":
        optimizer, kernel = make_optimizer(torch.optim.SGD, groups, t.fused_optimizer, lr=t.lr, momentum=t.momentum,
                                           weight_decay=t.weight_decay, nesterov=True)
    else:
        raise ValueError(f"unknown train.optimizer {t.optimizer!r} (use adamw or sgd)")
    return optimizer, f"{t.optimizer} ({kernel})"


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: ExperimentConfig, total_steps: int):
    """Per-step learning-rate schedule: ``onecycle`` (linear warm-up, cosine decay),
    ``cosine`` (cosine decay from the start) or ``constant``."""
    t = cfg.train
    total_steps = max(1, total_steps)
    warmup = int(round(t.warmup_fraction * total_steps)) if t.schedule == "onecycle" else 0

    def factor(step: int) -> float:
        if t.schedule == "constant":
            return 1.0
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))

    if t.schedule not in ("onecycle", "cosine", "constant"):
        raise ValueError(f"unknown train.schedule {t.schedule!r} (use onecycle, cosine or constant)")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _freeze_batchnorm(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def batch_to_device(batch: dict[str, Any], device: torch.device, channels_last: bool) -> dict[str, Any]:
    """Every tensor of ``batch`` on ``device``; image batches (4-d) channels-last if asked."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            if channels_last and value.ndim == 4:
                value = value.contiguous(memory_format=torch.channels_last)
        out[key] = value
    return out


def _write_metrics(out_dir: Path, history: list[dict[str, Any]]) -> None:
    atomic_write_text(out_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in history))
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(out_dir / "metrics.csv", buffer.getvalue())


def read_steps(out_dir: str | Path) -> list[dict[str, Any]]:
    """The per-step loss log of a run (``<out_dir>/steps.jsonl``): rows ``{"epoch", "step",
    "lr", "loss_<term>": mean since the previous row}`` in step order; ``[]`` when there is
    none. Under DDP the losses are rank 0's (its shard of each batch)."""
    path = Path(out_dir) / STEPS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _restart_steps_log(out_dir: Path, step: int) -> None:
    """Keep the rows up to ``step`` (where training restarts) and drop what a killed run
    logged after its last checkpoint, so the log matches an uninterrupted run's."""
    path = out_dir / STEPS_FILE
    kept = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the kill: after the checkpoint
            continue
        if row["step"] <= step:
            kept.append(line + "\n")
    atomic_write_text(path, "".join(kept))


def _append_step(out_dir: Path, row: dict[str, Any]) -> None:
    path = out_dir / STEPS_FILE
    try:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")
    except OSError as err:  # a full disk's error names no file
        raise OSError(err.errno, err.strerror, str(path)) from err


@dataclass
class TrainResult:
    out_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    final_metrics: dict[str, float] = field(default_factory=dict)
    model: Semi3Net | None = None
    wall_seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)  # which data it read: DatasetIndex.identity()


def _check_resumable(saved: dict[str, Any], cfg: ExperimentConfig, path: Path) -> None:
    """Refuse to resume a run under a different config: the result would match neither. A key
    the saved config lacks (added to the code later) counts as its default, which the run had."""
    current, defaults = cfg.to_dict(), ExperimentConfig().to_dict()
    diffs = [f"{section}.{key}: {saved.get(section, {}).get(key, defaults[section][key])!r} -> {value!r}"
             for section, values in current.items() if isinstance(values, dict)
             for key, value in values.items()
             if (section, key) not in NOT_WHAT_IS_COMPUTED
             and saved.get(section, {}).get(key, defaults[section][key]) != value]
    if diffs:
        raise ValueError(f"cannot resume {path}: it was trained with a different config ({'; '.join(diffs)}); "
                         "use a new train.out_dir or the same settings")


def _kill_hook(step: int) -> None:
    """Fault injection for the resume test: SIGKILL this process after a given step."""
    target = os.environ.get("SEMI3_DEBUG_KILL_AT_STEP")
    if target is not None and step == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


def prepare_run_folder(out_dir: Path, cfg: ExperimentConfig, resume: bool, overwrite: bool
                       ) -> dict[str, Any] | None:
    """Decide, before anything is written, what happens to a run folder; returns the checkpoint
    to resume from (None: start afresh).

    An empty or new folder starts a run. A folder that holds a run is continued only with
    ``resume`` (under the same config: checked against ``last.pt``, or ``config.yaml`` when the
    run stopped before its first epoch) and replaced only with ``overwrite``; otherwise refused.
    """
    remove_stale_temporaries(out_dir)  # of a process killed mid-write; the lock says none is alive here
    existing = run_files(out_dir)
    if not existing:
        return None
    if overwrite:
        clear_run_folder(out_dir)
        return None
    if not resume:
        raise OutputError(f"{out_dir} already holds a run ({', '.join(existing)}): pass --resume to continue it, "
                          "--overwrite to replace it, or use another train.out_dir")
    last_path = out_dir / "last.pt"
    if last_path.is_file():
        ckpt = load_checkpoint_file(last_path, resume=True)
        _check_resumable(ckpt["config"], cfg, last_path)
        return ckpt
    if (out_dir / "config.yaml").is_file():
        try:
            saved, _ = load_yaml(out_dir / "config.yaml", "run config")
        except ConfigError as err:
            raise OutputError(f"cannot resume {out_dir}: {err}; use --overwrite to replace it") from None
        _check_resumable(saved, cfg, out_dir / "config.yaml")
    return None


def train(cfg: ExperimentConfig, resume: bool = False, progress: bool = True,
          data: ExperimentData | None = None, overwrite: bool = False,
          stop_after_epochs: int | None = None) -> TrainResult:
    """Train ``cfg`` end to end; returns the history and the last evaluation's metrics.

    ``stop_after_epochs`` trains only the first epochs of ``cfg``'s schedule (the learning rate
    follows all ``train.epochs``) and stops without the final evaluation: what a host check
    compares with a recorded run's first epochs (:mod:`semi3lib.study.hosts`).

    Every check the run can fail comes first (:func:`semi3lib.engine.prechecks.check_run`:
    config, data, memory, writable folder), so a refused run creates no folder. The run folder
    ``train.out_dir`` is then locked while this runs (a second process is refused); one that
    already holds a run is continued with ``resume``, replaced with ``overwrite`` and otherwise
    refused, before anything is written (see :func:`prepare_run_folder`).
    """
    dist_info = init_distributed(cfg.train.device)
    out_dir = Path(cfg.train.out_dir)
    device = select_device(cfg.train.device)  # an unavailable device is refused before the folder is touched
    own_split = data is None  # the run keeps its split in split.json (data given by the caller: the caller's)
    # Every check a run can fail, before its folder exists: a refused run leaves nothing behind.
    data = check_run(cfg, data, device, dist_info.world)
    # The run's config names the data it read (not "root: null", which meant "whatever the search found").
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=str(Path(data.index.root).resolve())))
    if not dist_info.is_main:
        return _train(cfg, dist_info, resume, progress, data, None, stop_after_epochs)
    with run_lock(out_dir):
        ckpt = prepare_run_folder(out_dir, cfg, resume, overwrite)
        save_config(cfg, out_dir / "config.yaml")
        if own_split:
            data = _run_split(data, out_dir / "split.json")
        return _train(cfg, dist_info, resume, progress, data, ckpt, stop_after_epochs)


def _run_split(data: ExperimentData, split_file: Path) -> ExperimentData:
    """The run's split: the one a resumed run saved (checked against the files), else
    ``data``'s, saved so that a resumption compares like with like."""
    if split_file.is_file():
        return dataclasses.replace(data, split=load_split(split_file, data.index))
    save_split(data.split, split_file)
    return data


@dataclass
class _Run:
    """What one training process builds before its first step and then works with: the
    device, data, model (and its DDP wrapper), optimiser, schedule, loss and batches."""

    cfg: ExperimentConfig
    dist_info: DistInfo
    device: torch.device
    out_dir: Path
    data: ExperimentData
    model: Semi3Net
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    criterion: HybridLoss
    dataset: TrainTriplets | InstanceTriplets
    sampler: GlobalBatchSampler | InstanceBatchSampler
    loader: DataLoader
    # The module the steps call: ``model`` itself, or its DDP wrapper once resumed (see _train),
    # under torch.compile with train.compile. Checkpoints and evaluation use ``model``.
    train_model: Any
    precision: Precision  # the autocast of the forward pass (train.amp, train.cpu_precision)
    optimizer_kernel: str  # "adamw (default)", "adamw (fused)", ...
    allocator: AllocatorSetting  # train.keep_freed_memory, as applied

    @property
    def fast_path(self) -> FastPath:
        """What the steps run with, recorded in each epoch's history row."""
        t = self.cfg.train
        return FastPath(device=self.device.type, precision=self.precision.name,
                        precision_reason=self.precision.reason, bf16_emulated=self.precision.emulated,
                        channels_last=t.channels_last, compile=t.compile, optimizer=self.optimizer_kernel,
                        torch_threads=torch.get_num_threads(), allocator=str(self.allocator))

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"


@dataclass
class _Progress:
    """Where a run stands between epochs: what a checkpoint saves and a resume restores."""

    start_epoch: int = 0  # the first epoch this process trains (0-based)
    step: int = 0  # optimiser steps taken so far, over all processes that trained this run
    best: float = -math.inf  # the best selection metric so far (see _save_epoch)
    history: list[dict[str, Any]] = field(default_factory=list)  # one row per finished epoch
    final_metrics: dict[str, float] = field(default_factory=dict)  # the last query evaluation
    wall_before: float = 0.0  # seconds spent by the processes this one resumes


def _train(cfg: ExperimentConfig, dist_info: DistInfo, resume: bool, progress: bool,
           data: ExperimentData, ckpt: dict[str, Any] | None, stop_after_epochs: int | None = None) -> TrainResult:
    """The run in five steps: set up, resume, then per epoch train, evaluate and save.

    The order of the steps is the order of random draws and float operations, so a run
    resumed from any epoch's checkpoint continues exactly as one that never stopped.
    """
    run = _set_up(cfg, dist_info, data)
    state = _resume(run, ckpt) if resume else _Progress()
    if dist_info.world > 1:  # after resume: DDP starts every rank from rank 0's (restored) weights
        ids = [run.device.index] if run.device.type == "cuda" else None
        run.train_model = torch.nn.parallel.DistributedDataParallel(run.model, device_ids=ids)
    if cfg.train.compile:  # after DDP's wrapping, as torch recommends; run.model stays the plain module
        run.train_model = compiled(run.train_model)
    started = time.perf_counter()
    if dist_info.is_main:
        _restart_steps_log(run.out_dir, state.step)

    last_epoch = cfg.train.epochs if stop_after_epochs is None else min(cfg.train.epochs, stop_after_epochs)
    for epoch in range(state.start_epoch, last_epoch):
        row = _train_one_epoch(run, state, epoch, progress)
        is_last = epoch + 1 == cfg.train.epochs
        if dist_info.is_main and (is_last or (cfg.train.eval_every and (epoch + 1) % cfg.train.eval_every == 0)):
            state.final_metrics = _evaluate(run, row, is_last)
        row["wall_seconds"] = state.wall_before + time.perf_counter() - started
        state.history.append(row)
        if dist_info.is_main:
            _save_epoch(run, state, epoch)
            if progress:
                print(_epoch_summary(row, cfg.train.epochs), flush=True)
        if dist_info.world > 1:
            dist.barrier()

    return TrainResult(out_dir=run.out_dir, history=state.history, final_metrics=state.final_metrics,
                       model=run.model, wall_seconds=state.history[-1]["wall_seconds"] if state.history else 0.0,
                       data=data.index.identity())


def _set_up(cfg: ExperimentConfig, dist_info: DistInfo, data: ExperimentData) -> _Run:
    """Seed and build model, optimiser, batches, schedule and loss for ``data`` (checked by
    :func:`train`, its split saved by rank 0), in this order: the model's random
    initialisation draws from the generators seeded here."""
    t = cfg.train
    device = select_device(t.device)
    if device.type == "cuda" and dist_info.world > 1:
        device = torch.device("cuda", dist_info.local_rank)
    seed_everything(t.seed, t.deterministic)
    allocator = keep_freed_memory(t.keep_freed_memory)  # before the loader's workers fork: they inherit it
    out_dir = Path(t.out_dir)
    if dist_info.world > 1:  # the other ranks start once rank 0 has prepared the run folder
        dist.barrier()

    model = Semi3Net(cfg.model, num_classes=data.num_classes).to(device)
    if t.init_from:  # checked by check_run (readable; no test photos leaked into it)
        load_initial_weights(model, t.init_from, data.index.categories)
    if t.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer, optimizer_kernel = build_optimizer_with_kernel(model, cfg)
    dataset = train_dataset(data, cfg.data, seed=t.seed)
    sampler = _batch_sampler(dataset, cfg, dist_info)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.data.num_workers,
                        pin_memory=device.type == "cuda")
    scheduler = build_scheduler(optimizer, cfg, total_steps=t.epochs * len(sampler))
    return _Run(cfg=cfg, dist_info=dist_info, device=device, out_dir=out_dir, data=data, model=model,
                optimizer=optimizer, scheduler=scheduler, criterion=HybridLoss(cfg.loss), dataset=dataset,
                sampler=sampler, loader=loader, train_model=model, precision=resolve_precision(t, device),
                optimizer_kernel=optimizer_kernel, allocator=allocator)


def _batch_sampler(dataset: TrainTriplets | InstanceTriplets, cfg: ExperimentConfig, dist_info: DistInfo
                   ) -> GlobalBatchSampler | InstanceBatchSampler:
    """Seeded batches: for instance-level items, batches of several photos per category (the
    in-batch negatives of the instance loss); otherwise a seeded permutation."""
    t = cfg.train
    if isinstance(dataset, InstanceTriplets):
        return InstanceBatchSampler(dataset.item_photos, dataset.item_categories, t.batch_size,
                                    t.instance_photos_per_category, t.seed, dist_info.rank, dist_info.world,
                                    max_batches=t.max_steps_per_epoch)
    return GlobalBatchSampler(len(dataset), t.batch_size, t.seed, dist_info.rank, dist_info.world,
                              max_batches=t.max_steps_per_epoch)


def _resume(run: _Run, ckpt: dict[str, Any] | None) -> _Progress:
    """Continue from ``last.pt`` when there is one: rank 0 was handed the checkpoint it checked
    (:func:`prepare_run_folder`), the other ranks read the same file. Without one (a run
    killed before its first epoch ended) the run starts afresh."""
    if ckpt is None and not run.dist_info.is_main and run.last_path.is_file():
        ckpt = load_checkpoint_file(run.last_path, resume=True)
    if ckpt is None:
        return _Progress()
    state = _restore_checkpoint(run, ckpt)
    if run.dist_info.is_main:
        print(f"resuming {run.out_dir} from epoch {state.start_epoch}", flush=True)
    return state


def _restore_checkpoint(run: _Run, ckpt: dict[str, Any]) -> _Progress:
    """Load a checkpoint dict (as :func:`_save_checkpoint` writes it) into the run's model,
    optimiser, schedule and RNGs; returns where the run stands. The one reader of the format."""
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    rng = ckpt["rng"]  # one state per saving rank; a rank beyond them takes the last
    set_rng_state(rng[min(run.dist_info.rank, len(rng) - 1)])
    start_epoch, history = ckpt["epoch"] + 1, ckpt["history"]
    return _Progress(start_epoch=start_epoch, step=start_epoch * len(run.sampler), best=ckpt["best"],
                     history=history, final_metrics=history[-1].get("query", {}) if history else {},
                     wall_before=history[-1]["wall_seconds"] if history else 0.0)


def _train_one_epoch(run: _Run, state: _Progress, epoch: int, progress: bool) -> dict[str, Any]:
    """Train epoch ``epoch`` (0-based) over its seeded batches, appending to ``steps.jsonl``
    every ``train.log_every`` steps and at the epoch's end; returns the epoch's history row
    (epoch, step, lr and each loss term's mean over the epoch)."""
    t = run.cfg.train
    run.model.train()
    if t.freeze_bn:
        _freeze_batchnorm(run.model)
    run.sampler.set_epoch(epoch)
    run.dataset.set_epoch(epoch)
    n_steps, log_every = len(run.sampler), max(1, t.log_every)
    sums: dict[str, float] = {}
    window: dict[str, float] = {}  # loss sums since the last steps.jsonl row
    window_steps = 0
    replaced = 0  # draws passed over for an unreadable file (the Dataset replaces them; see TrainTriplets)
    bar = tqdm(run.loader, desc=f"epoch {epoch + 1}/{t.epochs}", disable=not (progress and run.dist_info.is_main),
               dynamic_ncols=True, leave=False)
    for batch_no, batch in enumerate(bar, 1):
        replaced += int(batch["replaced"].sum())
        parts = _train_step(run, batch)
        state.step += 1
        for key, value in parts.items():
            value = float(value)
            sums[key] = sums.get(key, 0.0) + value
            window[key] = window.get(key, 0.0) + value
        window_steps += 1
        # The last row of an epoch closes its window, so rows never straddle a checkpoint.
        if state.step % log_every == 0 or batch_no == n_steps:
            if run.dist_info.is_main:
                _append_step(run.out_dir, {"epoch": epoch + 1, "step": state.step, "lr": _current_lr(run),
                                           **{f"loss_{k}": v / window_steps for k, v in window.items()}})
            window, window_steps = {}, 0
        if state.step % log_every == 0 or state.step == 1:
            bar.set_postfix({k: f"{v / (bar.n + 1):.3f}" for k, v in sums.items()})
        _kill_hook(state.step)
    return {"epoch": epoch + 1, "step": state.step, "lr": _current_lr(run),
            **{f"loss_{k}": v / n_steps for k, v in sums.items()},
            **({"unreadable_replaced": replaced} if replaced else {}),
            "fast_path": run.fast_path.to_dict()}


def _train_step(run: _Run, batch: dict[str, Any]) -> dict[str, Any]:
    """One optimiser step on ``batch``; returns the loss terms (tensors) it minimised."""
    t = run.cfg.train
    batch = batch_to_device(batch, run.device, t.channels_last)
    precision = run.precision
    with torch.autocast(run.device.type, dtype=precision.dtype or torch.bfloat16, enabled=precision.dtype is not None):
        outputs = run.train_model(sketch=batch["sketch"], photo=batch["photo"],
                                  edge=batch["edge"] if run.cfg.model.edge_branch else None)
    # The loss is computed in float32 even under bf16 autocast.
    loss, parts = run.criterion({k: v.float() if torch.is_tensor(v) else v for k, v in outputs.items()}, batch)
    optimiser_update(run.model, run.optimizer, loss, t.grad_clip)
    run.scheduler.step()
    return parts


def optimiser_update(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                     grad_clip: float) -> None:
    """The step's update after its forward and loss: gradients of ``loss``, their norm clipped
    to ``grad_clip`` (0: no clipping), one optimiser step. The training and the throughput
    benchmarks both call this, so a benchmark times the step the training takes."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


def _current_lr(run: _Run) -> float:
    """The head's learning rate (the last parameter group; the backbone's may be scaled)."""
    return run.optimizer.param_groups[-1]["lr"]


def _evaluate(run: _Run, row: dict[str, Any], is_last: bool) -> dict[str, float]:
    """Score the model on the query split (and the validation split, when there is one) into
    ``row``; returns the query metrics. After the last epoch the query embeddings are kept in
    the run folder for the notebooks that read ``last.pt`` (see ``evaluate.embed_split``);
    evaluating touches no random state, so it never changes what is learned."""
    metrics = evaluate_model(run.model, run.data, run.cfg.data, which="query", device=run.device,
                             cache_dir=run.out_dir if is_last else None)
    row["query"] = metrics
    if run.data.split.val:
        row["val"] = evaluate_model(run.model, run.data, run.cfg.data, which="val", device=run.device)
    return metrics


def _save_epoch(run: _Run, state: _Progress, epoch: int) -> None:
    """Rank 0, after each epoch: update the best score, write ``last.pt`` (and ``best.pt`` on
    improvement) and the metrics tables. Model selection uses the validation split when there
    is one, never the queries."""
    row = state.history[-1]
    metric = INSTANCE_SELECTION_METRIC if run.data.split.protocol == "instance" else SELECTION_METRIC
    selection = row.get("val", row.get("query", {})).get(metric)
    improved = selection is not None and selection > state.best
    state.best = selection if improved else state.best
    _save_checkpoint(run, state, epoch, improved)
    _write_metrics(run.out_dir, state.history)


def _save_checkpoint(run: _Run, state: _Progress, epoch: int, improved: bool) -> None:
    """Write the run after ``epoch`` to ``last.pt`` and, when ``improved``, ``best.pt``. The
    one writer of the format (read back by :func:`_restore_checkpoint`, ``evaluate.load_model``
    and :func:`prepare_run_folder`)."""
    ckpt = {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "epoch": epoch,
        "best": state.best,
        "history": state.history,
        "rng": [rng_state()],
        "config": run.cfg.to_dict(),
        "num_classes": run.data.num_classes,
        "categories": run.data.index.categories,
        "identity": model_identity(run.model, run.cfg),
    }
    atomic_torch_save(ckpt, run.last_path)
    if improved:
        atomic_torch_save(ckpt, run.out_dir / "best.pt")


def _epoch_summary(row: dict[str, Any], epochs: int) -> str:
    """The console line of a finished epoch: its mean losses and, when scored, the query metrics."""
    summary = " ".join(f"{k}={v:.4f}" for k, v in row.items() if k.startswith("loss_"))
    if "query" in row and "acc@1" in row["query"]:
        summary += f" | query acc@1={row['query']['acc@1']:.4f} acc@10={row['query']['acc@10']:.4f}"
    if "query" in row:
        summary += f" | query mAP@all={row['query']['mAP@all']:.4f} P@25={row['query'].get('P@25', float('nan')):.4f}"
    return f"epoch {row['epoch']}/{epochs} {summary} ({row['wall_seconds']:.0f}s)"
