"""Semi3-Net: the semi-heterogeneous three-way joint embedding network.

    sketch ─┐                                    ┌─ sketch_embed ─ classifier ─ sketch_logits
            ├─ bottom[sketch+edge] ─┐            │
    edge  ──┘                       ├─ co-att. ─ top (shared) ─ GAP ─ embedding MLP ─┤
    photo ──── bottom[photo] ───────┘            │
                                                 └─ photo/edge_embed ─ classifier ─ ..._logits

- Bottom ("semi-heterogeneous feature mapping", [paper]): ``backbone.stages[:split]``. In
  the paper's ``semi`` mode the sketch and edgemap branches run the *same* module and the
  photo branch its own copy; ``shared`` uses one bottom for all three, ``separate`` three.
  Every bottom starts from the same (pretrained) weights. With ``model.domain_bn`` a bottom
  that several branches run keeps one BatchNorm per branch (:mod:`semi3lib.models.domain_bn`).
- Co-attention ([paper], SE-style [assumed]): see :mod:`semi3lib.models.coattention`.
- Top ("joint semantic embedding", [paper]): ``backbone.stages[split:]``, global average
  pooling and an MLP ``Linear-ReLU-Dropout-Linear`` to ``embed_dim``, then a C-way linear
  classifier; all shared by every branch. The MLP and classifier start from random weights
  for every backbone (the paper's fc6-fc7 sizes are not reproduced).

Inputs are float images in [0, 1], ``(B, 3, H, W)`` (``(B, 1, H, W)`` sketches/edgemaps are
repeated to 3 channels); normalisation to the backbone's mean/std happens inside.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from semi3lib.config import ModelConfig
from semi3lib.models.backbones import build_backbone
from semi3lib.models.coattention import CoAttention
from semi3lib.models.domain_bn import convert_to_domain_bn, domain

BRANCHES = ("sketch", "photo", "edge")
SHARING_MODES = ("semi", "shared", "separate")
GALLERY_EMBEDDINGS = ("photo", "photo+edge")


def _bottom_layout(sharing: str, edge_branch: bool) -> dict[str, tuple[str, ...]]:
    """Bottom module name -> the branches that run it."""
    branches = BRANCHES if edge_branch else ("sketch", "photo")
    if sharing == "semi":
        if edge_branch:
            return {"photo": ("photo",), "sketch_edge": ("sketch", "edge")}
        return {"photo": ("photo",), "sketch": ("sketch",)}
    if sharing == "shared":
        return {"shared": branches}
    if sharing == "separate":
        return {b: (b,) for b in branches}
    raise ValueError(f"unknown model.sharing {sharing!r}; choose one of: {', '.join(SHARING_MODES)}")


def _run_grouped(module: nn.Module, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Apply ``module`` to several batches in one call when their shapes allow it.

    One call over the concatenation is faster and, for a module shared between domains,
    gives BatchNorm the statistics of the mixed batch, the same mixture its running
    statistics see at evaluation time.
    """
    if len(inputs) > 1 and all(x.shape[1:] == inputs[0].shape[1:] for x in inputs):
        out = module(torch.cat(inputs, dim=0))
        return list(out.split([x.shape[0] for x in inputs], dim=0))
    return [module(x) for x in inputs]


def _check_domain_bn(cfg: ModelConfig, layout: dict[str, tuple[str, ...]]) -> None:
    if cfg.domain_bn and all(len(branches) < 2 for branches in layout.values()):
        raise ValueError(f"model.domain_bn=true needs a bottom that several branches share, but with "
                         f"model.sharing={cfg.sharing} and model.edge_branch={str(cfg.edge_branch).lower()} "
                         "every branch has its own bottom; use sharing=semi with the edge branch, or shared")


def _check_gallery_embedding(name: str, edge_branch: bool) -> None:
    if name not in GALLERY_EMBEDDINGS:
        raise ValueError(f"unknown model.gallery_embedding {name!r}; choose one of: {', '.join(GALLERY_EMBEDDINGS)}")
    if name == "photo+edge" and not edge_branch:
        raise ValueError("model.gallery_embedding=photo+edge needs the edgemap branch (model.edge_branch=true)")


