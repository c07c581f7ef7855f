"""The hybrid loss of Semi3-Net and its parts, one module per term.

    L = ce_weight          * sum_{d present} CE(classifier(f_d), y_d)          [BranchCrossEntropy]
                             (d = edge only with loss.edge_ce, the default)
      + alignment_weight   * mean_i ||n(f_photo_i) - n(f_edge_i)||^2             [AlignmentLoss]
      + contrastive_weight * mean_i [y_i d_i^2 + (1 - y_i) max(0, m - d_i)^2]    [ContrastiveLoss]
      + triplet_weight     * batch-hard triplet(sketch -> photos)                [TripletLoss]

and, for instance-level batches (the batch carries ``photo_index``, each sketch's own photo):

      + instance_weight    * [instance triplet(sketch -> photos) + instance triplet(sketch -> edgemaps)]

the instance triplet being :class:`TripletLoss` with the photo (not the category) as the label:
the positive is the sketch's own photo (own edgemap), the negative the closest other photo
(edgemap) of the batch; batches of several photos per category make that, mostly, a photo of
the same category. The two instance terms are logged apart (``instance``, ``instance_edge``);
the second needs the edge branch. In such batches each edgemap is the sketch's own photo's, so
the contrastive term pulls a sketch towards the outline of its own photo (``same`` is 1).

with ``n(f) = f / ||f||`` and ``d_i = ||n(f_sketch_i) - n(f_edge_i)||``. The alignment and
contrastive terms are [paper]; their exact form and every weight are [assumed].

Embedding inputs are the *raw* ``*_embed`` outputs of :class:`semi3lib.models.Semi3Net`;
each metric loss L2-normalises them itself (``normalize=True``, the default), because:
retrieval ranks by cosine similarity, so these losses should shape the same geometry; on raw
embeddings the alignment loss could shrink to zero by scaling every embedding down, and a
fixed contrastive or triplet margin could be met by scaling them up; on the unit sphere
distances lie in [0, 2] so the default margins (1.0 contrastive, 0.2 triplet) mean the
same thing whatever the embedding dimension.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from semi3lib.config import LossConfig

COMPONENTS = ("ce", "alignment", "contrastive", "triplet", "total")
# Logged besides COMPONENTS for instance-level batches only (category runs' logs keep their columns).
INSTANCE_COMPONENTS = ("instance", "instance_edge")

# Squared distances are clamped here before the square root: d = sqrt(d^2) has an infinite
# gradient at d = 0 (a sketch identical to its edgemap), which would turn the step into NaNs.
_DIST_EPS = 1e-12


def _maybe_normalize(x: torch.Tensor, normalize: bool) -> torch.Tensor:
    return F.normalize(x, dim=1) if normalize else x


def _pair_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between matching rows of ``(B, D)`` tensors -> ``(B,)``."""
    return (a - b).pow(2).sum(dim=1).clamp_min(_DIST_EPS).sqrt()


