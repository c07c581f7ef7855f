"""Semi3-Net structure, ablation modes, co-attention and gradients (random init, 64 px)."""

from __future__ import annotations

import copy

import pytest
import torch

from semi3lib.config import LossConfig, ModelConfig
from semi3lib.models.losses import HybridLoss
from semi3lib.models import CoAttention, Semi3Net

pytestmark = pytest.mark.filterwarnings("ignore::semi3lib.models.RandomInitWarning")

SIZE = 64
NUM_CLASSES = 5


def make_model(**overrides) -> Semi3Net:
    torch.manual_seed(0)
    cfg = ModelConfig(pretrained=False, embed_dim=32, hidden_dim=64, **overrides)
    return Semi3Net(cfg, NUM_CLASSES)


def images(b: int, seed: int = 0, channels: int = 3) -> torch.Tensor:
    return torch.rand(b, channels, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def triplet_batch(b: int = 4) -> dict[str, torch.Tensor]:
    sketch_label = torch.arange(b) % NUM_CLASSES
    photo_label = sketch_label.clone()
    photo_label[1::2] = (photo_label[1::2] + 1) % NUM_CLASSES  # half the pairs are negatives
    return {"sketch": images(b, 1), "photo": images(b, 2), "edge": images(b, 3, channels=1),
            "sketch_label": sketch_label, "photo_label": photo_label,
            "same": (sketch_label == photo_label).float()}


def param_ids(module: torch.nn.Module) -> set[int]:
    return {id(p) for p in module.parameters()}


def test_sketch_and_edge_bottoms_share_parameters():
    model = make_model()
    assert model.bottom("sketch") is model.bottom("edge")
    assert param_ids(model.bottom("sketch")) == param_ids(model.bottom("edge"))


def test_photo_bottom_shares_no_parameter_with_sketch_and_edge_bottom():
    model = make_model()
    assert model.bottom("photo") is not model.bottom("sketch")
    assert not param_ids(model.bottom("photo")) & param_ids(model.bottom("sketch"))


def test_semi_mode_sketch_forward_trains_only_the_sketch_edge_bottom():
    model = make_model()
    model.train()
    model(sketch=images(2))["sketch_embed"].sum().backward()
    assert all(p.grad is not None for p in model.bottom("edge").parameters())
    assert all(p.grad is None for p in model.bottom("photo").parameters())


def test_photo_and_sketch_bottoms_start_from_the_same_weights():
    model = make_model()
    photo, sketch = model.bottom("photo").state_dict(), model.bottom("sketch").state_dict()
    assert photo.keys() == sketch.keys()
    for key in photo:
        assert torch.equal(photo[key], sketch[key])
        assert photo[key].data_ptr() != sketch[key].data_ptr() or photo[key].numel() == 0


def test_shared_mode_runs_every_branch_through_one_bottom():
    model = make_model(sharing="shared")
    assert len(model.bottoms) == 1
    assert model.bottom("sketch") is model.bottom("photo") is model.bottom("edge")


def test_separate_mode_has_three_disjoint_bottoms():
    model = make_model(sharing="separate")
    ids = [param_ids(model.bottom(b)) for b in ("sketch", "photo", "edge")]
    assert len(model.bottoms) == 3
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])


def test_top_embedding_and_classifier_are_shared_by_every_branch():
    model = make_model()
    top_ids = param_ids(model.top) | param_ids(model.embedding) | param_ids(model.classifier)
    assert not top_ids & set().union(*(param_ids(b) for b in model.bottoms.values()))
    rows = model.branch_parameter_table()
    assert sum(r["n_params"] for r in rows) == sum(p.numel() for p in model.parameters())
    assert {r["branches"] for r in rows if not r["block"].startswith(("bottom", "co-att"))} == {"sketch, photo, edge"}


