"""Typed experiment configuration, shared by the CLI, the notebooks and the tests.

A config is a YAML file with four sections (``data``, ``model``, ``loss``, ``train``) plus
a ``name``. Every key maps onto a dataclass field below; an unknown key is an error that
names it, so a typo never silently falls back to a default. Command-line overrides use
dotted keys: ``train.epochs=3 model.coattention=false``.

Fields marked *[assumed]* in their comment are design decisions this project made where the
paper is silent (see the book's introduction); each is an option, one flag away.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml


class ConfigError(ValueError):
    """A configuration file, override, book profile or study plan is invalid (YAML syntax, unknown
    key, wrong type, value out of range). The message names the file and line where known."""


def _yaml_problem(err: yaml.YAMLError) -> tuple[int | None, str]:
    """The 1-based line and a one-line description of a YAML error."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context and context_mark is not None and mark is not None and context_mark.line != mark.line:
        problem += f" ({context} from line {context_mark.line + 1})"  # e.g. an unclosed [ or {
    return (mark.line + 1 if mark is not None else None), problem


# A config, profile or plan is a few hundred YAML nodes. Aliases (``*name``) reuse a node, so a
# few hundred bytes can stand for billions of nodes once expanded (an "alias bomb"); anything
# past this bound is refused before a single value is built.
MAX_YAML_NODES = 10_000


