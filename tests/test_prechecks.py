"""The pre-run checks (semi3lib.engine.prechecks) one by one, without training: what they
refuse, where their limits lie, and that no config or study row the project ships is refused.
The end-to-end cases (no run folder left behind, the corrected run needs no --overwrite) are
in test_hostile_inputs.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from semi3lib.config import ConfigError, load_config
from semi3lib.engine import prechecks
from semi3lib.engine.prechecks import check_config, check_memory, check_writable, parameter_count
from semi3lib.io import OutputError
from semi3lib.models import Semi3Net

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "smoke.yaml"
SHIPPED = sorted((REPO / "configs").glob("*.yaml"))
PLANS = [p.name for p in SHIPPED if "rows" in yaml.safe_load(p.read_text())]  # study plans: rows of configs
CONFIGS = [p.name for p in SHIPPED if p.name not in PLANS]


@pytest.mark.parametrize("name", CONFIGS)
def test_every_shipped_config_passes_the_checks(name):
    check_config(load_config(REPO / "configs" / name))


@pytest.mark.parametrize("plan", PLANS)
def test_every_row_of_the_shipped_study_plans_passes_the_checks(plan):
    from semi3lib.study.runner import load_plan

    study = load_plan(REPO / "configs" / plan)
    for row in study.rows:
        for seed in study.seeds_of(row):
            check_config(study.config(row, seed))


@pytest.mark.parametrize("overrides, ok", [
    (["train.lr=10"], True),
    (["train.lr=10.001"], False),
    (["train.backbone_lr_scale=0"], True),  # a frozen backbone (a study row)
    (["train.lr=1", "train.weight_decay=1"], True),
    (["train.lr=1", "train.weight_decay=1.5"], False),  # 1 - lr * wd < 0 flips the weights
    (["loss.contrastive_margin=3e38"], True),
    (["loss.contrastive_margin=4e38"], False),  # beyond float32
])
def test_the_numeric_limits_lie_where_documented(overrides, ok):
    cfg = load_config(SMOKE, overrides)
    if ok:
        check_config(cfg)
    else:
        with pytest.raises(ConfigError):
            check_config(cfg)


def test_a_config_built_in_code_is_checked_like_a_loaded_one():
    import dataclasses

    cfg = load_config(SMOKE)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=0))  # skips load_config's check
    with pytest.raises(ConfigError, match="train.epochs: 0 is out of range"):
        check_config(cfg)


@pytest.mark.parametrize("batch, world, match", [
    (8, 3, "cannot be split over 3 processes"),
    (2, 2, "1 per process; BatchNorm needs at least 2"),
])
def test_the_batch_must_split_into_at_least_two_per_process(batch, world, match):
    with pytest.raises(ConfigError, match=match):
        check_config(load_config(SMOKE, [f"train.batch_size={batch}"]), world=world)
    check_config(load_config(SMOKE, ["train.batch_size=8"]), world=2)


def test_the_loss_check_follows_which_terms_the_model_can_feed():
    check_config(load_config(SMOKE, ["loss.ce_weight=0", "loss.alignment_weight=0", "loss.contrastive_weight=0",
                                     "loss.triplet_weight=1"]))  # triplet alone: a study row
    with pytest.raises(ConfigError, match="need the edgemap branch"):
        check_config(load_config(SMOKE, ["model.edge_branch=false", "loss.ce_weight=0"]))


@pytest.mark.parametrize("overrides", [
    ["model.sharing=separate"], ["model.coattention=false", "model.edge_branch=false"], ["model.embed_dim=16"],
])
def test_the_meta_device_parameter_count_is_the_built_models(overrides):
    cfg = load_config(SMOKE, ["model.pretrained=false", *overrides])
    model = Semi3Net(cfg.model, num_classes=7, load_weights=False)
    built = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
    assert parameter_count(cfg, 7) == built


def test_the_memory_check_refuses_above_half_the_devices_memory(monkeypatch):
    cfg = load_config(SMOKE, ["model.pretrained=false"])
    needed = parameter_count(cfg, 5) * 4 * 4  # AdamW: weights, gradients, two moments, float32
    monkeypatch.setattr(prechecks, "device_memory", lambda device: 2 * needed + 8)
    check_memory(cfg, 5, torch.device("cpu"))
    monkeypatch.setattr(prechecks, "device_memory", lambda device: 2 * needed - 8)
    with pytest.raises(ConfigError, match=r"more than half of this machine's memory"):
        check_memory(cfg, 5, torch.device("cpu"))
    monkeypatch.setattr(prechecks, "device_memory", lambda device: None)  # unknown: nothing to compare
    check_memory(cfg, 5, torch.device("cpu"))


def test_a_path_is_writable_through_missing_folders_but_not_under_a_file(tmp_path):
    check_writable(tmp_path / "a" / "b" / "record.json", "--results file")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_writable(tmp_path / "notes.txt" / "record.json", "--results file")
    assert not (tmp_path / "a").exists()  # checking creates nothing
