"""The recognition check: a record without an instruction set, its first epoch trained again on
a host of a known kind (a plan with ``stop_after_epochs``), is recognised as that kind when the
losses are equal to the last digit, and the rule then pairs it with that kind's runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from semi3lib.engine.hardware import current_host_kind
from semi3lib.study.hosts import RECOGNISED_DIR, recognised_hosts, recognition_text, recognitions
from semi3lib.study.records import load_study
from semi3lib.study.runner import load_plan, run_study

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "configs" / "host-recognition-160px.yaml"


def _plan(path: Path, out_dir: Path, runs_dir: Path, **extra) -> Path:
    path.write_text(yaml.safe_dump({"base": str(REPO / "configs" / "smoke.yaml"), "out_dir": str(out_dir),
                                    "runs_dir": str(runs_dir), "seeds": [0], "rows": {"semi3net": {}}, **extra}))
    return path


def _forget_instruction_set(record: Path) -> None:
    """What a record written before machine_info kept the instruction set looks like."""
    raw = json.loads(record.read_text())
    for key in ("cpu_capability", "cpu_isa", "isa_caps"):
        raw["machine"].pop(key, None)
    record.write_text(json.dumps(raw))


def test_the_shipped_check_trains_the_first_epoch_of_each_160px_run_with_the_studys_config(monkeypatch):
    monkeypatch.chdir(REPO)
    check, study = load_plan(SHIPPED), load_plan(REPO / "configs" / "bridge-160px.yaml")
    assert check.stop_after_epochs == 1 and check.out_dir == str(RECOGNISED_DIR / "bridge-160px")
    for row in check.rows:
        ours, theirs = check.config(row, 2).to_dict(), study.config(study.row(row.name), 2).to_dict()
        for section in ("data", "loss", "model"):
            assert ours[section] == theirs[section], (row.name, section)
        assert ours["train"]["epochs"] == theirs["train"]["epochs"] == 10


@pytest.mark.slow
def test_a_run_whose_first_epoch_trains_again_to_the_records_loss_is_recognised_and_pairs(sketchy_mini_root,
                                                                                           tmp_path):
    extra = [f"data.root={sketchy_mini_root}", "data.max_categories=4", f"data.cache_dir={tmp_path / 'edges'}",
             "train.epochs=2", "train.max_steps_per_epoch=2"]
    study_dir = tmp_path / "results" / "tiny"
    run_study(load_plan(_plan(tmp_path / "study.yaml", study_dir, tmp_path / "runs")), extra=extra, progress=False)
    original = study_dir / "semi3net-seed0.json"
    _forget_instruction_set(original)
    assert load_study(study_dir)[0]["host"].tolist() == [current_host_kind().split(" (")[0] +
                                                          " (instruction set not recorded)"]

    check_dir = tmp_path / RECOGNISED_DIR / "tiny"
    check_plan = load_plan(_plan(tmp_path / "check.yaml", check_dir, tmp_path / "check-runs", stop_after_epochs=1))
    run_study(check_plan, extra=extra, progress=False)
    check = json.loads((check_dir / "semi3net-seed0.json").read_text())
    full = json.loads(original.read_text())
    # one epoch of the two-epoch schedule; its loss is the full run's first, to the last digit
    assert len(check["history"]) == 1
    assert check["history"][0]["loss_total"] == full["history"][0]["loss_total"]

    [found] = recognitions(tmp_path)
    assert found.recognised and found.host == current_host_kind()
    assert found.original == "results/tiny/semi3net-seed0.json"
    assert recognised_hosts(study_dir) == {"semi3net-seed0.json": current_host_kind()}
    assert load_study(study_dir)[0]["host"].tolist() == [current_host_kind()]  # what the rule pairs
    assert load_study(study_dir)[0]["hardware"].iloc[0].endswith(f"; recognised as {current_host_kind()}")
    assert "1 of 1 runs without an instruction set had their first epoch trained again" in recognition_text([found])

    # a last digit off: not the same computation, so the record keeps its unknown instruction set
    check["history"][0]["loss_total"] = math.nextafter(check["history"][0]["loss_total"], math.inf)
    (check_dir / "semi3net-seed0.json").write_text(json.dumps(check))
    [found] = recognitions(tmp_path)
    assert not found.recognised and recognised_hosts(study_dir) == {}
    assert "not recognised: `semi3net-seed0.json` (0 of 1 equal" in recognition_text([found])
    assert load_study(study_dir)[0]["host"].iloc[0].endswith("(instruction set not recorded)")
    assert "recognised" not in load_study(study_dir)[0]["hardware"].iloc[0]