def _key_lines(node: yaml.Node, prefix: str = "") -> dict[str, int]:
    """``{"section.key": line}`` for every mapping key of a composed YAML document."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = f"{prefix}{key.value}"
            lines[name] = key.start_mark.line + 1
            lines.update(_key_lines(value, name + "."))
    return lines


def _check_nodes(root: yaml.Node, at: Callable[[int], str]) -> None:
    """Refuse a document that expands past :data:`MAX_YAML_NODES` or repeats a key in a mapping
    (YAML would keep the last value silently). Each distinct node is visited once, so an alias
    bomb costs as little to refuse as it took to write."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 1  # a node that contains itself (a recursive alias) counts once
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if key.value in seen:
                        raise ConfigError(f"{at(key.start_mark.line + 1)}: duplicate key {key.value!r} "
                                          f"(first on line {seen[key.value]}); a key may appear once")
                    seen[key.value] = key.start_mark.line + 1
                total += size(key) + size(value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        if total > MAX_YAML_NODES:
            raise ConfigError(f"{at(node.start_mark.line + 1)}: the YAML expands to more than "
                              f"{MAX_YAML_NODES:,} values (aliases repeated inside aliases); refusing it")
        sizes[id(node)] = total
        return total

    size(root)


def parse_yaml(text: str, where: str, file: bool = True) -> tuple[Any, yaml.Node | None]:
    """Parse one YAML document safely: ``(value, composed node)``; None for an empty document.

    Safe tags only (no Python objects), no duplicate keys, a bound on what aliases expand to
    (:func:`_check_nodes`); any problem is a one-line :class:`ConfigError` naming ``where``
    (and, for a ``file``, the line)."""
    def at(line: int | None) -> str:
        return f"{where}:{line}" if file and line else where

    loader = None
    try:
        loader = yaml.SafeLoader(text)  # a control character is refused here already
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_nodes(node, at)
        return loader.construct_document(node), node
    except yaml.YAMLError as err:
        line, problem = _yaml_problem(err)
        raise ConfigError(f"{at(line)}: YAML syntax error: {problem}" if file
                          else f"{where}: the value is not valid YAML ({problem})") from None
    except RecursionError:
        raise ConfigError(f"{where}: the YAML is nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml(path: str | Path, what: str = "config") -> tuple[dict[str, Any], dict[str, int]]:
    """Read a YAML mapping (a config, a book profile, a study plan): ``(values, key lines)``.

    The one loader of every YAML file the project reads. A missing, unreadable or empty file, a
    syntax error, a duplicate key, aliases that expand past :data:`MAX_YAML_NODES`, or a top
    level that is not a mapping is a :class:`ConfigError` naming the file (and the line);
    ``key lines`` maps dotted keys to their line, for later messages.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a directory, not a YAML file")
    if not path.is_file():
        raise ConfigError(f"{what} file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a text (UTF-8) file: byte {err.start} cannot be decoded") from None
    except OSError as err:
        raise ConfigError(f"{what} {path} cannot be read: {err.strerror}") from None
    values, node = parse_yaml(text, str(path))
    if node is None:
        raise ConfigError(f"{path}: the {what} is empty; write at least one key (the defaults need no file)")
    if not isinstance(values, dict):
        raise ConfigError(f"{path}:1: a {what} must be a mapping of keys to values, "
                          f"not a {type(values).__name__}")
    return values, _key_lines(node)


# Valid values of the config's choice fields. (The modules that implement them keep the same
# tuples: data.layouts.DATASET_NAMES, data.splits.PROTOCOLS / ZEROSHOT_SPLITS / ZEROSHOT_GALLERIES, edges.EDGE_METHODS,
# models.BACKBONES, models.SHARING_MODES; the config stays importable without torch.)
CHOICES: dict[str, tuple[str, ...]] = {
    "data.dataset": ("sketchy", "sketchy-mini", "tuberlin-ext", "sketchy-fg10"),
    "data.protocol": ("category", "zeroshot", "instance"),
    "data.zeroshot_split": ("random", "yelamarthi"),
    "data.zeroshot_gallery": ("unseen", "all"),
    "data.instance_gallery": ("test", "all"),
    "data.exclude_overlap_with": ("sketchy", "sketchy-mini", "tuberlin-ext", "sketchy-fg10"),
    "data.edge_method": ("canny", "xdog", "sobel"),
    "data.strokes": ("raw", "normalised"),
    "model.backbone": ("efficientnet_lite0", "vgg19"),
    "model.sharing": ("semi", "shared", "separate"),
    "model.gallery_embedding": ("photo", "photo+edge"),
    "train.optimizer": ("adamw", "sgd"),
    "train.schedule": ("onecycle", "cosine", "constant"),
    "train.cpu_precision": ("fp32", "auto", "bf16"),
}

# Numeric ranges: (low, high, low inclusive, high inclusive); None is unbounded. A field that
# may be None (``int | None``) is checked only when set.
RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "data.queries_per_category": (1, None, True, False),
    "data.unseen_categories": (1, None, True, False),
    "data.val_sketches_per_category": (0, None, True, False),
    "data.split_seed": (0, None, True, False),
    "data.max_categories": (1, None, True, False),
    "data.image_size": (32, 4096, True, True),
    "data.positive_fraction": (0, 1, True, True),
    "data.num_workers": (0, 256, True, True),
    "data.doodle_augment": (0, 1, True, True),
    "data.doodle_adapt_per_class": (1, None, True, False),
    "model.split_stage": (1, None, True, False),
    "model.coattention_reduction": (1, None, True, False),
    "model.embed_dim": (1, None, True, False),
    "model.hidden_dim": (1, None, True, False),
    "model.dropout": (0, 1, True, False),
    "loss.ce_weight": (0, None, True, False),
    "loss.alignment_weight": (0, None, True, False),
    "loss.contrastive_weight": (0, None, True, False),
    "loss.contrastive_margin": (0, None, False, False),
    "loss.triplet_weight": (0, None, True, False),
    "loss.triplet_margin": (0, None, False, False),
    "loss.label_smoothing": (0, 1, True, False),
    "loss.instance_weight": (0, None, True, False),
    "loss.instance_margin": (0, None, False, False),
    "train.epochs": (1, None, True, False),
    "train.batch_size": (2, None, True, False),  # BatchNorm needs 2 items per batch
    "train.lr": (0, None, False, False),
    "train.backbone_lr_scale": (0, None, True, False),
    "train.weight_decay": (0, None, True, False),
    "train.momentum": (0, 1, True, False),
    "train.warmup_fraction": (0, 1, True, False),
    "train.grad_clip": (0, None, True, False),  # 0: no clipping
    "train.eval_every": (0, None, True, False),  # 0: only after the last epoch
    "train.seed": (0, 2**32 - 1, True, True),
    "train.max_steps_per_epoch": (1, None, True, False),
    "train.log_every": (1, None, True, False),
    "train.instance_photos_per_category": (2, None, True, False),
}
NON_EMPTY = ("name", "train.out_dir")


def _range_text(low: float | None, high: float | None, low_in: bool, high_in: bool) -> str:
    if high is None:
        return f"{'>=' if low_in else '>'} {low}"
    return f"in {'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"


def check_value(key: str, value: Any) -> None:
    """Raise :class:`ConfigError` when ``value`` is out of ``key``'s valid range or choices."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value}")
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(CHOICES[key])}")
    if key in RANGES:
        low, high, low_in, high_in = RANGES[key]
        ok = (low is None or (value >= low if low_in else value > low)) and \
             (high is None or (value <= high if high_in else value < high))
        if not ok:
            raise ConfigError(f"{key}: {value} is out of range (valid: {_range_text(low, high, low_in, high_in)})")
    if key in NON_EMPTY and not str(value).strip():
        raise ConfigError(f"{key}: must not be empty")
    if key == "train.device" and not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", str(value)):
        raise ConfigError(f"{key}: {value!r} is not one of auto, cpu, cuda, cuda:N, mps")


@dataclass
class DataConfig:
    dataset: str = "sketchy-mini"  # sketchy | sketchy-mini | tuberlin-ext | sketchy-fg10
    root: str | None = None  # None: search $SEMI3_DATA, ./data, ../shared/data
    # category | zeroshot | instance (find *this* photo: a photo split, each test sketch's own
    # photo is the one right answer; see semi3lib.data.instance)
    protocol: str = "category"
    queries_per_category: int | None = None  # None: the dataset's standard (50 / 10 / 10)
    unseen_categories: int | None = None  # zero-shot only, random set: how many; None: the dataset's standard
    # zero-shot only: which categories are unseen. "random": a seeded draw of unseen_categories;
    # "yelamarthi": Sketchy's 21 categories that are not ImageNet-1k classes (Yelamarthi et al. 2018)
    zeroshot_split: str = "random"
    # zero-shot only: the gallery. "unseen": the unseen categories' photos (as zero-shot papers
    # report); "all": every photo of the dataset, seen categories too (harder)
    zeroshot_gallery: str = "unseen"
    # instance only: the gallery. "test": the test photos (the protocol's); "all": every photo of
    # the dataset, the training photos too (harder: more look-alikes of the own photo)
    instance_gallery: str = "test"
    # Leave out every photo (and its sketches) that this other dataset also holds, matched by
    # category and photo id: a model trained here can then be tested on that dataset without
    # having seen its photos (e.g. sketchy-mini trained with exclude_overlap_with=sketchy-fg10).
    exclude_overlap_with: str | None = None
    val_sketches_per_category: int = 0  # validation sketches carved from training sketches
    split_seed: int = 0
    max_categories: int | None = None  # keep only the first N categories (smoke runs)
    image_size: int = 128
    edge_method: str = "canny"  # [assumed] canny | xdog | sobel
    hflip: bool = True
    positive_fraction: float = 0.5  # share of same-category sketch/edgemap pairs
    num_workers: int = 2
    cache_dir: str | None = None  # edgemap cache; None: ./cache/edges
    # Sketch strokes: "raw" as drawn, or "normalised": redrawn as centre lines of one width
    # (data/strokes.py), in training and at query time, so a thick doodle and a thin pen sketch meet
    strokes: str = "raw"
    # Share of training sketches made doodle-like (data/doodle_augment.py): jitter, erasure, 28 px rendering
    doodle_augment: float = 0.0
    # Quick, Draw! classes (comma-separated, e.g. "airplane,bicycle,shoe") whose `adapt` doodles join
    # the training sketches, each paired with photos of its Sketchy category; "" for none
    doodle_adapt_classes: str = ""
    doodle_adapt_per_class: int | None = None  # the first N adapt doodles of each class; None: all
    doodle_root: str | None = None  # the Quick, Draw! folder; None: quickdraw5 where the datasets are


@dataclass
class ModelConfig:
    backbone: str = "efficientnet_lite0"  # efficientnet_lite0 | vgg19
    pretrained: bool = True
    weights_path: str | None = None  # local ImageNet weights file (vgg19 without network)
    split_stage: int | None = None  # bottom/top split; None: the backbone's default
    sharing: str = "semi"  # semi (paper) | shared | separate
    coattention: bool = True
    coattention_reduction: int = 16  # [assumed] SE-style reduction ratio
    edge_branch: bool = True  # False: a plain two-branch sketch/photo network
    embed_dim: int = 256
    hidden_dim: int = 512
    dropout: float = 0.2
    # How a gallery photo is embedded for retrieval: "photo" (its image-branch embedding, as
    # the paper), or "photo+edge" (the mean of that and its edgemap's embedding; the edgemap
    # runs through the sketch's bottom, so it sits nearer the sketches). Needs edge_branch.
    gallery_embedding: str = "photo"
    # [assumed off, as the paper] True: the bottom that several branches share (sketch+edgemap
    # in the semi mode) keeps its convolutions shared but has one BatchNorm per branch, running
    # statistics and affine parameters, so a query sketch is never normalised with edgemap
    # statistics. Needs a bottom shared by two or more branches (not sharing=separate).
    domain_bn: bool = False


@dataclass
class LossConfig:
    ce_weight: float = 1.0
    alignment_weight: float = 1.0  # [assumed] lambda_a, photo vs its own edgemap
    contrastive_weight: float = 1.0  # [assumed] lambda_c, sketch vs edgemap
    contrastive_margin: float = 1.0
    triplet_weight: float = 0.0  # baselines only
    triplet_margin: float = 0.2
    label_smoothing: float = 0.0
    edge_ce: bool = True  # False: no cross-entropy on the edgemap branch's logits (the other terms stay)
    # data.protocol=instance only: batch-hard triplet whose positive is the sketch's own photo
    # (and own edgemap, with the edge branch) and whose negatives are the batch's other photos
    instance_weight: float = 1.0
    instance_margin: float = 0.2


@dataclass
class TrainConfig:
    epochs: int = 8
    batch_size: int = 32
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 1e-3
    backbone_lr_scale: float = 0.1  # backbone lr = lr * this
    weight_decay: float = 1e-4
    momentum: float = 0.9  # sgd only
    schedule: str = "onecycle"  # onecycle | cosine | constant
    warmup_fraction: float = 0.1
    grad_clip: float = 5.0
    eval_every: int = 1  # epochs; 0 disables evaluation during training
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU (see cpu_precision)
    # Autocast on the CPU: fp32 (none) | auto (bf16 where the CPU has native bf16: AVX512_BF16,
    # AMX, Arm bf16; fp32 elsewhere) | bf16 (always, emulated without native support: slower)
    cpu_precision: str = "fp32"
    channels_last: bool = True  # NHWC tensors: faster on CUDA and on CPU (1.7x per step measured)
    compile: bool = False  # torch.compile the model for the training step (checkpoints keep plain keys)
    fused_optimizer: bool = False  # the optimiser's fused kernel (for-each where torch has none)
    # glibc keeps freed memory for the next step instead of unmapping and faulting it in again
    # (engine.allocator): the same numbers, fewer CPU-seconds a step; the process keeps its peak memory
    keep_freed_memory: bool = True
    out_dir: str = "runs/default"
    max_steps_per_epoch: int | None = None  # smoke runs
    freeze_bn: bool = False  # keep BatchNorm statistics fixed (small or sharded batches)
    log_every: int = 10  # steps between rows of steps.jsonl (and progress-bar updates)
    # data.protocol=instance only: photos of one category in a batch (batch_size / this
    # categories per batch), so that the in-batch negatives include look-alikes of the own photo
    instance_photos_per_category: int = 4
    # A checkpoint (e.g. a category-level model) whose weights start the run instead of ImageNet's;
    # read as data only. Refused when its training photos include the run's test photos, unless
    # init_allow_overlap (then a warning).
    init_from: str | None = None
    init_allow_overlap: bool = False


# Settings that change where a run writes, where it runs or how fast, never what it computes:
# a run may be resumed under other values of them, and runs differing only in them are the same.
NOT_WHAT_IS_COMPUTED = frozenset({("train", "out_dir"), ("train", "device"), ("train", "log_every"),
                                  ("train", "keep_freed_memory"), ("data", "num_workers"), ("data", "root"),
                                  ("data", "cache_dir")})


@dataclass
class ExperimentConfig:
    name: str = "semi3net"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check/convert ``value`` against a field annotation (str, int, float, bool, X | None)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _coerce(value, non_none[0], key)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError as err:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from err
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from err
    if annotation is str:
        if isinstance(value, bool) and key in CHOICES:  # YAML reads a bare off/on/no/yes as false/true
            raise ConfigError(f"{key}: expected one of {', '.join(CHOICES[key])}, got {str(value).lower()} "
                              "(YAML reads off, on, no and yes as false/true)")
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping (a section of key: value lines), "
                          f"got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]!s} (valid keys in "
            f"{prefix.rstrip('.') or 'the top level'}: {', '.join(sorted(names))})"
        )
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value or {}, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, f"{prefix}{name}")
            check_value(f"{prefix}{name}", kwargs[name])
    return cls(**kwargs)


