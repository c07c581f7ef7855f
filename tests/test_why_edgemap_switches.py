"""The switches that take the edgemap branch apart one mechanism at a time (issue 33):
``loss.edge_ce`` (the edgemap's cross-entropy term) and ``model.domain_bn`` (one BatchNorm per
branch in the shared sketch+edgemap bottom). Both are off by default, so every committed record
and checkpoint keeps its meaning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semi3lib.config import ConfigError, LossConfig, ModelConfig, load_config
from semi3lib.models import Semi3Net
from semi3lib.models.domain_bn import DomainBatchNorm, domain, domain_layers
from semi3lib.models.losses import HybridLoss

pytestmark = pytest.mark.filterwarnings("ignore::semi3lib.models.RandomInitWarning")

SIZE, NUM_CLASSES = 64, 5


def make_model(**overrides) -> Semi3Net:
    torch.manual_seed(0)
    return Semi3Net(ModelConfig(pretrained=False, embed_dim=32, hidden_dim=64, **overrides), NUM_CLASSES)


def images(b: int, seed: int, channels: int = 3) -> torch.Tensor:
    return torch.rand(b, channels, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def test_both_switches_are_off_by_default_and_refuse_what_is_not_a_boolean():
    cfg = load_config(None)
    assert cfg.loss.edge_ce is True and cfg.model.domain_bn is False
    assert load_config(None, ["loss.edge_ce=false", "model.domain_bn=true"]).model.domain_bn is True
    for override in ("loss.edge_ce=maybe", "model.domain_bn=2"):
        with pytest.raises(ConfigError, match=override.split("=")[0] + ": expected true/false"):
            load_config(None, [override])


# ------------------------------------------------------------------------------- loss.edge_ce

def test_edge_ce_off_drops_exactly_the_edgemap_cross_entropy_term():
    torch.manual_seed(1)
    b = 6
    outputs = {f"{d}_{k}": torch.randn(b, n) for d in ("sketch", "photo", "edge") for k, n in
               (("embed", 16), ("logits", NUM_CLASSES))}
    labels = torch.arange(b) % NUM_CLASSES
    batch = {"sketch_label": labels, "photo_label": labels.roll(1), "same": torch.zeros(b)}
    total_on, parts_on = HybridLoss(LossConfig(label_smoothing=0.1, ce_weight=0.7))(outputs, batch)
    total_off, parts_off = HybridLoss(LossConfig(label_smoothing=0.1, ce_weight=0.7, edge_ce=False))(outputs, batch)
    # the edgemap's term, written out: its logits against its photo's labels
    edge_term = F.cross_entropy(outputs["edge_logits"], batch["photo_label"], label_smoothing=0.1)
    assert float(parts_on["ce"] - parts_off["ce"]) == pytest.approx(float(edge_term), rel=1e-6)
    assert float(total_on - total_off) == pytest.approx(0.7 * float(edge_term), rel=1e-6)
    for other in ("alignment", "contrastive", "triplet"):
        assert float(parts_on[other]) == float(parts_off[other])


def test_edge_ce_off_still_trains_the_edgemap_through_the_other_terms():
    model = make_model()
    batch = {"sketch": images(4, 1), "photo": images(4, 2), "edge": images(4, 3, channels=1)}
    labels = torch.arange(4) % NUM_CLASSES
    out = model(**batch)
    loss, _ = HybridLoss(LossConfig(edge_ce=False))(out, {"sketch_label": labels, "photo_label": labels})
    loss.backward()
    assert model.coattention is not None and all(p.grad is not None for p in model.coattention.parameters())


# ----------------------------------------------------------------------------- model.domain_bn

def test_domain_bn_off_leaves_the_state_dict_exactly_as_before():
    plain, default = make_model(), make_model(domain_bn=False)
    assert not domain_layers(default)
    assert list(default.state_dict()) == list(plain.state_dict())
    # a checkpoint of the default model loads strictly into it (what old checkpoints are)
    default.load_state_dict(plain.state_dict(), strict=True)


def test_domain_bn_grows_the_parameters_by_the_affine_params_of_the_shared_bottom():
    plain, split = make_model(), make_model(domain_bn=True)
    bns = [m for m in plain.bottom("sketch").modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    affine = sum(m.weight.numel() + m.bias.numel() for m in bns)
    assert bns and affine > 0
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(split) - count(plain) == affine  # one more copy: the edgemap's
    layers = domain_layers(split.bottom("sketch"))
    assert len(layers) == len(bns) and all(tuple(layer.bns) == ("sketch", "edge") for layer in layers)
    assert not domain_layers(split.bottom("photo")) and not domain_layers(split.top)


def test_every_domain_starts_from_the_pretrained_batchnorm():
    plain, split = make_model(), make_model(domain_bn=True)
    before = {k: v for k, v in plain.bottom("sketch").state_dict().items()}
    after = split.bottom("sketch").state_dict()
    for key, value in before.items():
        module, _, leaf = key.rpartition(".")
        if f"{module}.bns.sketch.{leaf}" in after:
            assert torch.equal(after[f"{module}.bns.sketch.{leaf}"], value)
            assert torch.equal(after[f"{module}.bns.edge.{leaf}"], value)
        else:
            assert torch.equal(after[key], value)  # the shared convolutions


def test_sketch_embeddings_ignore_the_edgemap_batchnorm_statistics_in_eval_mode():
    model = make_model(domain_bn=True)
    model.eval()
    sketches = images(3, 5)
    with torch.no_grad():
        before = model.embed_sketch(sketches)
        for layer in domain_layers(model.bottom("edge")):
            layer.bns["edge"].running_mean.add_(3.0)
            layer.bns["edge"].running_var.mul_(5.0)
        assert torch.equal(model.embed_sketch(sketches), before)
        # and the edgemaps' do move: the perturbation reached something
        layer = domain_layers(model.bottom("sketch"))[0]
        layer.bns["sketch"].running_mean.add_(3.0)
        assert not torch.allclose(model.embed_sketch(sketches), before)


def test_in_training_each_domain_updates_only_its_own_running_statistics():
    model = make_model(domain_bn=True)
    model.train()
    first = domain_layers(model.bottom("sketch"))[0]
    edge_stats = first.bns["edge"].running_mean.clone()
    model(sketch=images(4, 1))
    assert torch.equal(first.bns["edge"].running_mean, edge_stats)
    model(sketch=images(4, 1), photo=images(4, 2), edge=images(4, 3, channels=1))
    assert not torch.equal(first.bns["edge"].running_mean, edge_stats)


def test_a_domain_layer_refuses_to_run_without_a_domain_or_with_an_unknown_one():
    layer = DomainBatchNorm(torch.nn.BatchNorm2d(4), ("sketch", "edge"))
    with pytest.raises(RuntimeError, match="without a domain"):
        layer(torch.rand(2, 4, 3, 3))
    with pytest.raises(KeyError, match="photo"):
        with domain(layer, "photo"):
            pass
    with pytest.raises(ValueError, match="two or more distinct"):
        DomainBatchNorm(torch.nn.BatchNorm2d(4), ("sketch",))


@pytest.mark.parametrize("overrides", [dict(sharing="separate"), dict(edge_branch=False)])
def test_domain_bn_without_a_shared_bottom_is_a_clear_error(overrides):
    with pytest.raises(ValueError, match="model.domain_bn=true needs a bottom that several branches share"):
        make_model(domain_bn=True, **overrides)


def test_domain_bn_in_the_shared_mode_gives_each_of_the_three_branches_its_batchnorm():
    model = make_model(domain_bn=True, sharing="shared")
    assert {tuple(layer.bns) for layer in domain_layers(model.bottom("photo"))} == {("sketch", "photo", "edge")}
    out = model(sketch=images(2, 1), photo=images(2, 2), edge=images(2, 3))
    assert out["sketch_embed"].shape == (2, 32)
