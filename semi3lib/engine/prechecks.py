"""Every check of a training run that can be made before its run folder exists.

A run refused after its folder was written leaves a half-made run behind, and the corrected
command then needs ``--overwrite``. So :func:`check_run` makes, in one place and before
:func:`semi3lib.engine.train.train` creates or touches anything, every check a run can fail:

- the config's values (types and ranges, again: a config built in code skips ``load_config``),
  numbers the model computes with in float32 (finite there; learning rates at most
  :data:`MAX_LR`), the loss (at least one term on), the model (gallery embedding vs edge
  branch, split stage), categories (at least 2) and zero-shot counts, the batch vs processes
  (:func:`check_config`: cheap, no data; the CLI calls it before anything is loaded);
- the fast paths the config asks for (``train.compile`` needs a C++ compiler on the CPU:
  :func:`semi3lib.engine.fastpath.check_fast_paths`);
- the data: the categories it holds and the zero-shot counts (before the split is drawn), then
  the split's training set vs the batch (:func:`check_data`);
- a ``train.init_from`` checkpoint: readable as data, and, for an instance-level run, not
  trained on the run's test photos (:func:`check_init_from`);
- the memory the model's parameters, gradients and optimiser state take, against half the
  device's memory (:func:`check_memory`; the model is built on torch's ``meta`` device, so
  this costs no memory);
- that the run folder (and, from the CLI, the ``--results`` file) can be written
  (:func:`check_writable`).

Each refusal is a :class:`~semi3lib.config.ConfigError` (or an
:class:`~semi3lib.io.OutputError` for a path) of one line that names the setting to change:
the ``semi3`` command reports it with exit status 2.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from semi3lib.config import ConfigError, ExperimentConfig, check_value, config_from_dict
from semi3lib.data.experiment import ExperimentData, exclude_overlap, load_experiment_data, restrict_categories
from semi3lib.data.instance import test_photo_ids, training_photo_ids
from semi3lib.engine.checkpoints import CheckpointError, initial_weights, load_checkpoint_file
from semi3lib.data.layouts import read_dataset
from semi3lib.data.splits import UNSEEN_CATEGORIES, UNSEEN_CATEGORY_SETS, split_from_config, unseen_categories_of
from semi3lib.engine.fastpath import check_fast_paths
from semi3lib.io import OutputError
from semi3lib.models import Semi3Net

# A learning rate above this is a typo (1e3 for 1e-3), not a setting: every published recipe
# for these backbones stays below 1 (SGD) or 1e-2 (AdamW).
MAX_LR = 10.0
# The model and its losses compute in float32: a value beyond this overflows to inf there.
FLOAT32_MAX = float(np.finfo(np.float32).max)
# A run may claim at most this share of the device's memory for parameters, gradients and
# optimiser state; activations, the data loader and the rest of the machine need the others.
MEMORY_SHARE = 0.5
BYTES_PER_VALUE = 4  # float32 weights, gradients and optimiser state (bf16 autocast keeps float32 weights)


def check_run(cfg: ExperimentConfig, data: ExperimentData | None = None, device: torch.device | None = None,
              world: int = 1) -> ExperimentData:
    """Make every check of a run (see the module docstring) before anything is written;
    returns the data checked: ``data``, or the config's dataset and split, read without
    writing anything (the split file is the run's to write once its folder is prepared)."""
    check_config(cfg, world)
    check_fast_paths(cfg.train, device or torch.device("cpu"))
    if data is None:
        data = load_checked_data(cfg)
    check_data(cfg, data, world)
    check_init_from(cfg, data)
    check_memory(cfg, data.num_classes, device or torch.device("cpu"))
    check_writable(cfg.train.out_dir, "train.out_dir")
    return data


# --------------------------------------------------------------------------- the config alone


def check_config(cfg: ExperimentConfig, world: int = 1) -> None:
    """The checks that need neither data nor disk: values, numbers, loss, model, categories,
    zero-shot counts (where ``data.max_categories`` fixes the number) and the batch's split
    over ``world`` processes."""
    _check_values(cfg)
    _check_numbers(cfg)
    _check_loss(cfg)
    _check_model(cfg)
    _check_data_settings(cfg)
    if cfg.data.max_categories is not None:
        check_category_counts(cfg, cfg.data.max_categories, f"data.max_categories={cfg.data.max_categories}")
    _check_batch_split(cfg, world)


def _check_values(cfg: ExperimentConfig) -> None:
    """Every field against its type's range and choices (as ``load_config`` checks them)."""
    check_value("name", cfg.name)
    for section in ("data", "model", "loss", "train"):
        values = getattr(cfg, section)
        for f in dataclasses.fields(values):
            check_value(f"{section}.{f.name}", getattr(values, f.name))


def _float_settings(cfg: ExperimentConfig) -> dict[str, float]:
    return {f"{section}.{f.name}": getattr(getattr(cfg, section), f.name)
            for section in ("data", "model", "loss", "train") for f in dataclasses.fields(getattr(cfg, section))
            if isinstance(getattr(getattr(cfg, section), f.name), float)}


def _check_numbers(cfg: ExperimentConfig) -> None:
    """Floats the model computes with must fit float32, and so must the products the optimiser
    forms (each group's learning rate, and it times the weight decay); a learning rate must be
    at most :data:`MAX_LR`. Without this, ``train.lr=1e300`` is an overflow deep in the
    optimiser's first step."""
    t = cfg.train
    for key, lr in (("train.lr", t.lr), ("train.lr * train.backbone_lr_scale", t.lr * t.backbone_lr_scale)):
        if lr > MAX_LR:
            raise ConfigError(f"{key}: {lr:g} is not a usable learning rate (valid: at most {MAX_LR:g}; "
                              f"typical: 1e-4 to 1e-1)")
    for key, value in _float_settings(cfg).items():
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            raise ConfigError(f"{key}: {value:g} does not fit the float32 the model computes in "
                              f"(valid: at most {FLOAT32_MAX:.3g})")
    if t.lr * t.weight_decay > 1:
        # AdamW scales every weight by (1 - lr * weight_decay) per step: past 1 it flips their sign.
        raise ConfigError(f"train.lr * train.weight_decay: {t.lr:g} * {t.weight_decay:g} = "
                          f"{t.lr * t.weight_decay:g} > 1 would flip the weights' sign each step; lower either")


def _check_loss(cfg: ExperimentConfig) -> None:
    """At least one loss term runs: a weight above 0 whose inputs the model makes (the edgemap
    terms need the edge branch), as :class:`~semi3lib.models.losses.HybridLoss` decides."""
    w, edge = cfg.loss, cfg.model.edge_branch
    instance = cfg.data.protocol == "instance" and w.instance_weight > 0
    if w.ce_weight > 0 or w.triplet_weight > 0 or instance or (edge and (w.alignment_weight > 0 or w.contrastive_weight > 0)):
        return
    if not edge and (w.alignment_weight > 0 or w.contrastive_weight > 0):
        raise ConfigError("no loss term can run: loss.alignment_weight and loss.contrastive_weight need the edgemap "
                          "branch (model.edge_branch=false) and loss.ce_weight, loss.triplet_weight are 0; "
                          "set model.edge_branch=true or loss.ce_weight / loss.triplet_weight > 0")
    raise ConfigError("every loss weight is 0 (loss.ce_weight, loss.alignment_weight, loss.contrastive_weight, "
                      "loss.triplet_weight): nothing would be learned; set at least one above 0")


def _check_model(cfg: ExperimentConfig) -> None:
    m = cfg.model
    if m.gallery_embedding == "photo+edge" and not m.edge_branch:
        raise ConfigError("model.gallery_embedding=photo+edge needs the edgemap branch, but model.edge_branch=false; "
                          "set model.edge_branch=true or model.gallery_embedding=photo")


def _check_data_settings(cfg: ExperimentConfig) -> None:
    """Data settings that exclude each other: validation sketches in the instance protocol
    (their photos would be training photos) or Quick, Draw! training doodles (they have no
    photo of their own), a dataset told to leave out its own photos."""
    d = cfg.data
    if d.protocol == "instance" and d.val_sketches_per_category:
        raise ConfigError(f"data.val_sketches_per_category={d.val_sketches_per_category}: the instance protocol has no "
                          "validation sketches (their photos would be training photos); set it to 0")
    if d.protocol == "instance" and d.doodle_adapt_classes.strip():
        raise ConfigError(f"data.doodle_adapt_classes={d.doodle_adapt_classes}: a doodle has no photo of its own, so the "
                          "instance protocol has no positive for it; leave it empty")
    if d.exclude_overlap_with == d.dataset:
        raise ConfigError(f"data.exclude_overlap_with={d.exclude_overlap_with} is the dataset itself: it would leave "
                          "no photo; name another dataset, or unset it")


def _unseen_count(cfg: ExperimentConfig) -> tuple[int, str]:
    """How many categories a zero-shot split holds out, and where that number comes from."""
    chosen = unseen_categories_of(cfg.data)  # refuses unseen_categories with a named set
    if isinstance(chosen, str):
        return len(UNSEEN_CATEGORY_SETS[chosen]), f"data.zeroshot_split={chosen}"
    if chosen is not None:
        return chosen, f"data.unseen_categories={chosen}"
    default = UNSEEN_CATEGORIES.get(cfg.data.dataset, 25)
    return default, f"{cfg.data.dataset}'s standard {default}; set data.unseen_categories"


def check_category_counts(cfg: ExperimentConfig, n_categories: int, source: str) -> None:
    """``n_categories`` (named by ``source``) are enough: at least 2 to train a classifier and
    to have negatives; for zero-shot, at least 1 held out (2 when the gallery is the unseen
    categories' photos alone: with one, every photo is relevant and mAP is 1 whatever the
    model) and at least 2 left to train on."""
    if n_categories < 2:
        raise ConfigError(f"{n_categories} categor{'y' if n_categories == 1 else 'ies'} ({source}); a run needs at "
                          "least 2 (a classifier, and negatives for the contrastive loss)")
    if cfg.data.protocol != "zeroshot":
        return
    unseen, why = _unseen_count(cfg)
    if n_categories - unseen < 2:
        raise ConfigError(f"data.protocol=zeroshot holds out {unseen} categories ({why}) of {n_categories} "
                          f"({source}), leaving {max(0, n_categories - unseen)} to train on; at least 2 are needed")
    if unseen < 2 and cfg.data.zeroshot_gallery == "unseen":
        raise ConfigError(f"data.protocol=zeroshot holds out {unseen} category ({why}) and the gallery is its "
                          "photos alone (data.zeroshot_gallery=unseen): every photo would be relevant; hold out "
                          "at least 2 or set data.zeroshot_gallery=all")


def _check_batch_split(cfg: ExperimentConfig, world: int) -> None:
    b = cfg.train.batch_size
    per = cfg.train.instance_photos_per_category
    if cfg.data.protocol == "instance" and b % per:
        raise ConfigError(f"train.batch_size={b} is not a multiple of train.instance_photos_per_category={per} "
                          "(an instance-level batch is whole groups of photos of one category)")
    if b % world:
        raise ConfigError(f"train.batch_size={b} cannot be split over {world} processes; use a multiple of {world}")
    if b // world < 2:
        raise ConfigError(f"train.batch_size={b} over {world} processes is {b // world} per process; BatchNorm "
                          f"needs at least 2: use train.batch_size >= {2 * world}")


# --------------------------------------------------------------------------- the data


def load_checked_data(cfg: ExperimentConfig) -> ExperimentData:
    """The config's dataset and split (as ``load_experiment_data`` without a split file), with
    the category counts checked before the split is drawn, so a refusal names the settings."""
    d = cfg.data
    index = exclude_overlap(read_dataset(d.dataset, root=d.root), d)
    n = len(index.categories)
    if d.max_categories is not None and d.max_categories < n:
        n = d.max_categories  # checked by check_config already
    check_category_counts(cfg, n, f"{d.dataset}'s folders")
    if d.max_categories is not None:
        index = restrict_categories(index, d.max_categories)
    return ExperimentData(index=index, split=split_from_config(index, d))


def check_data(cfg: ExperimentConfig, data: ExperimentData, world: int = 1) -> None:
    """The split can train: 2 or more training categories, training photos, queries, and a
    training set of at least one batch (the sampler drops an incomplete last batch)."""
    split = data.split
    where = f"{cfg.data.dataset} ({cfg.data.protocol} split)"
    if len(split.categories_seen) < 2:
        raise ConfigError(f"{where}: {len(split.categories_seen)} training categor"
                          f"{'y' if len(split.categories_seen) == 1 else 'ies'}; a run needs at least 2")
    if not split.train_photos or not split.query or not split.gallery:
        counts = split.counts()
        raise ConfigError(f"{where}: the split has {counts['train_photos']} training photos, {counts['query']} "
                          f"queries and {counts['gallery']} gallery photos; a run needs some of each")
    n = len(split.train_sketches)
    if cfg.train.batch_size > n:
        raise ConfigError(f"train.batch_size={cfg.train.batch_size} is larger than the {n} training sketches of "
                          f"{where}; use train.batch_size <= {n} (or more data)")


def check_init_from(cfg: ExperimentConfig, data: ExperimentData) -> None:
    """``train.init_from``, when set: a checkpoint readable as data whose weights fit the run's
    network (see :func:`~semi3lib.engine.checkpoints.initial_weights`); and for an instance-level
    run, one whose training photos (and the photos of its training sketches; its
    ``split.json`` beside it, else its config's split) do not include the run's test photos,
    matched by category and photo id across datasets (sketchy-mini's photos that sketchy-fg10
    also holds). A leak is refused unless ``train.init_allow_overlap`` (then a warning); a run
    of the checkpoint with ``data.exclude_overlap_with`` set left those photos out."""
    path = cfg.train.init_from
    if path is None:
        return
    try:
        ckpt = load_checkpoint_file(path)
    except (OSError, CheckpointError) as err:
        raise ConfigError(f"train.init_from: {err}") from None
    if data.split.protocol == "instance":
        _check_no_leak(cfg, ckpt, Path(path), data)
    try:
        with torch.device("meta"):  # the network's shapes, no memory, no weights loaded
            model = Semi3Net(cfg.model, num_classes=data.num_classes, load_weights=False)
        initial_weights(model, ckpt, path, data.index.categories)
    except CheckpointError as err:
        raise ConfigError(f"train.init_from: {err}") from None


def _check_no_leak(cfg: ExperimentConfig, ckpt: dict, path: Path, data: ExperimentData) -> None:
    """Refuse (or, with ``train.init_allow_overlap``, warn about) an init checkpoint trained on
    any of the instance-level run's test photos."""
    leaked = sorted(init_overlap(ckpt["config"], path.parent / "split.json", data))
    if not leaked:
        return
    message = (f"train.init_from={path} was trained on {len(leaked)} of this run's test photos (e.g. "
               f"{leaked[0]}); its scores here would be inflated. Train it with "
               f"data.exclude_overlap_with={data.index.name}, or set train.init_allow_overlap=true to go on anyway")
    if not cfg.train.init_allow_overlap:
        raise ConfigError(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def init_overlap(init_config: dict, init_split_file: Path, data: ExperimentData) -> set[str]:
    """The photo keys a checkpoint's run trained on (its config ``init_config``, its split
    file when present) that are test photos of ``data``. The checkpoint's dataset is looked
    for where it was (its config's root) and, when that folder is gone, by name."""
    init_cfg = config_from_dict(init_config)
    d = init_cfg.data
    if d.root is not None and not Path(d.root).is_dir():
        d = dataclasses.replace(d, root=None)
    init_data = load_experiment_data(d, init_split_file if init_split_file.is_file() else None)
    trained = training_photo_ids(init_data.index, init_data.split.train_photos, init_data.split.train_sketches)
    return trained & test_photo_ids(data.index, data.split.test_photos, data.split.query)


# --------------------------------------------------------------------------- memory


def parameter_count(cfg: ExperimentConfig, num_classes: int) -> int:
    """The model's parameters and buffers, counted on torch's ``meta`` device (no memory,
    no weights loaded: a model too big to build is measured as cheaply as a small one)."""
    with torch.device("meta"):
        model = Semi3Net(cfg.model, num_classes=num_classes, load_weights=False)
    return sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())


def training_state_bytes(cfg: ExperimentConfig, num_classes: int) -> int:
    """Bytes of weights, gradients and optimiser state (AdamW: 2 moments; SGD: momentum)."""
    states = 2 if cfg.train.optimizer == "adamw" else (1 if cfg.train.momentum > 0 else 0)
    return parameter_count(cfg, num_classes) * (2 + states) * BYTES_PER_VALUE


def device_memory(device: torch.device) -> int | None:
    """Total memory of ``device`` in bytes (the GPU's, else the machine's RAM); None if unknown."""
    try:
        if device.type == "cuda":
            return torch.cuda.get_device_properties(device.index or 0).total_memory
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError, RuntimeError, AssertionError):
        return None  # an unknown index or platform: nothing to compare against


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB"


