"""Real short training runs on a slice of sketchy-mini (4 categories, 64 px) on CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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


def test_short_training_run_writes_metrics_and_checkpoints(sketchy_mini_root, tmp_path, edge_cache):
    from semi3lib.config import load_config
    from semi3lib.training import train

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


def test_killed_and_resumed_run_ends_like_an_uninterrupted_one(sketchy_mini_root, tmp_path, edge_cache):
    common = ["train.epochs=3", "train.max_steps_per_epoch=3", "train.deterministic=true", "train.eval_every=1"]
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    _semi3("train", "--quiet", "--config", SMOKE, *_overrides(sketchy_mini_root, straight, edge_cache, *common))
    # SIGKILL in the middle of epoch 2 (step 5 of 9): last.pt holds epoch 1.
    killed = _semi3("train", "--quiet", "--config", SMOKE, *_overrides(sketchy_mini_root, broken, edge_cache, *common),
                    env={"SEMI3_DEBUG_KILL_AT_STEP": "5"}, check=False)
    assert killed.returncode == -9
    assert torch.load(broken / "last.pt", weights_only=False)["epoch"] == 0
    _semi3("train", "--quiet", "--resume", "--config", SMOKE,
           *_overrides(sketchy_mini_root, broken, edge_cache, *common))
    a = torch.load(straight / "last.pt", weights_only=False)
    b = torch.load(broken / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 2
    assert a["history"][-1]["query"] == b["history"][-1]["query"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


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
        if rank0[key].is_floating_point():
            torch.testing.assert_close(rank0[key], single[key], rtol=1e-4, atol=1e-5, msg=key)