def config_from_dict(values: dict[str, Any]) -> ExperimentConfig:
    return _build(ExperimentConfig, values, "")


def _parse_override_value(item: str, text: str) -> Any:
    if text == "":
        return ""
    return parse_yaml(text, f"override {item!r}", file=False)[0]


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings (YAML-parsed values) to a raw config mapping."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in values.items()}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: {key!r} is not a dotted key such as train.epochs")
        target = out
        for part in parts[:-1]:
            if target.get(part) is None:
                target[part] = {}
            target[part] = target[part] if not isinstance(target[part], dict) else dict(target[part])
            target = target[part]
            if not isinstance(target, dict):
                raise ConfigError(f"override {key!r}: {part!r} is not a section")
        target[parts[-1]] = _parse_override_value(item, raw)
    return out


def _failing_key(message: str) -> str | None:
    match = re.match(r"(?:unknown config key )?([A-Za-z_][\w.]*)", message)
    return match.group(1) if match else None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a YAML config (or the defaults when ``path`` is None) and apply overrides.

    Every value is checked against its type and valid range here; an error names the file and
    line of the offending key, or the override that set it."""
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if path is not None:
        values, lines = load_yaml(path, "config")
    overrides = list(overrides or [])
    merged = apply_overrides(values, overrides)
    try:
        return config_from_dict(merged)
    except ConfigError as err:
        key = _failing_key(str(err))
        setting = [o for o in overrides if key and o.split("=", 1)[0].strip() in (key, *_parents(key))]
        if setting:
            raise ConfigError(f"override {setting[-1]!r}: {err}") from None
        if path is not None:
            line = next((lines[k] for k in (key, *_parents(key or "")) if k in lines), None)
            raise ConfigError(f"{path}:{line}: {err}" if line else f"{path}: {err}") from None
        raise


def _parents(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def save_config(cfg: ExperimentConfig, path: str | Path) -> None:
    from semi3lib.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