def check_memory(cfg: ExperimentConfig, num_classes: int, device: torch.device) -> None:
    """Refuse a model whose training state needs more than :data:`MEMORY_SHARE` of the device's
    memory (``model.embed_dim=1000000000`` would otherwise fail allocating, deep in the run)."""
    total = device_memory(device)
    needed = training_state_bytes(cfg, num_classes)
    if total is not None and needed > MEMORY_SHARE * total:
        m = cfg.model
        memory = f"{device}'s memory" if device.type == "cuda" else "this machine's memory"
        raise ConfigError(f"the model ({m.backbone}, model.embed_dim={m.embed_dim}, model.hidden_dim={m.hidden_dim}, "
                          f"{num_classes} classes) needs about {_gb(needed)} for weights, gradients and optimiser "
                          f"state, more than half of {memory} ({_gb(total)}); lower model.embed_dim "
                          "or model.hidden_dim")


# --------------------------------------------------------------------------- outputs


def check_writable(path: str | os.PathLike, what: str) -> None:
    """``path`` (a file or folder, made later with its missing parents) can be written: its
    nearest existing ancestor is a folder this process may write to. ``os.access`` answers for
    the file system too: a read-only mount is refused even for root."""
    path = Path(path).absolute()
    for ancestor in [path, *path.parents]:
        if ancestor.exists():
            break
    if ancestor != path and not ancestor.is_dir():
        raise OutputError(f"{what} {path}: {ancestor} is a file, not a folder")
    folder = ancestor if ancestor.is_dir() else ancestor.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: the folder {folder} is not writable (read-only or not yours); "
                          "choose another place")


__all__ = ["MAX_LR", "MEMORY_SHARE", "check_category_counts", "check_config", "check_data", "check_memory",
           "check_run", "check_writable", "device_memory", "load_checked_data", "parameter_count",
           "training_state_bytes"]
