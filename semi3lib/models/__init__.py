"""Semi3-Net: staged ImageNet backbones, co-attention and the three-branch network."""

from semi3lib.models.backbones import (
    BACKBONES,
    Backbone,
    RandomInitWarning,
    WeightsMismatchError,
    build_backbone,
    efficientnet_lite0_imagenet,
)
from semi3lib.models.coattention import CoAttention
from semi3lib.models.semi3net import BRANCHES, SHARING_MODES, Semi3Net

__all__ = [
    "BACKBONES",
    "BRANCHES",
    "SHARING_MODES",
    "Backbone",
    "CoAttention",
    "RandomInitWarning",
    "Semi3Net",
    "WeightsMismatchError",
    "build_backbone",
    "efficientnet_lite0_imagenet",
]
