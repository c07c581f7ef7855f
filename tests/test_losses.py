"""Every loss term against a brute-force Python loop, in float32 and float64."""

from __future__ import annotations

import math

import pytest
import torch

from semi3lib.config import LossConfig
from semi3lib.models.losses import (
    COMPONENTS,
    AlignmentLoss,
    BranchCrossEntropy,
    ContrastiveLoss,
    HybridLoss,
    TripletLoss,
)

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(rel=1e-5, abs=1e-6), torch.float64: dict(rel=1e-11, abs=1e-12)}


def _rows(x: torch.Tensor) -> list[list[float]]:
    return x.detach().double().tolist()


def _unit(v: list[float]) -> list[float]:
    n = math.sqrt(sum(a * a for a in v))
    return [a / n for a in v]


def _dist(a: list[float], b: list[float]) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def _ce_loop(logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> float:
    total = 0.0
    for row, y in zip(_rows(logits), labels.tolist()):
        top = max(row)
        log_z = top + math.log(sum(math.exp(v - top) for v in row))
        nll = [log_z - v for v in row]
        total += (1 - smoothing) * nll[y] + smoothing * sum(nll) / len(row)
    return total / len(labels)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_branch_cross_entropy_matches_loop(dtype, smoothing, gen):
    b, c = 6, 5
    outputs = {f"{d}_logits": torch.randn(b, c, generator=gen, dtype=dtype) * 3 for d in ("sketch", "photo", "edge")}
    batch = {"sketch_label": torch.randint(c, (b,), generator=gen), "photo_label": torch.randint(c, (b,), generator=gen)}
    loss = BranchCrossEntropy(smoothing)(outputs, batch)
    expected = (_ce_loop(outputs["sketch_logits"], batch["sketch_label"], smoothing)
                + _ce_loop(outputs["photo_logits"], batch["photo_label"], smoothing)
                + _ce_loop(outputs["edge_logits"], batch["photo_label"], smoothing))
    assert loss.dtype == dtype
    assert loss.item() == pytest.approx(expected, **TOL[dtype])


def test_branch_cross_entropy_sums_only_present_branches(gen):
    outputs = {"sketch_logits": torch.randn(4, 3, generator=gen), "photo_logits": torch.randn(4, 3, generator=gen)}
    batch = {"sketch_label": torch.tensor([0, 1, 2, 0]), "photo_label": torch.tensor([1, 1, 2, 0])}
    expected = (_ce_loop(outputs["sketch_logits"], batch["sketch_label"], 0)
                + _ce_loop(outputs["photo_logits"], batch["photo_label"], 0))
    assert BranchCrossEntropy()(outputs, batch).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("normalize", [True, False])
def test_alignment_loss_matches_loop(dtype, normalize, gen):
    photo, edge = (torch.randn(7, 4, generator=gen, dtype=dtype) for _ in range(2))
    expected = 0.0
    for p, e in zip(_rows(photo), _rows(edge)):
        if normalize:
            p, e = _unit(p), _unit(e)
        expected += sum((a - b) ** 2 for a, b in zip(p, e))
    expected /= len(photo)
    loss = AlignmentLoss(normalize)(photo, edge)
    assert loss.dtype == dtype
    assert loss.item() == pytest.approx(expected, **TOL[dtype])


def test_alignment_loss_is_scale_invariant_by_default(gen):
    photo, edge = torch.randn(5, 8, generator=gen), torch.randn(5, 8, generator=gen)
    loss = AlignmentLoss()
    assert loss(photo * 0.01, edge * 100).item() == pytest.approx(loss(photo, edge).item(), rel=1e-5)


def _contrastive_loop(sketch, edge, same, margin, normalize) -> float:
    total = 0.0
    for s, e, y in zip(_rows(sketch), _rows(edge), same.tolist()):
        if normalize:
            s, e = _unit(s), _unit(e)
        d = _dist(s, e)
        total += y * d**2 + (1 - y) * max(0.0, margin - d) ** 2
    return total / len(same)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("normalize,margin", [(True, 1.0), (True, 1.6), (False, 3.0)])
def test_contrastive_loss_matches_loop(dtype, normalize, margin, gen):
    sketch, edge = (torch.randn(10, 6, generator=gen, dtype=dtype) for _ in range(2))
    same = torch.tensor([1, 0, 1, 0, 0, 1, 0, 0, 1, 0], dtype=dtype)
    loss = ContrastiveLoss(margin, normalize)(sketch, edge, same)
    expected = _contrastive_loop(sketch, edge, same, margin, normalize)
    # the negatives must cover both sides of the margin, or the hinge is untested
    d = (torch.nn.functional.normalize(sketch, dim=1) - torch.nn.functional.normalize(edge, dim=1)).norm(dim=1) \
        if normalize else (sketch - edge).norm(dim=1)
    neg = d[same == 0]
    assert (neg < margin).any() and (neg > margin).any()
    assert loss.dtype == dtype
    assert loss.item() == pytest.approx(expected, **TOL[dtype])


def test_contrastive_gradient_is_finite_for_identical_pair():
    sketch = torch.randn(3, 4, requires_grad=True)
    edge = sketch.detach().clone()
    ContrastiveLoss(1.0)(sketch, edge, torch.tensor([0.0, 1.0, 0.0])).backward()
    assert torch.isfinite(sketch.grad).all()


def _triplet_loop(sketch, s_labels, photo, p_labels, margin) -> float:
    s_rows, p_rows = [_unit(r) for r in _rows(sketch)], [_unit(r) for r in _rows(photo)]
    losses = []
    for s, ys in zip(s_rows, s_labels.tolist()):
        pos = [_dist(s, p) for p, yp in zip(p_rows, p_labels.tolist()) if yp == ys]
        neg = [_dist(s, p) for p, yp in zip(p_rows, p_labels.tolist()) if yp != ys]
        if pos and neg:
            losses.append(max(0.0, max(pos) - min(neg) + margin))
    return sum(losses) / len(losses) if losses else 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_triplet_loss_matches_loop(dtype, margin, gen):
    sketch, photo = torch.randn(8, 5, generator=gen, dtype=dtype), torch.randn(9, 5, generator=gen, dtype=dtype)
    s_labels = torch.tensor([0, 1, 2, 0, 1, 3, 2, 0])  # label 3 has no photo: that anchor is skipped
    p_labels = torch.tensor([0, 1, 2, 2, 1, 0, 4, 1, 0])
    loss = TripletLoss(margin)(sketch, s_labels, photo, p_labels)
    assert loss.dtype == dtype
    assert loss.item() == pytest.approx(_triplet_loop(sketch, s_labels, photo, p_labels, margin), **TOL[dtype])


def test_triplet_loss_without_valid_anchor_is_zero_and_differentiable():
    sketch = torch.randn(3, 4, requires_grad=True)
    loss = TripletLoss()(sketch, torch.tensor([0, 0, 0]), torch.randn(2, 4), torch.tensor([0, 0]))
    loss.backward()
    assert loss.item() == 0.0 and sketch.grad is not None


def _outputs(gen, b=6, d=8, c=4, dtype=torch.float32, edge=True):
    out = {}
    for branch in ("sketch", "photo", "edge") if edge else ("sketch", "photo"):
        out[f"{branch}_embed"] = torch.randn(b, d, generator=gen, dtype=dtype)
        out[f"{branch}_logits"] = torch.randn(b, c, generator=gen, dtype=dtype)
    s_label = torch.tensor([0, 1, 2, 3, 0, 1])
    p_label = torch.tensor([0, 2, 2, 1, 0, 3])
    batch = {"sketch_label": s_label, "photo_label": p_label, "same": (s_label == p_label).to(dtype)}
    return out, batch


@pytest.mark.parametrize("dtype", DTYPES)
def test_hybrid_loss_is_the_weighted_sum_of_its_terms(dtype, gen):
    cfg = LossConfig(ce_weight=0.7, alignment_weight=2.0, contrastive_weight=0.5, contrastive_margin=1.2,
                     triplet_weight=0.3, triplet_margin=0.4, label_smoothing=0.1)
    out, batch = _outputs(gen, dtype=dtype)
    total, comps = HybridLoss(cfg)(out, batch)
    ce = BranchCrossEntropy(0.1)(out, batch)
    al = AlignmentLoss()(out["photo_embed"], out["edge_embed"])
    co = ContrastiveLoss(1.2)(out["sketch_embed"], out["edge_embed"], batch["same"])
    tr = TripletLoss(0.4)(out["sketch_embed"], batch["sketch_label"], out["photo_embed"], batch["photo_label"])
    expected = 0.7 * ce + 2.0 * al + 0.5 * co + 0.3 * tr
    assert set(comps) == set(COMPONENTS)
    assert total.dtype == dtype
    assert total.item() == pytest.approx(expected.item(), **TOL[dtype])
    for name, value in (("ce", ce), ("alignment", al), ("contrastive", co), ("triplet", tr), ("total", expected)):
        assert comps[name].item() == pytest.approx(value.item(), **TOL[dtype])
        assert not comps[name].requires_grad


def test_hybrid_loss_skips_zero_weight_and_absent_terms(gen):
    out, batch = _outputs(gen, edge=False)
    total, comps = HybridLoss(LossConfig())(out, batch)  # default: triplet weight 0, no edge outputs
    assert comps["alignment"].item() == comps["contrastive"].item() == comps["triplet"].item() == 0.0
    assert total.item() == pytest.approx(comps["ce"].item())
    assert comps["total"].item() == pytest.approx(total.item())


def test_hybrid_loss_derives_same_from_labels_when_absent(gen):
    out, batch = _outputs(gen)
    with_same = HybridLoss(LossConfig())(out, batch)[0]
    del batch["same"]
    assert HybridLoss(LossConfig())(out, batch)[0].item() == pytest.approx(with_same.item())


def test_hybrid_loss_with_every_term_off_is_an_error(gen):
    out, batch = _outputs(gen)
    cfg = LossConfig(ce_weight=0, alignment_weight=0, contrastive_weight=0, triplet_weight=0)
    with pytest.raises(ValueError, match="switched off"):
        HybridLoss(cfg)(out, batch)