class BranchCrossEntropy(nn.Module):
    """Sum over the branches present of the mean cross-entropy of their logits.

        CE = sum_{d in {sketch, photo, edge} present} mean_i CE(logits_d[i], y_d[i])

    An edgemap is labelled with its photo's category (``photo_label``); ``edge=False`` leaves
    the edgemap's term out (``loss.edge_ce``).
    """

    # branch -> label key in the batch
    LABELS = {"sketch": "sketch_label", "photo": "photo_label", "edge": "photo_label"}

    def __init__(self, label_smoothing: float = 0.0, edge: bool = True) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing
        self.branches = tuple(b for b in self.LABELS if edge or b != "edge")

    def forward(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``outputs``: ``{branch}_logits`` ``(B, C)``; ``batch``: labels ``(B,)`` -> scalar."""
        terms = [
            F.cross_entropy(outputs[f"{branch}_logits"], batch[label].long(),
                            label_smoothing=self.label_smoothing)
            for branch, label in self.LABELS.items()
            if branch in self.branches and f"{branch}_logits" in outputs
        ]
        if not terms:
            raise ValueError("BranchCrossEntropy: the outputs hold no *_logits")
        return torch.stack(terms).sum()


class AlignmentLoss(nn.Module):
    """Alignment of a photo with its own edgemap [paper; form assumed].

        L_a = mean_i ||n(f_photo_i) - n(f_edge_i)||^2  in [0, 4]

    (``n`` = L2 normalisation, on by default; see the module docstring for why).
    """

    def __init__(self, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize

    def forward(self, photo: torch.Tensor, edge: torch.Tensor) -> torch.Tensor:
        """``photo``, ``edge``: ``(B, D)`` embeddings of matching photo/edgemap pairs -> scalar."""
        photo, edge = _maybe_normalize(photo, self.normalize), _maybe_normalize(edge, self.normalize)
        return (photo - edge).pow(2).sum(dim=1).mean()


class ContrastiveLoss(nn.Module):
    """Sketch-edgemap contrastive loss [paper; form assumed] (Hadsell et al. 2006).

        L_c = mean_i [ y_i d_i^2 + (1 - y_i) max(0, m - d_i)^2 ],  d_i = ||n(f_sketch_i) - n(f_edge_i)||

    ``y_i = 1`` when edgemap i shows sketch i's category: same-category pairs are pulled
    together, other pairs pushed at least ``margin`` apart.
    """

    def __init__(self, margin: float = 1.0, normalize: bool = True) -> None:
        super().__init__()
        self.margin = margin
        self.normalize = normalize

    def forward(self, sketch: torch.Tensor, edge: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        """``sketch``, ``edge``: ``(B, D)``; ``same``: ``(B,)`` 1/0 (or bool) -> scalar."""
        sketch, edge = _maybe_normalize(sketch, self.normalize), _maybe_normalize(edge, self.normalize)
        y = same.to(sketch.dtype)
        d = _pair_distance(sketch, edge)
        positive = y * d.pow(2)
        negative = (1 - y) * (self.margin - d).clamp_min(0).pow(2)
        return (positive + negative).mean()


class TripletLoss(nn.Module):
    """Sketch-to-photo triplet loss with batch-hard mining, for baselines (Hermans et al. 2017).

    Every sketch i is an anchor; over the photos of the batch, its positive is the *farthest*
    photo of its category and its negative the *closest* photo of another category:

        L_t = mean_{i valid} max(0, max_{j: y_j = y_i} d(s_i, p_j) - min_{k: y_k != y_i} d(s_i, p_k) + m)

    with ``d`` the Euclidean distance of normalised embeddings. Anchors with no same-category
    or no other-category photo in the batch are skipped; if none is valid the loss is 0.
    """

    def __init__(self, margin: float = 0.2, normalize: bool = True) -> None:
        super().__init__()
        self.margin = margin
        self.normalize = normalize

    def forward(
        self, sketch: torch.Tensor, sketch_label: torch.Tensor, photo: torch.Tensor, photo_label: torch.Tensor
    ) -> torch.Tensor:
        """``sketch`` ``(B, D)`` with labels ``(B,)``; ``photo`` ``(P, D)`` with labels ``(P,)`` -> scalar."""
        sketch, photo = _maybe_normalize(sketch, self.normalize), _maybe_normalize(photo, self.normalize)
        # (B, P) distances, computed pairwise (not via the a^2 + b^2 - 2ab expansion, which
        # loses precision for the near-duplicates that batch-hard mining cares about).
        dist = (sketch[:, None, :] - photo[None, :, :]).pow(2).sum(dim=2).clamp_min(_DIST_EPS).sqrt()
        same = sketch_label[:, None] == photo_label[None, :]
        valid = same.any(dim=1) & (~same).any(dim=1)
        if not valid.any():
            return dist.sum() * 0.0  # keeps the graph so backward() still works
        hardest_positive = dist.masked_fill(~same, float("-inf")).amax(dim=1)
        hardest_negative = dist.masked_fill(same, float("inf")).amin(dim=1)
        losses = (hardest_positive - hardest_negative + self.margin).clamp_min(0)
        return losses[valid].mean()


class HybridLoss(nn.Module):
    """The weighted sum of the terms above, with every component for logging.

    A term runs only when its weight is nonzero and its inputs are present (no edge branch:
    no alignment or contrastive term); a skipped term is reported as 0.

    ``__call__(outputs, batch) -> (total, components)``:

    - ``outputs``: :meth:`Semi3Net.forward`'s dict (raw ``*_embed`` ``(B, D)``, ``*_logits``).
    - ``batch``: ``sketch_label`` ``(B,)``, ``photo_label`` ``(B,)``, ``same`` ``(B,)``
      (1.0 where the photo/edgemap pair is the sketch's category; derived from the labels
      when absent); for an instance-level batch also ``photo_index`` ``(B,)``, the photo of
      each item (the sketch's own), which switches the instance terms on.
    - ``total``: scalar tensor with graph. ``components``: detached scalar tensors for
      ``ce``, ``alignment``, ``contrastive``, ``triplet`` (unweighted term values) and
      ``total`` (the weighted sum); for an instance-level batch also ``instance`` and
      ``instance_edge``.
    """

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.ce = BranchCrossEntropy(cfg.label_smoothing, edge=cfg.edge_ce)
        self.alignment = AlignmentLoss()
        self.contrastive = ContrastiveLoss(cfg.contrastive_margin)
        self.triplet = TripletLoss(cfg.triplet_margin)
        self.instance = TripletLoss(cfg.instance_margin)  # labelled by photo: see the module docstring

    def forward(
        self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        terms: dict[str, tuple[float, torch.Tensor]] = {}
        if cfg.ce_weight and any(f"{b}_logits" in outputs for b in self.ce.branches):
            terms["ce"] = (cfg.ce_weight, self.ce(outputs, batch))
        if cfg.alignment_weight and {"photo_embed", "edge_embed"} <= outputs.keys():
            terms["alignment"] = (cfg.alignment_weight,
                                  self.alignment(outputs["photo_embed"], outputs["edge_embed"]))
        if cfg.contrastive_weight and {"sketch_embed", "edge_embed"} <= outputs.keys():
            same = batch.get("same")
            if same is None:
                same = batch["sketch_label"] == batch["photo_label"]
            terms["contrastive"] = (cfg.contrastive_weight,
                                    self.contrastive(outputs["sketch_embed"], outputs["edge_embed"], same))
        if cfg.triplet_weight and {"sketch_embed", "photo_embed"} <= outputs.keys():
            terms["triplet"] = (cfg.triplet_weight, self.triplet(
                outputs["sketch_embed"], batch["sketch_label"], outputs["photo_embed"], batch["photo_label"]))
        instance_batch = "photo_index" in batch
        if instance_batch and cfg.instance_weight and "sketch_embed" in outputs:
            own = batch["photo_index"]
            for name, key in (("instance", "photo_embed"), ("instance_edge", "edge_embed")):
                if key in outputs:
                    terms[name] = (cfg.instance_weight, self.instance(outputs["sketch_embed"], own, outputs[key], own))
        if not terms:
            raise ValueError("HybridLoss: every term is switched off or lacks its inputs")

        total = torch.stack([weight * value for weight, value in terms.values()]).sum()
        zero = total.detach().new_zeros(())
        names = COMPONENTS[:-1] + (INSTANCE_COMPONENTS if instance_batch else ())
        components = {name: (terms[name][1].detach() if name in terms else zero) for name in names}
        components["total"] = total.detach()
        return total, components


__all__ = ["AlignmentLoss", "BranchCrossEntropy", "COMPONENTS", "INSTANCE_COMPONENTS", "ContrastiveLoss", "HybridLoss", "TripletLoss"]
