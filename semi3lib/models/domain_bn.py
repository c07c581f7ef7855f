"""Domain-specific BatchNorm for a bottom that several branches share (``model.domain_bn``).

In the paper's ``semi`` mode sketches and edgemaps run the same bottom. Its BatchNorm layers
then normalise a query sketch with running statistics (and affine parameters) learnt from a
batch that is half edgemaps. :class:`DomainBatchNorm` keeps the convolutions shared but gives
each domain (branch) its own BatchNorm: running statistics *and* affine parameters, every copy
starting from the pretrained layer. The model names the domain before each call
(:func:`domain`), so a sketch always meets the sketch BatchNorm, in training and at test time.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import nn


class DomainBatchNorm(nn.Module):
    """One copy of a BatchNorm layer per domain; :attr:`domain` picks the one that runs.

    Args:
        bn: the layer to copy (any ``_BatchNorm``, e.g. timm's ``BatchNormAct2d`` with its
            activation); every copy starts equal to it.
        domains: the domain names, e.g. ``("sketch", "edge")``; at least two.
    """

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, domains: Sequence[str]) -> None:
        super().__init__()
        if len(domains) < 2 or len(set(domains)) != len(domains):
            raise ValueError(f"DomainBatchNorm needs two or more distinct domains, got {tuple(domains)}")
        self.bns = nn.ModuleDict({name: copy.deepcopy(bn) for name in domains})
        self.domain: str | None = None  # set by :func:`domain` around each call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.domain is None:
            # no silent fallback: a mixed batch through one domain's statistics is the very bug
            raise RuntimeError("DomainBatchNorm called without a domain: run it inside domain(module, name)")
        return self.bns[self.domain](x)

    def extra_repr(self) -> str:
        return f"domains={tuple(self.bns)}"


def convert_to_domain_bn(module: nn.Module, domains: Sequence[str]) -> int:
    """Replace every BatchNorm layer inside ``module`` by a :class:`DomainBatchNorm` over
    ``domains``, in place; returns how many were replaced."""
    replaced = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, DomainBatchNorm(child, domains))
            replaced += 1
        elif not isinstance(child, DomainBatchNorm):
            replaced += convert_to_domain_bn(child, domains)
    return replaced


def domain_layers(module: nn.Module) -> list[DomainBatchNorm]:
    return [m for m in module.modules() if isinstance(m, DomainBatchNorm)]


@contextmanager
def domain(module: nn.Module, name: str) -> Iterator[None]:
    """Run ``module``'s :class:`DomainBatchNorm` layers as domain ``name`` inside the block."""
    layers = domain_layers(module)
    for layer in layers:
        if name not in layer.bns:
            raise KeyError(f"no BatchNorm for domain {name!r} (domains: {', '.join(layer.bns)})")
        layer.domain = name
    try:
        yield
    finally:
        for layer in layers:
            layer.domain = None


__all__ = ["DomainBatchNorm", "convert_to_domain_bn", "domain", "domain_layers"]
