"""Run records: one type (RunRecord), written alike by ``semi3 study`` and ``semi3 train
--results``, read by every table; the records committed in results/ read unchanged."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from semi3lib.cli import main
from semi3lib.engine.records import RecordError, RunRecord, read_record, read_records, training_metrics, write_record
from semi3lib.study.records import load_study

REPO = Path(__file__).resolve().parents[1]
SMOKE = str(REPO / "configs" / "smoke.yaml")
STUDY_RECORDS = sorted(p for p in (REPO / "results").rglob("*-seed*.json"))
TRAIN_RECORDS = sorted((REPO / "results" / "train").glob("*.json"))


def test_the_committed_records_are_found():
    assert len(STUDY_RECORDS) > 90 and len(TRAIN_RECORDS) == 3


@pytest.mark.parametrize("path", STUDY_RECORDS, ids=lambda p: str(p.relative_to(REPO / "results")))
def test_every_committed_study_record_reads_and_is_written_back_byte_for_byte(path, tmp_path):
    record = read_record(path)
    raw = json.loads(path.read_text())
    assert record.metrics == raw["metrics"] and record.seed == raw["seed"] and record.run == raw["run"]
    assert record.git_commit == raw["machine"]["git_commit"] and record.hardware
    assert write_record(tmp_path / path.name, record).read_text() == path.read_text()


@pytest.mark.parametrize("path", TRAIN_RECORDS, ids=lambda p: p.name)
def test_a_semi3_train_record_of_before_reads_with_its_query_metrics_and_seed(path, tmp_path):
    raw = json.loads(path.read_text())
    record = read_record(path)
    assert record.metrics == {"query": raw["query"]} and len(record.history) == raw["epochs"]
    assert record.seed == raw["config"]["train"]["seed"] and record.wall_seconds == raw["wall_seconds"]
    assert (record.command, record.out_dir, record.run) == (raw["command"], raw["out_dir"], raw["run"])
    rewritten = json.loads(write_record(tmp_path / path.name, record).read_text())
    assert rewritten["metrics"]["query"] == raw["query"] and "query" not in rewritten and "epochs" not in rewritten


def test_the_study_tables_read_the_training_records_too():
    runs, note = load_study(REPO / "results" / "train")
    assert len(runs) == 3 and note.startswith("3 run file(s)")
    assert list(runs["mAP@all"]) == [json.loads(p.read_text())["query"]["mAP@all"] for p in TRAIN_RECORDS]


def test_files_that_are_not_records_are_refused_by_name_and_passed_over_in_a_folder(tmp_path):
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "broken.json").write_text('{"run": "cut short')
    (tmp_path / "no-metrics.json").write_text('{"run": "x", "seed": 0}')
    (tmp_path / "flat-seed4.json").write_text('{"seed": 4, "metrics": {"mAP@all": 0.5}}')
    for name, why in (("list", "JSON object"), ("broken", "not JSON"), ("no-metrics", "no metrics")):
        with pytest.raises(RecordError, match=why) as err:
            read_record(tmp_path / f"{name}.json")
        assert f"{name}.json" in str(err.value)
    [(path, record)] = read_records(tmp_path)
    assert path.name == "flat-seed4.json" and record.run == "flat-seed4"  # named by its file
    assert record.metrics == {"query": {"mAP@all": 0.5}} and record.seed == 4 and record.machine is None
    assert read_records(tmp_path / "missing") == []


def test_a_rescore_rows_fields_are_written_only_when_set(tmp_path):
    plain = RunRecord(run="a", metrics={"query": {"mAP@all": 0.5}}, wall_seconds=1.0, seed=0)
    rescored = RunRecord(run="b", metrics={"query": {"mAP@all": 0.6}}, wall_seconds=1.0, seed=0, rescored="a",
                         scoring_seconds=2.5)
    assert "rescored" not in plain.to_dict() and "command" not in plain.to_dict()
    assert read_record(write_record(tmp_path / "b.json", rescored)) == rescored


def test_training_metrics_carry_the_validation_split_when_the_last_epoch_scored_it():
    history = [{"epoch": 1, "query": {"mAP@all": 0.2}, "val": {"mAP@all": 0.3}}]
    assert training_metrics(history, {"mAP@all": 0.4}) == {"query": {"mAP@all": 0.4}, "val": {"mAP@all": 0.3}}
    assert training_metrics([{"epoch": 1}], {"mAP@all": 0.4}) == {"query": {"mAP@all": 0.4}}


def test_semi3_train_results_writes_the_record_a_study_writes(tmp_path, capsys, monkeypatch):
    import semi3lib.engine.train as training

    # What is tested is the record; the training is replaced by its result.
    history = [{"epoch": 1, "query": {"mAP@all": 0.5}, "val": {"mAP@all": 0.25}}]
    identity = {"dataset": "sketchy-mini", "root": "/data/sketchy-mini", "fingerprint": "0123456789abcdef"}
    monkeypatch.setattr(training, "train", lambda cfg, **kwargs: training.TrainResult(
        out_dir=Path(cfg.train.out_dir), history=history, final_metrics={"mAP@all": 0.5}, wall_seconds=12.34,
        data=identity))
    results = tmp_path / "record.json"
    overrides = [f"train.out_dir={tmp_path / 'run'}", "train.seed=3"]
    assert main(["train", "--quiet", "--config", SMOKE, "--results", str(results), *overrides]) == 0
    summary = json.loads(capsys.readouterr().out)  # what the command prints is unchanged
    assert summary == {"out_dir": str(tmp_path / "run"), "epochs": 1, "wall_seconds": 12.3, "query": {"mAP@all": 0.5}}
    record = read_record(results)
    assert record.metrics == {"query": {"mAP@all": 0.5}, "val": {"mAP@all": 0.25}} and record.seed == 3
    assert record.overrides == overrides and record.config["train"]["seed"] == 3 and record.wall_seconds == 12.3
    assert record.out_dir == str(tmp_path / "run") and record.command.startswith("semi3 ")
    assert record.machine["usable_cores"] >= 1 and "git_commit" in record.machine and record.data == identity
    study_keys = set(json.loads(STUDY_RECORDS[0].read_text()))
    assert set(json.loads(results.read_text())) == study_keys | {"command", "out_dir", "data"}


@pytest.mark.slow
def test_a_training_names_the_data_it_read_in_its_result_and_its_run_config(sketchy_mini_root, tmp_path, monkeypatch):
    from semi3lib.config import load_config, load_yaml
    from semi3lib.data.layouts import read_dataset
    from semi3lib.engine.train import train

    monkeypatch.setenv("SEMI3_DATA", str(sketchy_mini_root.parent))  # found by the search, not given as data.root
    cfg = load_config(SMOKE, [f"train.out_dir={tmp_path / 'run'}", f"data.cache_dir={tmp_path / 'edges'}"])
    assert cfg.data.root is None
    result = train(cfg, progress=False)
    root = str(sketchy_mini_root.resolve())
    assert result.data["root"] == root and result.data["dataset"] == "sketchy-mini"
    assert re.fullmatch(r"[0-9a-f]{16}", result.data["fingerprint"])
    assert result.data["photos"] == cfg.data.max_categories * 25  # the categories the run used, 25 photos each
    assert result.data["fingerprint"] != read_dataset("sketchy-mini", root).identity()["fingerprint"]  # a subset
    saved, _ = load_yaml(tmp_path / "run" / "config.yaml")
    assert saved["data"]["root"] == root  # no longer "root: null"
