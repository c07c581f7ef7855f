"""The reproduction study runner: plans, records per row and seed, resuming, the summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from semi3lib.config import ConfigError, load_config
from semi3lib.models import Semi3Net
from semi3lib.study.runner import load_plan, run_study

REPO = Path(__file__).resolve().parents[1]
PLAN = REPO / "configs" / "study-sketchy-mini.yaml"


@pytest.mark.slow
def test_the_shipped_plan_gives_every_row_the_same_data_backbone_and_budget():
    plan = load_plan(PLAN)
    base = load_config(plan.base)
    assert plan.seeds == [0, 1, 2] and plan.out_dir == "results/sketchy-mini"
    names = [row.name for row in plan.rows]
    assert {"semi3net", "two-branch-ce", "two-branch-triplet", "imagenet-features", "no-coattention",
            "shared-bottoms", "separate-bottoms", "no-edgemap-branch", "edgemaps-xdog"} <= set(names)
    for row in plan.rows:
        cfg = plan.config(row, seed=1)
        assert cfg.train.seed == 1 and cfg.name == row.name
        assert (cfg.data.dataset, cfg.data.protocol, cfg.data.split_seed, cfg.data.image_size) == \
               (base.data.dataset, base.data.protocol, base.data.split_seed, base.data.image_size), row.name
        assert (cfg.model.backbone, cfg.train.epochs, cfg.train.batch_size, cfg.train.lr) == \
               (base.model.backbone, base.train.epochs, base.train.batch_size, base.train.lr), row.name
        Semi3Net(cfg.model, num_classes=5, load_weights=False)  # every row's model can be built


def test_the_shipped_tuning_plan_compares_on_validation_sketches_with_the_studys_data_and_budget():
    plan, study = load_plan(REPO / "configs" / "tuning-sketchy-mini.yaml"), load_plan(PLAN)
    assert plan.split == "val" and plan.base == study.base and plan.out_dir != study.out_dir
    base = load_config(plan.base)
    for row in plan.rows:
        cfg = plan.config(row, seed=0)
        assert cfg.data.val_sketches_per_category == 4, row.name
        assert (cfg.data.split_seed, cfg.data.image_size, cfg.train.epochs) == \
               (base.data.split_seed, base.data.image_size, base.train.epochs), row.name
    assert plan.config(plan.row("untuned"), 0).train.backbone_lr_scale == 0.3


@pytest.mark.parametrize("change, message", [
    ({"colour": 1}, "unknown key"),
    ({"rows": {"a": {"overides": []}}}, "unknown key"),
    ({"rows": {"a": {"baseline": "clip"}}}, "baseline must be"),
    ({"rows": {"a": {"seeds": []}}}, "'seeds' is empty"),
    ({"rows": {"a": {"overrides": ["model.sharing=half"]}}}, "sharing"),
    ({"split": "test"}, "split must be"),
    ({"stop_after_epochs": 0}, "stop_after_epochs must be a whole number"),
    ({"split": "val"}, "val_sketches_per_category"),
    ({"rows": {"a": {}, "b": {"rescore": "c"}}}, "not a trained row"),
    ({"rows": {"b": {"rescore": "a"}, "a": {}}}, "list 'a' first"),
    ({"rows": {"a": {}, "b": {"rescore": "a", "overrides": ["train.epochs=9"]}}}, "may only override"),
])
def test_a_bad_plan_is_refused_before_anything_runs(tmp_path, change, message):
    raw = {"base": str(REPO / "configs" / "smoke.yaml"), "rows": {"a": {}}, **change}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises((ConfigError, ValueError), match=message):
        plan = load_plan(path)
        Semi3Net(plan.config(plan.rows[0], 0).model, num_classes=5, load_weights=False)


@pytest.mark.slow
def test_a_small_study_writes_a_record_per_row_and_seed_resumes_and_summarises(sketchy_mini_root, tmp_path):
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(yaml.safe_dump({
        "base": str(REPO / "configs" / "smoke.yaml"), "out_dir": str(tmp_path / "results"),
        "runs_dir": str(tmp_path / "runs"), "seeds": [0, 1],
        "rows": {"semi3net": {"what": "the model"},
                 "two-branch-ce": {"seeds": [1],  # a row's own seeds replace the plan's
                                   "overrides": ["model.edge_branch=false", "model.sharing=separate",
                                                 "model.split_stage=9", "loss.alignment_weight=0",
                                                 "loss.contrastive_weight=0"]},
                 "imagenet-features": {"baseline": "imagenet"}},
    }, sort_keys=False))
    extra = [f"data.root={sketchy_mini_root}", "data.max_categories=4", f"data.cache_dir={tmp_path / 'edges'}",
             "train.epochs=1", "train.max_steps_per_epoch=2"]
    plan = load_plan(plan_path)
    table = run_study(plan, extra=extra, progress=False)
    records = sorted(p.name for p in (tmp_path / "results").glob("*.json"))
    assert records == ["imagenet-features-seed0.json", "semi3net-seed0.json", "semi3net-seed1.json",
                       "two-branch-ce-seed1.json"]
    record = json.loads((tmp_path / "results" / "semi3net-seed1.json").read_text())
    assert record["seed"] == 1 and record["config"]["train"]["seed"] == 1 and record["wall_seconds"] > 0
    assert 0 < record["metrics"]["query"]["mAP@all"] <= 1
    assert list(table.index) == ["semi3net", "two-branch-ce", "imagenet-features"]
    assert list(table["seeds"]) == [2, 1, 1]
    assert table.loc["semi3net", "mAP@all std"] > 0 and np.isnan(table.loc["imagenet-features", "mAP@all std"])
    csv = pd.read_csv(tmp_path / "results" / "summary.csv", index_col="run")
    assert list(csv.index) == list(table.index) and "P@25 mean" in csv.columns
    per_run = pd.read_csv(tmp_path / "results" / "runs.csv")
    assert list(zip(per_run["run"], per_run["seed"])) == [("semi3net", 0), ("semi3net", 1), ("two-branch-ce", 1),
                                                          ("imagenet-features", 0)]
    assert per_run["hardware"].str.endswith("cores").all() and (per_run["wall_seconds"] > 0).all()

    # A second call finds every record and trains nothing; a deleted record is redone alone.
    (tmp_path / "results" / "two-branch-ce-seed1.json").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "results").glob("*-seed*.json")}
    run_study(plan, extra=extra, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "results").glob("*-seed*.json")}
    assert set(after) - set(before) == {"two-branch-ce-seed1.json"}
    assert all(after[name] == before[name] for name in before)


@pytest.mark.slow
def test_a_tuning_study_compares_rows_on_validation_sketches_and_rescores_without_training(sketchy_mini_root, tmp_path):
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(yaml.safe_dump({
        "base": str(REPO / "configs" / "smoke.yaml"), "split": "val", "overrides": ["data.val_sketches_per_category=2"],
        "out_dir": str(tmp_path / "results"), "runs_dir": str(tmp_path / "runs"), "seeds": [0],
        "rows": {"semi3net": {}, "photo+edge": {"rescore": "semi3net", "overrides": ["model.gallery_embedding=photo+edge"]}},
    }, sort_keys=False))
    extra = [f"data.root={sketchy_mini_root}", "data.max_categories=4", f"data.cache_dir={tmp_path / 'edges'}",
             "train.epochs=1", "train.max_steps_per_epoch=2"]
    plan = load_plan(plan_path)
    with pytest.raises(ConfigError, match="run it first"):
        run_study(plan, only=["photo+edge"], extra=extra, progress=False)
    table = run_study(plan, extra=extra, progress=False)
    trained = json.loads((tmp_path / "results" / "semi3net-seed0.json").read_text())
    fused = json.loads((tmp_path / "results" / "photo+edge-seed0.json").read_text())
    assert sorted(trained["metrics"]) == sorted(fused["metrics"]) == ["query", "val"]
    assert trained["metrics"]["val"]["queries"] == 4 * 2  # 2 validation sketches per category
    assert fused["rescored"] == "semi3net" and fused["wall_seconds"] == trained["wall_seconds"]
    assert fused["config"]["model"]["gallery_embedding"] == "photo+edge"
    assert fused["metrics"]["val"] != trained["metrics"]["val"]  # another gallery, the same sketches
    assert list((tmp_path / "runs").iterdir()) == [tmp_path / "runs" / "semi3net-seed0"]  # nothing trained again
    assert table.loc["semi3net", "mAP@all mean"] == trained["metrics"]["val"]["mAP@all"]


def test_the_shipped_records_print_as_tables_one_line_per_row_or_per_run(monkeypatch, capsys):
    from semi3lib.cli import main

    monkeypatch.chdir(REPO)
    records = list((REPO / "results" / "sketchy-mini").glob("*-seed*.json"))
    assert main(["study", "--per-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| run | seed | train min | mAP@all | hardware |" and len(lines) == 2 + len(records)
    assert all(line.endswith(" cores |") for line in lines[2:])  # every record names its CPU
    assert main(["study", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()[2:]
    titles = [line.strip("| *") for line in lines if line.startswith("| *")]
    assert titles[:2] == ["Floor and baselines", "The method"]  # grouped as the book's tables
    rows = [line.split(" | ")[0].lstrip("| ").removesuffix(" (reference)") for line in lines if not line.startswith("| *")]
    done = {json.loads(p.read_text())["run"] for p in records}
    assert sorted(rows) == sorted(r.name for r in load_plan(PLAN).rows if r.name in done)  # one line per row
