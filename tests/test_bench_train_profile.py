"""benchmarks/bench_train_profile.py: where a training step's CPU time goes. The kinds of work
are read from a real profile of a small network with one convolution of each shape, and the
script runs end to end on a small step of the book's model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import bench_train_profile as bp  # noqa: E402


def test_a_convolution_is_depthwise_pointwise_or_dense_by_its_weight():
    assert bp.conv_kind([1152, 1, 5, 5]) == "depthwise"
    assert bp.conv_kind([96, 16, 1, 1]) == "pointwise"
    assert bp.conv_kind([32, 1, 1, 1]) == "pointwise"  # 1x1 with one channel a group: no spatial work
    assert bp.conv_kind([32, 3, 3, 3]) == "dense"
    assert bp.conv_kind([10, 4]) == "dense"


def _small_network(size: int = 16) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU6(),
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.BatchNorm2d(8), torch.nn.ReLU6(),
        torch.nn.Conv2d(8, 4, 1), torch.nn.Flatten(), torch.nn.Linear(4 * size * size, 64))


def test_every_kind_of_work_of_a_real_step_lands_in_its_own_kind():
    torch.manual_seed(0)
    net = _small_network(32)  # every kind of work large enough to take over 0.01 ms (the rounding)
    optimizer = torch.optim.AdamW(net.parameters())
    x = torch.randn(8, 3, 32, 32)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(2):
            net(x).square().mean().backward()
            optimizer.step()
    found = bp.breakdown(prof.events(), steps=2)
    ms = {k["kind"]: k["ms_per_step"] for k in found["kinds"]}
    assert list(ms) == list(bp.KINDS)
    assert all(ms[kind] > 0 for kind in bp.KINDS), ms
    assert sum(k["share"] for k in found["kinds"]) == pytest.approx(1.0, abs=0.01)
    assert found["self_cpu_ms_per_step"] == pytest.approx(sum(ms.values()), abs=0.01 * len(ms))  # each rounded to 0.01
    assert 0 < len(found["heaviest_operators"]) <= 10
    # An addition inside the optimiser's step is the optimiser's, one outside it is not.
    assert bp.kind_of("aten::add_", [], in_optimizer=True) == "optimiser step"
    assert bp.kind_of("aten::add_", [], in_optimizer=False) == "everything else"


def test_the_heaviest_depthwise_backward_is_timed_gradient_by_gradient():
    net = _small_network()
    x = torch.randn(4, 3, 16, 16)
    worst = bp.depthwise_gradients(net, lambda: net(x), channels_last=False, repeats=1)
    assert worst["input_shape"] == [4, 8, 16, 16] and worst["weight_shape"] == [8, 1, 3, 3]
    assert worst["grad_input_ms"] > 0 and worst["grad_weight_ms"] > 0 and worst["forward_ms"] > 0
    dense_only = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    assert bp.depthwise_gradients(dense_only, lambda: dense_only(x), channels_last=False) is None


def test_the_script_profiles_a_small_step_of_the_book_model_end_to_end(tmp_path):
    out = tmp_path / "profile.json"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_train_profile.py"), "--size", "32",
                           "--batch", "2", "--warmup", "0", "--steps", "1", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["benchmark"] == "train_profile" and result["config"]["threads"] == 1
    assert result["config"]["mode"] == "fp32-channels_last+keep_freed_memory"
    assert "freed memory kept" in result["allocator"] or "default" in result["allocator"]
    kinds = {k["kind"]: k["ms_per_step"] for k in result["kinds"]}
    assert kinds["depthwise conv, backward"] > 0 and kinds["batch norm, backward"] > 0
    assert result["heaviest_depthwise_backward"]["weight_shape"][1] == 1
    assert {"cpu", "usable_cores", "date"} <= set(result["machine"])


@pytest.mark.parametrize("argv, message", [(["--mode", "bf16-autocast+channels_last"], "bf16 and compile"),
                                           (["--steps", "0"], "--steps must be at least 1"),
                                           (["--mode", "fp32-fast"], "starts with one of")])
def test_bad_arguments_are_refused_with_a_reason(argv, message, capsys):
    with pytest.raises(SystemExit):
        bp.parse_args(argv)
    assert message in capsys.readouterr().err