def test_edge_branch_off_is_a_two_branch_sketch_photo_network():
    model = make_model(edge_branch=False)
    assert model.branches == ("sketch", "photo") and model.coattention is None
    model.train()
    out = model(sketch=images(2), photo=images(2, 1), edge=images(2, 2))  # an edgemap is ignored
    assert set(out) == {"sketch_embed", "sketch_logits", "photo_embed", "photo_logits"}
    loss, comps = HybridLoss(LossConfig(triplet_weight=1.0))(out, {"sketch_label": torch.tensor([0, 1]),
                                                                  "photo_label": torch.tensor([0, 2])})
    loss.backward()
    assert comps["alignment"] == 0 and comps["contrastive"] == 0
    assert all(p.grad is not None for p in model.parameters())  # no unused (edge) parameters


def test_coattention_off_has_no_attention_module():
    model = make_model(coattention=False)
    assert model.coattention is None
    assert not any("coattention" in name for name, _ in model.named_parameters())
    assert "attention" not in model(sketch=images(1), photo=images(1, 1), edge=images(1, 2))
    assert model.embed_photo(images(2)).shape == (2, 32)  # no edgemap needed


def test_photo_without_edge_is_an_error_when_coattention_is_on():
    model = make_model()
    with pytest.raises(ValueError, match="edgemap"):
        model(photo=images(2))
    with pytest.raises(ValueError, match="edgemap"):
        model.embed_photo(images(2))


