from pathlib import Path

import pytest

from semi3lib.config import ConfigError, ExperimentConfig, load_config, save_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["sketchy-mini-cpu", "sketchy-gpu", "tuberlin-ext-gpu", "smoke"])
def test_shipped_configs_load(name):
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert isinstance(cfg, ExperimentConfig)


def test_paper_setting_configs_use_vgg19_at_224px():
    for name in ("sketchy-gpu", "tuberlin-ext-gpu"):
        cfg = load_config(REPO / "configs" / f"{name}.yaml")
        assert (cfg.model.backbone, cfg.data.image_size, cfg.model.sharing) == ("vgg19", 224, "semi")
    assert load_config(REPO / "configs" / "tuberlin-ext-gpu.yaml").data.dataset == "tuberlin-ext"


def test_unknown_key_is_an_error_that_names_it(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  coatention: false\n")
    with pytest.raises(ConfigError, match="model.coatention"):
        load_config(path)
    with pytest.raises(ConfigError, match="trian"):
        load_config(None, ["trian.epochs=3"])


def test_overrides_are_typed():
    cfg = load_config(REPO / "configs" / "smoke.yaml", ["train.epochs=3", "model.coattention=false", "train.lr=0.01",
                                                        "data.root=null"])
    assert cfg.train.epochs == 3 and cfg.model.coattention is False and cfg.train.lr == 0.01
    assert cfg.data.root is None
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(None, ["train.epochs=many"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.epochs"])


def test_save_and_reload_round_trip(tmp_path):
    cfg = load_config(REPO / "configs" / "sketchy-mini-cpu.yaml", ["train.seed=7"])
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
