from pathlib import Path

import pytest
import yaml

from semi3lib.config import ConfigError, ExperimentConfig, load_config, save_config

REPO = Path(__file__).resolve().parents[1]


def _leaves(tree: dict, prefix: str = "") -> dict:
    """``{"section.key": value}`` for every value of a nested mapping."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("name", ["sketchy-mini-cpu", "sketchy-gpu", "tuberlin-ext-gpu", "smoke"])
def test_shipped_configs_load_with_every_value_the_file_sets(name):
    path = REPO / "configs" / f"{name}.yaml"
    cfg = load_config(path)
    written = _leaves(yaml.safe_load(path.read_text()))
    loaded = _leaves(cfg.to_dict())
    assert {key: loaded.get(key) for key in written} == written  # nothing dropped, renamed or coerced away
    assert cfg.train.out_dir == f"runs/{name}"  # each config trains into its own run folder
    unset = {key: value for key, value in loaded.items() if key not in written}
    assert unset == {key: value for key, value in _leaves(ExperimentConfig().to_dict()).items() if key in unset}


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


def test_config_choices_are_the_implementing_modules_choices():
    from semi3lib.config import CHOICES
    from semi3lib.data.layouts import DATASET_NAMES
    from semi3lib.data.splits import PROTOCOLS, ZEROSHOT_GALLERIES, ZEROSHOT_SPLITS
    from semi3lib.data.edgemaps import EDGE_METHODS
    from semi3lib.models import BACKBONES, SHARING_MODES
    from semi3lib.models.semi3net import GALLERY_EMBEDDINGS

    assert CHOICES["data.dataset"] == DATASET_NAMES and CHOICES["data.protocol"] == PROTOCOLS
    assert CHOICES["data.zeroshot_split"] == ZEROSHOT_SPLITS and CHOICES["data.zeroshot_gallery"] == ZEROSHOT_GALLERIES
    assert CHOICES["data.edge_method"] == EDGE_METHODS and CHOICES["model.backbone"] == BACKBONES
    assert CHOICES["model.sharing"] == SHARING_MODES and CHOICES["model.gallery_embedding"] == GALLERY_EMBEDDINGS


def test_out_of_range_values_are_errors_that_give_the_valid_range():
    with pytest.raises(ConfigError, match=r"train.batch_size: 0 is out of range \(valid: >= 2\)"):
        load_config(None, ["train.batch_size=0"])
    with pytest.raises(ConfigError, match=r"model.dropout: 1.0 is out of range \(valid: in \[0, 1\)\)"):
        load_config(None, ["model.dropout=1.0"])
    assert load_config(None, ["train.eval_every=0", "train.grad_clip=0", "loss.triplet_weight=0"]).train.eval_every == 0
