"""Real short training runs on a slice of sketchy-mini (4 categories, 64 px) on CPU."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from semi3lib.engine.train import read_steps

REPO = Path(__file__).resolve().parents[1]
SMOKE = str(REPO / "configs" / "smoke.yaml")


def _overrides(root: Path, out_dir: Path, cache: Path, *extra: str) -> list[str]:
    return [f"data.root={root}", "data.max_categories=4", f"data.cache_dir={cache}", f"train.out_dir={out_dir}",
            *extra]


def _semi3(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "semi3lib.cli", *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"semi3 {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def edge_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("edges")


@pytest.mark.slow
def test_short_training_run_writes_metrics_and_checkpoints(sketchy_mini_root, tmp_path, edge_cache):
    from semi3lib.config import load_config
    from semi3lib.engine.train import train

    cfg = load_config(SMOKE, _overrides(sketchy_mini_root, tmp_path / "run", edge_cache, "train.epochs=2"))
    result = train(cfg, progress=False)
    run = tmp_path / "run"
    for name in ("config.yaml", "split.json", "metrics.jsonl", "metrics.csv", "last.pt", "best.pt"):
        assert (run / name).is_file(), name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    metrics = rows[-1]["query"]
    assert set(metrics) >= {"mAP@all", "mAP@200", "P@10", "P@25", "P@100", "P@200"}
    assert all(torch.isfinite(torch.tensor(v)) for k, v in metrics.items() if k.startswith(("mAP", "P@")))
    assert result.final_metrics == metrics
    assert rows[-1]["loss_total"] > 0 and "loss_contrastive" in rows[-1] and "loss_alignment" in rows[-1]
    assert len((run / "metrics.csv").read_text().splitlines()) == 3


@pytest.mark.slow
def test_step_log_has_a_row_every_log_every_steps_and_at_each_epoch_end(sketchy_mini_root, tmp_path, edge_cache):
    from semi3lib.config import load_config
    from semi3lib.engine.train import train

    run = tmp_path / "run"
    cfg = load_config(SMOKE, _overrides(sketchy_mini_root, run, edge_cache, "train.epochs=2",
                                        "train.max_steps_per_epoch=5", "train.log_every=2", "train.eval_every=0"))
    result = train(cfg, progress=False)
    steps = read_steps(run)
    # 5 steps per epoch: rows at every 2nd step, plus the last step of each epoch.
    assert [(r["epoch"], r["step"]) for r in steps] == [(1, 2), (1, 4), (1, 5), (2, 6), (2, 8), (2, 10)]
    for row in steps:
        assert set(row) == {"epoch", "step", "lr"} | {k for k in result.history[0] if k.startswith("loss_")}
        assert all(math.isfinite(v) for v in row.values()) and row["loss_total"] > 0
    # Each epoch's rows average over disjoint windows (2, 2, 1 steps) that make up the epoch.
    for epoch, windows in ((1, (2, 2, 1)), (2, (1, 2, 2))):
        rows = [r for r in steps if r["epoch"] == epoch]
        mean = sum(r["loss_total"] * w for r, w in zip(rows, windows)) / 5
        assert mean == pytest.approx(result.history[epoch - 1]["loss_total"], rel=1e-6)
    assert steps[-1]["lr"] == result.history[-1]["lr"]
    assert read_steps(tmp_path / "no-run") == []


@pytest.mark.slow
def test_killed_and_resumed_run_ends_like_an_uninterrupted_one(sketchy_mini_root, tmp_path, edge_cache):
    common = ["train.epochs=3", "train.max_steps_per_epoch=3", "train.deterministic=true", "train.eval_every=1",
              "train.log_every=2"]
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    _semi3("train", "--quiet", "--config", SMOKE, *_overrides(sketchy_mini_root, straight, edge_cache, *common))
    # SIGKILL in the middle of epoch 2 (step 5 of 9): last.pt holds epoch 1.
    killed = _semi3("train", "--quiet", "--config", SMOKE, *_overrides(sketchy_mini_root, broken, edge_cache, *common),
                    env={"SEMI3_DEBUG_KILL_AT_STEP": "5"}, check=False)
    assert killed.returncode == -9
    assert torch.load(broken / "last.pt", weights_only=False)["epoch"] == 0
    assert [r["step"] for r in read_steps(broken)] == [2, 3, 4]  # step 4 was logged after the checkpoint
    _semi3("train", "--quiet", "--resume", "--config", SMOKE,
           *_overrides(sketchy_mini_root, broken, edge_cache, *common))
    a = torch.load(straight / "last.pt", weights_only=False)
    b = torch.load(broken / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 2
    assert a["history"][-1]["query"] == b["history"][-1]["query"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert [r["step"] for r in read_steps(straight)] == [2, 3, 4, 6, 8, 9]
    assert (broken / "steps.jsonl").read_text() == (straight / "steps.jsonl").read_text()


@pytest.mark.slow
def test_ddp_two_gloo_ranks_agree_and_match_one_process(sketchy_mini_root, tmp_path, edge_cache):
    if shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("torchrun is not installed beside this Python")
    # SGD, not Adam: Adam divides by sqrt(v), which turns float-reduction noise in
    # near-zero gradients into full-size updates; SGD keeps updates linear in the gradient.
    common = ["train.epochs=1", "train.max_steps_per_epoch=3", "train.batch_size=8", "train.freeze_bn=true",
              "train.optimizer=sgd", "train.lr=0.05",
              "model.dropout=0.0", "train.deterministic=true", "data.num_workers=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    ddp_dir.mkdir(), single_dir.mkdir()
    torchrun = str(Path(sys.executable).parent / "torchrun")
    worker = str(REPO / "tests" / "ddp_worker.py")
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", worker, str(ddp_dir), SMOKE,
                           *_overrides(sketchy_mini_root, ddp_dir / "run", edge_cache, *common)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run([sys.executable, worker, str(single_dir), SMOKE,
                           *_overrides(sketchy_mini_root, single_dir / "run", edge_cache, *common)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0 = torch.load(ddp_dir / "rank0.pt")
    rank1 = torch.load(ddp_dir / "rank1.pt")
    single = torch.load(single_dir / "rank0.pt")
    initial = torch.load(single_dir / "initial0.pt")
    moved = [k for k in single if single[k].is_floating_point() and not torch.equal(single[k], initial[k])]
    assert any(k.startswith("bottoms.photo") for k in moved) and any(k.startswith("bottoms.sketch") for k in moved)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), f"ranks differ in {key}"
    # The DDP update is the one-process update up to float noise: the same sums in another
    # order (4 + 4 samples, then an all-reduce) drift over 3 steps, through ReLU kinks, by up to
    # 3e-4 in single weights on an Intel Xeon (within 1e-5 on AMD EPYC), so the whole update is
    # compared. A DDP bug (gradients summed, not averaged) would put the gap near 1.
    ddp_update = torch.cat([(rank0[k] - initial[k]).double().flatten() for k in moved])
    update = torch.cat([(single[k] - initial[k]).double().flatten() for k in moved])
    gap = float((ddp_update - update).norm() / update.norm())
    assert gap < 2e-2, f"DDP against one process: |gap| / |update| = {gap:.2e}"


def test_resuming_under_a_different_config_is_refused(smoke_run):
    from semi3lib.config import load_config
    from semi3lib.engine.train import train

    saved = load_config(smoke_run / "config.yaml")
    changed = load_config(smoke_run / "config.yaml", ["train.lr=0.5"])
    with pytest.raises(ValueError, match="train.lr"):
        train(changed, resume=True, progress=False)
    # The same config resumes a finished run without training again.
    result = train(saved, resume=True, progress=False)
    assert len(result.history) == saved.train.epochs and result.final_metrics


def test_a_config_key_added_after_a_run_was_saved_counts_as_its_default():
    from pathlib import Path

    from semi3lib.config import ExperimentConfig
    from semi3lib.engine.train import _check_resumable

    saved = ExperimentConfig().to_dict()
    del saved["model"]["gallery_embedding"]  # a run saved before the option existed
    _check_resumable(saved, ExperimentConfig(), Path("last.pt"))
    changed = ExperimentConfig()
    changed.model.gallery_embedding = "photo+edge"
    with pytest.raises(ValueError, match="model.gallery_embedding: 'photo' -> 'photo\\+edge'"):
        _check_resumable(saved, changed, Path("last.pt"))
    # where tensors live is not what a run computes: a run resumes with the allocator setting changed
    freed = ExperimentConfig()
    freed.train.keep_freed_memory = False
    _check_resumable(saved, freed, Path("last.pt"))