def test_coattention_applies_the_same_channel_weights_to_both_domains():
    model = make_model().eval()
    with torch.no_grad():
        maps = model.photo_feature_maps(images(3), images(3, 1))
    s = maps["attention"]
    assert s.shape == (3, model.bottom_channels) and ((s > 0) & (s < 1)).all()
    # The per-channel scale each domain received, recovered from its before/after maps by
    # least squares, is the same vector for photo and edgemap (and equals the weights).
    for domain in ("photo", "edge"):
        before, after = maps[f"before_{domain}"], maps[f"after_{domain}"]
        scale = (after * before).sum(dim=(2, 3)) / before.pow(2).sum(dim=(2, 3)).clamp_min(1e-12)
        alive = before.abs().sum(dim=(2, 3)) > 0
        torch.testing.assert_close(scale[alive], s[alive], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(after, s[:, :, None, None] * before)


def test_coattention_weights_depend_on_both_domains():
    model = make_model().eval()
    photo = images(2)
    with torch.no_grad():
        a = model.coattention_weights(photo, images(2, 1))
        b = model.coattention_weights(photo, images(2, 5))
    assert not torch.allclose(a, b)


def test_coattention_module_shapes():
    attention = CoAttention(channels=24, reduction=16)
    photo, edge = torch.randn(2, 24, 5, 5), torch.randn(2, 24, 5, 5)
    p, e, s = attention(photo, edge)
    assert p.shape == e.shape == (2, 24, 5, 5) and s.shape == (2, 24)
    assert attention.squeeze.out_features == 3  # 2C / r


@pytest.mark.parametrize("mode", [dict(), dict(sharing="shared"), dict(sharing="separate"),
                                  dict(coattention=False), dict(edge_branch=False)],
                         ids=["semi", "shared", "separate", "no-coattention", "no-edge"])
def test_gradients_reach_every_branch(mode):
    model = make_model(**mode).train()
    batch = triplet_batch()
    out = model(sketch=batch["sketch"], photo=batch["photo"], edge=batch["edge"])
    cfg = LossConfig(ce_weight=1.0, alignment_weight=1.0, contrastive_weight=1.0, triplet_weight=1.0)
    loss, _ = HybridLoss(cfg)(out, batch)
    loss.backward()
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f"parameters without gradient: {missing[:5]}"


@pytest.mark.parametrize("batch_size", [1, 8])
def test_output_shapes(batch_size):
    model = make_model().train()  # train mode: BatchNorm must cope with a batch of one
    out = model(sketch=images(batch_size), photo=images(batch_size, 1), edge=images(batch_size, 2))
    for branch in ("sketch", "photo", "edge"):
        assert out[f"{branch}_embed"].shape == (batch_size, 32)
        assert out[f"{branch}_logits"].shape == (batch_size, NUM_CLASSES)
    assert out["attention"].shape == (batch_size, model.bottom_channels)
    model.eval()
    assert model.embed_sketch(images(batch_size)).shape == (batch_size, 32)
    assert model.embed_photo(images(batch_size, 1), images(batch_size, 2)).shape == (batch_size, 32)


def test_retrieval_embeddings_are_normalised_forward_outputs():
    model = make_model().eval()
    sketch, photo, edge = images(3), images(3, 1), images(3, 2)
    with torch.no_grad():
        out = model(sketch=sketch, photo=photo, edge=edge)
        s, p = model.embed_sketch(sketch), model.embed_photo(photo, edge)
    torch.testing.assert_close(s.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(s, torch.nn.functional.normalize(out["sketch_embed"], dim=1), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(p, torch.nn.functional.normalize(out["photo_embed"], dim=1), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(out["sketch_embed"].norm(dim=1), torch.ones(3))  # forward's are raw


@pytest.mark.parametrize("coattention", [True, False])
def test_photo_plus_edge_gallery_embedding_is_the_normalised_mean_of_both(coattention):
    model = make_model(coattention=coattention).eval()
    photo, edge = images(3, 1), images(3, 2)
    model.set_gallery_embedding("photo+edge")
    with torch.no_grad():
        out = model(photo=photo, edge=edge)
        fused = model.embed_photo(photo, edge)
    normalize = torch.nn.functional.normalize
    expected = normalize(normalize(out["photo_embed"], dim=1) + normalize(out["edge_embed"], dim=1), dim=1)
    torch.testing.assert_close(fused, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="gallery_embedding=photo\\+edge"):
        model.embed_photo(photo)  # the edgemap is needed even without co-attention
    model.set_gallery_embedding("photo")
    with torch.no_grad():
        torch.testing.assert_close(model.embed_photo(photo, edge), normalize(out["photo_embed"], dim=1),
                                   rtol=1e-4, atol=1e-5)


def test_photo_plus_edge_gallery_embedding_needs_the_edge_branch_and_a_known_name():
    with pytest.raises(ValueError, match="edge_branch"):
        make_model(edge_branch=False, gallery_embedding="photo+edge")
    with pytest.raises(ValueError, match="choose one of: photo, photo\\+edge"):
        make_model().set_gallery_embedding("edge")


def test_single_channel_input_equals_its_three_channel_copy():
    model = make_model().eval()
    gray = images(2, channels=1)
    with torch.no_grad():
        torch.testing.assert_close(model.embed_sketch(gray), model.embed_sketch(gray.expand(-1, 3, -1, -1)))


def test_parameter_groups_split_backbone_from_head():
    model = make_model()
    groups = {g["name"]: g["params"] for g in model.parameter_groups()}
    backbone, head = set(map(id, groups["backbone"])), set(map(id, groups["head"]))
    assert not backbone & head
    assert backbone | head == param_ids(model)
    assert param_ids(model.coattention) <= head and param_ids(model.bottom("photo")) <= backbone
    torch.optim.AdamW([{**g, "lr": 1e-4 if g["name"] == "backbone" else 1e-3} for g in model.parameter_groups()])


@pytest.mark.parametrize("split", [0, 10])
def test_split_stage_out_of_range_is_an_error(split):
    with pytest.raises(ValueError, match="split_stage"):
        make_model(split_stage=split)


def test_split_stage_moves_stages_between_bottom_and_top():
    model = make_model(split_stage=8)  # top = conv_head only
    assert model.bottom_channels == 320 and len(model.top) == 1
    assert model(sketch=images(1))["sketch_embed"].shape == (1, 32)


def test_unknown_sharing_mode_is_an_error():
    with pytest.raises(ValueError, match="sharing"):
        make_model(sharing="half")


def test_channels_last_model_gives_the_same_outputs_as_nchw():
    """Training and evaluation run the model channels-last for speed; it must not change what
    the model computes, whatever the memory format of the input."""
    model = make_model().eval()
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    batch = triplet_batch(4)
    with torch.no_grad():
        expected = model(sketch=batch["sketch"], photo=batch["photo"], edge=batch["edge"])
        got = fast(sketch=batch["sketch"].contiguous(memory_format=torch.channels_last),
                   photo=batch["photo"], edge=batch["edge"])
    for key, value in expected.items():
        if torch.is_tensor(value):
            torch.testing.assert_close(got[key], value, rtol=1e-4, atol=1e-5, msg=key)