class Semi3Net(nn.Module):
    """Semi3-Net with a configurable backbone, split, sharing mode and co-attention.

    Args:
        cfg: the model section of the experiment config.
        num_classes: C, categories the classifier predicts (training categories).
        load_weights: False builds the architecture only (no pretrained loading, no download,
            no random-init warning), for loading a Semi3-Net checkpoint right after.
    """

    def __init__(self, cfg: ModelConfig, num_classes: int, load_weights: bool = True) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        _check_gallery_embedding(cfg.gallery_embedding, cfg.edge_branch)
        self.cfg = copy.deepcopy(cfg)
        self.num_classes = num_classes
        backbone = build_backbone(cfg.backbone, pretrained=cfg.pretrained, weights_path=cfg.weights_path,
                                  load_weights=load_weights)
        self.backbone_name: str = backbone.name
        self.backbone_source: str = backbone.source
        self.stage_names: list[str] = list(backbone.stage_names)
        self.stage_channels: list[int] = list(backbone.stage_channels)

        n_stages = len(backbone.stages)
        split = backbone.default_split if cfg.split_stage is None else cfg.split_stage
        if not 1 <= split <= n_stages:
            raise ValueError(
                f"model.split_stage must be in 1..{n_stages} for {backbone.name} "
                f"(stages: {', '.join(backbone.stage_names)}), got {split}"
            )
        self.split = split
        self.bottom_channels = backbone.stage_channels[split - 1]
        top_channels = backbone.stage_channels[-1]

        self.register_buffer("mean", torch.tensor(backbone.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(backbone.std).view(1, 3, 1, 1), persistent=False)

        layout = _bottom_layout(cfg.sharing, cfg.edge_branch)
        _check_domain_bn(cfg, layout)
        bottom = nn.Sequential(*backbone.stages[:split])
        # deepcopy, not a rebuild: every bottom starts from exactly the same pretrained weights.
        self.bottoms = nn.ModuleDict(
            {name: (bottom if i == 0 else copy.deepcopy(bottom)) for i, name in enumerate(layout)}
        )
        self.bottom_of: dict[str, str] = {b: name for name, branches in layout.items() for b in branches}
        # bottoms whose BatchNorm is per branch (model.domain_bn): each branch runs them on its own
        self.domain_bottoms: set[str] = set()
        if cfg.domain_bn:
            for name, branches in layout.items():
                if len(branches) > 1 and convert_to_domain_bn(self.bottoms[name], branches):
                    self.domain_bottoms.add(name)
        self.branches: tuple[str, ...] = tuple(b for b in BRANCHES if b in self.bottom_of)

        self.coattention: CoAttention | None = None
        if cfg.coattention and cfg.edge_branch:
            self.coattention = CoAttention(self.bottom_channels, cfg.coattention_reduction)

        self.top = nn.Sequential(*backbone.stages[split:])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embedding = nn.Sequential(
            nn.Linear(top_channels, cfg.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden_dim, cfg.embed_dim),
        )
        self.classifier = nn.Linear(cfg.embed_dim, num_classes)

    # ------------------------------------------------------------------------------ helpers

    def bottom(self, branch: str) -> nn.Module:
        """The bottom module a branch runs (the same object for branches that share it)."""
        if branch not in self.bottom_of:
            raise KeyError(f"this model has no {branch!r} branch (branches: {', '.join(self.branches)})")
        return self.bottoms[self.bottom_of[branch]]

    @property
    def embed_dim(self) -> int:
        return self.cfg.embed_dim

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3|1, H, W)`` images in [0, 1] -> ``(B, 3, H, W)`` backbone-normalised."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images of shape (B, 3, H, W) or (B, 1, H, W), got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std

    def _check_inputs(self, inputs: dict[str, torch.Tensor]) -> None:
        if self.coattention is None:
            return
        if ("photo" in inputs) != ("edge" in inputs):
            given, missing = ("photo", "edge") if "photo" in inputs else ("edge", "photo")
            raise ValueError(
                f"co-attention recalibrates a photo together with its own edgemap: {given} was "
                f"given without {missing}; pass both (or set model.coattention=false)"
            )
        if "photo" in inputs and inputs["photo"].shape[0] != inputs["edge"].shape[0]:
            raise ValueError(
                f"photo and edge batches differ in size: {inputs['photo'].shape[0]} vs {inputs['edge'].shape[0]}"
            )

    def _bottom_features(
        self, inputs: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor | None]:
        """Bottom features before and after co-attention, ``(B, Cb, h, w)`` per branch,
        and the channel weights ``(B, Cb)`` (None when co-attention did not run)."""
        self._check_inputs(inputs)
        before: dict[str, torch.Tensor] = {}
        for name in self.bottoms:
            branches = [b for b in self.branches if self.bottom_of[b] == name and b in inputs]
            if name in self.domain_bottoms:
                for b in branches:  # one call per branch: each meets its own BatchNorm
                    with domain(self.bottoms[name], b):
                        before[b] = self.bottoms[name](self.normalise(inputs[b]))
            elif branches:
                outs = _run_grouped(self.bottoms[name], [self.normalise(inputs[b]) for b in branches])
                before.update(zip(branches, outs))
        after, attention = dict(before), None
        if self.coattention is not None and "photo" in before:
            after["photo"], after["edge"], attention = self.coattention(before["photo"], before["edge"])
        return before, after, attention

    def _embed(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Shared top + pooling + embedding MLP: ``(B, Cb, h, w)`` -> raw ``(B, D)`` per branch."""
        names = [b for b in self.branches if b in features]
        tops = _run_grouped(self.top, [features[b] for b in names])
        return {b: self.embedding(self.pool(t).flatten(1)) for b, t in zip(names, tops)}

    def _gather(self, sketch: torch.Tensor | None, photo: torch.Tensor | None,
                edge: torch.Tensor | None) -> dict[str, torch.Tensor]:
        # Without an edge branch an edgemap is ignored rather than refused, so the training
        # loop can feed the same batches to every ablation.
        given = {"sketch": sketch, "photo": photo, "edge": edge if self.cfg.edge_branch else None}
        return {k: v for k, v in given.items() if v is not None}

    # ------------------------------------------------------------------------------ forward

    def forward(
        self,
        sketch: torch.Tensor | None = None,
        photo: torch.Tensor | None = None,
        edge: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Embeddings and logits for the branches given.

        Args:
            sketch, photo, edge: images in [0, 1], ``(B, 3, H, W)``; any may be omitted, but
                with co-attention a photo needs its edgemap (and vice versa).

        Returns:
            For each branch ``b`` given: ``b_embed`` ``(B, D)`` -- *raw*, not L2-normalised,
            since the losses decide their own normalisation (use :meth:`embed_sketch` /
            :meth:`embed_photo` for retrieval) -- and ``b_logits`` ``(B, C)``; plus
            ``attention`` ``(B, Cb)`` when co-attention ran.
        """
        inputs = self._gather(sketch, photo, edge)
        if not inputs:
            raise ValueError("Semi3Net.forward needs at least one of sketch, photo, edge")
        _, features, attention = self._bottom_features(inputs)
        out: dict[str, torch.Tensor] = {}
        for branch, embed in self._embed(features).items():
            out[f"{branch}_embed"] = embed
            out[f"{branch}_logits"] = self.classifier(embed)
        if attention is not None:
            out["attention"] = attention
        return out

    def embed_sketch(self, sketch: torch.Tensor) -> torch.Tensor:
        """L2-normalised retrieval embeddings ``(B, D)`` of sketches ``(B, 3, H, W)``."""
        _, features, _ = self._bottom_features({"sketch": sketch})
        return F.normalize(self._embed(features)["sketch"], dim=1)

    def set_gallery_embedding(self, name: str) -> None:
        """Choose how :meth:`embed_photo` embeds gallery photos (``model.gallery_embedding``):
        a retrieval-time choice, so a trained model can be scored both ways."""
        _check_gallery_embedding(name, self.cfg.edge_branch)
        self.cfg.gallery_embedding = name

    def embed_photo(self, photo: torch.Tensor, edge: torch.Tensor | None = None) -> torch.Tensor:
        """L2-normalised retrieval embeddings ``(B, D)`` of photos ``(B, 3, H, W)``.

        With co-attention the photo is recalibrated together with its own edgemap ``edge``
        (required then), as the paper embeds gallery photos; with
        ``model.gallery_embedding=photo+edge`` the embedding is the normalised mean of the
        photo's and its edgemap's (``edge`` required too); otherwise ``edge`` is unused.
        """
        return self.embed_photo_with_attention(photo, edge)[0]

    def embed_photo_with_attention(self, photo: torch.Tensor, edge: torch.Tensor | None = None
                                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`embed_photo` and the co-attention weights ``(B, Cb)`` it applied (None
        without co-attention), from one pass."""
        with_edge = self.cfg.gallery_embedding == "photo+edge"
        inputs = {"photo": photo}
        if self.coattention is not None or with_edge:
            if edge is None:
                why = "model.gallery_embedding=photo+edge" if with_edge else "co-attention is on"
                raise ValueError(f"embed_photo needs the photo's edgemap when {why} (pass edge=...)")
            inputs["edge"] = edge
        _, features, attention = self._bottom_features(inputs)
        embeds = self._embed({b: features[b] for b in (("photo", "edge") if with_edge else ("photo",))})
        embedding = F.normalize(embeds["photo"], dim=1)
        if with_edge:
            embedding = F.normalize(embedding + F.normalize(embeds["edge"], dim=1), dim=1)
        return embedding, attention

    def coattention_weights(self, photo: torch.Tensor, edge: torch.Tensor) -> torch.Tensor:
        """Co-attention channel weights ``(B, Cb)`` for photos and their edgemaps."""
        if self.coattention is None:
            raise ValueError("this model has no co-attention (model.coattention=false or no edge branch)")
        _, _, attention = self._bottom_features({"photo": photo, "edge": edge})
        assert attention is not None
        return attention

    def photo_feature_maps(self, photo: torch.Tensor, edge: torch.Tensor) -> dict[str, torch.Tensor]:
        """Bottom feature maps ``(B, Cb, h, w)`` for visualisation.

        Returns ``before_photo``, ``before_edge``, ``after_photo``, ``after_edge`` (after
        co-attention; equal to before without it) and, with co-attention, ``attention``
        ``(B, Cb)``, so that ``after_x == attention[:, :, None, None] * before_x``.
        """
        if not self.cfg.edge_branch:
            raise ValueError("this model has no edge branch (model.edge_branch=false)")
        before, after, attention = self._bottom_features({"photo": photo, "edge": edge})
        maps = {
            "before_photo": before["photo"], "before_edge": before["edge"],
            "after_photo": after["photo"], "after_edge": after["edge"],
        }
        if attention is not None:
            maps["attention"] = attention
        return maps

    # --------------------------------------------------------------------------- parameters

    def backbone_modules(self) -> list[nn.Module]:
        """The pretrained parts: every bottom and the shared top stages."""
        return [*self.bottoms.values(), self.top]

    def head_modules(self) -> list[nn.Module]:
        """The freshly initialised parts: co-attention, embedding MLP, classifier."""
        modules: list[nn.Module] = [self.embedding, self.classifier]
        if self.coattention is not None:
            modules.insert(0, self.coattention)
        return modules

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimiser parameter groups: ``[{"name": "backbone", "params": [...]},
        {"name": "head", "params": [...]}]``; torch optimisers keep the extra ``name`` key,
        so the caller can set e.g. a smaller ``lr`` on the backbone group."""
        groups = []
        for name, modules in (("backbone", self.backbone_modules()), ("head", self.head_modules())):
            params = list(dict.fromkeys(p for m in modules for p in m.parameters() if p.requires_grad))
            groups.append({"name": name, "params": params})
        return groups

    def branch_parameter_table(self) -> list[dict[str, Any]]:
        """Rows ``{"block", "n_params", "branches"}``: which branches use which weights."""

        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        rows = []
        bottom_stages = ", ".join(self.stage_names[: self.split])
        for name, module in self.bottoms.items():
            users = [b for b in self.branches if self.bottom_of[b] == name]
            rows.append({"block": f"bottom[{name}] ({bottom_stages})", "n_params": count(module),
                         "branches": ", ".join(users)})
        everyone = ", ".join(self.branches)
        if self.coattention is not None:
            rows.append({"block": "co-attention", "n_params": count(self.coattention), "branches": "photo, edge"})
        top_stages = ", ".join(self.stage_names[self.split:]) or "no backbone stages"
        rows.append({"block": f"top ({top_stages})", "n_params": count(self.top), "branches": everyone})
        rows.append({"block": "embedding MLP", "n_params": count(self.embedding), "branches": everyone})
        rows.append({"block": "classifier", "n_params": count(self.classifier), "branches": everyone})
        return rows

    def extra_repr(self) -> str:
        return (
            f"backbone={self.backbone_name!r} ({self.backbone_source}), split={self.split}, "
            f"sharing={self.cfg.sharing!r}, coattention={self.coattention is not None}, "
            f"edge_branch={self.cfg.edge_branch}, domain_bn={bool(self.domain_bottoms)}"
        )


__all__ = ["BRANCHES", "SHARING_MODES", "Semi3Net"]
