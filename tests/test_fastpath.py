"""The training step's fast paths (engine.fastpath): bf16 detection on the CPU, the precision a
config resolves to, the optimiser's fused kernel, the FLOP count, the config keys, and a short
training run with them switched on that leaves a plain, loadable checkpoint."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from semi3lib.config import ConfigError, TrainConfig, load_config
from semi3lib.engine import fastpath
from semi3lib.engine.fastpath import (Bf16Support, check_fast_paths, count_flops, cpu_bf16_support, cpu_flags,
                                      make_optimizer, resolve_precision)

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
NATIVE = Bf16Support(True, "native bf16: CPU flags avx512_bf16")
EMULATED = Bf16Support(False, "bf16 not supported natively: no avx512_bf16/amx_bf16/bf16 CPU flag")

# ------------------------------------------------------------------ bf16 detection


@pytest.mark.parametrize("flags, capability, torch_says, native", [
    ({"avx", "avx2", "fma"}, "AVX2", False, False),  # this project's AMD EPYC
    ({"avx2", "avx512f", "avx512bw", "avx512_vnni"}, "AVX512", False, False),  # AVX-512 without BF16
    ({"avx2", "avx512f", "avx512_bf16"}, "AVX512", False, True),  # Cooper Lake, Zen 4
    ({"avx512f", "amx_tile", "amx_bf16"}, "AVX512", True, True),  # Sapphire Rapids
    ({"fp", "asimd", "sve", "bf16"}, "SVE256", None, True),  # Arm Neoverse V1
    ({"fp", "asimd"}, "DEFAULT", None, False),  # Arm without bf16
    (set(), "AVX512", True, True),  # no /proc/cpuinfo, but torch's own check says so
    (set(), None, None, False),
])
def test_bf16_is_native_only_with_a_bf16_flag_or_torchs_word(flags, capability, torch_says, native):
    found = cpu_bf16_support(flags, capability, torch_says)
    assert found.native is native
    assert ("not supported natively" in found.reason) is (not native)
    assert str(capability or "unknown") in found.reason  # the kernels torch runs are named


def test_cpu_flags_reads_x86_and_arm_cpuinfo():
    x86 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu avx2 fma\n"
    arm = "processor\t: 0\nFeatures\t: fp asimd sve bf16\nCPU implementer\t: 0x41\n"
    assert cpu_flags(x86) == {"fpu", "avx2", "fma"}
    assert cpu_flags(arm) == {"fp", "asimd", "sve", "bf16"}
    assert cpu_flags("model name\t: something\n") == set()


def test_this_machine_gets_a_decision_with_its_reason():
    found = fastpath.detect_cpu_bf16()
    assert isinstance(found.native, bool) and torch.backends.cpu.get_cpu_capability() in found.reason


# ------------------------------------------------------------------ precision per config and device


@pytest.mark.parametrize("choice, support, name, emulated", [
    ("fp32", EMULATED, "fp32", False),
    ("fp32", NATIVE, "fp32", False),  # the default never changes what a run computes
    ("auto", EMULATED, "fp32", False),
    ("auto", NATIVE, "bf16", False),
    ("bf16", EMULATED, "bf16", True),
    ("bf16", NATIVE, "bf16", False),
])
def test_cpu_precision_resolves_by_the_cpus_support(choice, support, name, emulated):
    got = resolve_precision(TrainConfig(cpu_precision=choice), CPU, support=lambda: support)
    assert (got.name, got.emulated) == (name, emulated)
    assert got.dtype == (torch.bfloat16 if name == "bf16" else None)
    assert f"train.cpu_precision={choice}" in got.reason
    if choice == "auto":
        assert support.reason in got.reason


def test_cuda_keeps_train_amp_and_other_devices_run_fp32():
    never = lambda: pytest.fail("the CPU's bf16 support is not asked off the CPU")  # noqa: E731
    cuda = torch.device("cuda")
    assert resolve_precision(TrainConfig(amp=True, cpu_precision="fp32"), cuda, never).dtype == torch.bfloat16
    assert resolve_precision(TrainConfig(amp=False, cpu_precision="bf16"), cuda, never).dtype is None
    assert resolve_precision(TrainConfig(cpu_precision="bf16"), torch.device("mps"), never).dtype is None


# ------------------------------------------------------------------ optimiser kernels


def _params() -> list[dict]:
    return [{"params": [torch.nn.Parameter(torch.zeros(4))], "name": "head"}]


def test_fused_optimizer_uses_the_fused_kernel_where_torch_has_one():
    plain, kernel = make_optimizer(torch.optim.AdamW, _params(), False, lr=1e-3)
    assert kernel == "default" and not plain.defaults.get("fused")
    fused, kernel = make_optimizer(torch.optim.AdamW, _params(), True, lr=1e-3)
    assert kernel == "fused" and fused.defaults["fused"] is True


class _NoFusedKernel(torch.optim.AdamW):
    def __init__(self, params, fused=None, **kwargs):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of "
                               "supported devices")
        super().__init__(params, **kwargs)


def test_fused_optimizer_falls_back_to_foreach_and_says_why():
    optimizer, kernel = make_optimizer(_NoFusedKernel, _params(), True, lr=1e-3)
    assert kernel.startswith("foreach (no fused kernel here: `fused=True` requires")
    assert optimizer.defaults["foreach"] is True


# ------------------------------------------------------------------ FLOP count


def test_a_linear_layer_costs_three_forward_matmuls_forward_and_backward():
    batch, n_in, n_out = 5, 7, 3
    layer = torch.nn.Linear(n_in, n_out)
    x = torch.rand(batch, n_in, requires_grad=True)
    forward = 2 * batch * n_in * n_out  # one multiply-add per (row, input, output)
    assert count_flops(lambda: layer(x)) == forward
    # backward: the input's gradient and the weight's gradient, each one matmul of the same size
    assert count_flops(lambda: layer(x).sum().backward()) == 3 * forward


@pytest.mark.parametrize("groups", [1, 4, 8])
def test_a_convolution_backward_costs_twice_its_forward_also_when_grouped(groups):
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=groups, bias=False)
    x = torch.rand(2, 8, 10, 10, requires_grad=True)
    forward = 2 * 2 * 10 * 10 * 8 * (8 // groups) * 3 * 3  # batch, pixels, outputs, inputs per group, kernel
    assert count_flops(lambda: conv(x)) == forward
    # torch's own formula counts a depthwise weight gradient as dense: 10x the forward for groups=8
    assert count_flops(lambda: conv(x).sum().backward()) == 3 * forward


# ------------------------------------------------------------------ config keys and prechecks


@pytest.mark.parametrize("override, message", [
    ("train.cpu_precision=fp16", "train.cpu_precision: 'fp16' is not one of fp32, auto, bf16"),
    ("train.cpu_precision=off", "train.cpu_precision: expected one of fp32, auto, bf16, got false (YAML reads off"),
    ("train.compile=maybe", "train.compile: expected true/false, got 'maybe'"),
    ("train.fused_optimizer=2", "train.fused_optimizer: expected true/false, got 2"),
])
def test_config_refuses_bad_fast_path_values_naming_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert message in str(err.value) and override in str(err.value)


def test_fast_paths_are_off_by_default():
    train = load_config(REPO / "configs" / "sketchy-mini-cpu.yaml").train
    assert (train.cpu_precision, train.compile, train.fused_optimizer) == ("fp32", False, False)


def test_compile_without_a_cxx_compiler_is_refused_before_the_run(monkeypatch):
    monkeypatch.setattr(fastpath.shutil, "which", lambda name: None)
    assert "C++ compiler" in fastpath.compile_unavailable(CPU)
    with pytest.raises(ConfigError, match=r"train.compile=true: no C\+\+ compiler found .* set train.compile=false"):
        check_fast_paths(TrainConfig(compile=True), CPU)
    check_fast_paths(TrainConfig(compile=False), CPU)  # nothing asked, nothing refused


# ------------------------------------------------------------------ the benchmark's modes


def _bench():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_train_step

    return bench_train_step


def test_benchmark_modes_parse_from_their_names():
    bench = _bench()
    mode = bench.parse_mode("fp32-channels_last+compile+fused_adamw+threads1")
    assert (mode.bf16, mode.channels_last, mode.compile, mode.fused, mode.threads) == (False, True, True, True, 1)
    assert bench.parse_mode("bf16-autocast+channels_last").bf16
    assert bench.parse_mode("fp32-channels_last+inplace_relu6").inplace_relu6
    assert not bench.parse_mode("fp32-channels_last").inplace_relu6
    assert all(bench.parse_mode(name) for name in bench.CPU_MODES)
    for bad in ("fp16-eager", "fp32-eager+turbo", "fp32-eager+threads0"):
        with pytest.raises(ValueError, match="mode"):
            bench.parse_mode(bad)


def test_compile_time_is_amortised_over_the_books_run():
    bench = _bench()
    book = load_config(REPO / "configs" / "sketchy-mini-cpu.yaml")
    compiled = {"synthetic": {"first_step_seconds": 61.0, "sec_per_step": 1.0}}
    eager = {"synthetic": {"sec_per_step": 1.5}}
    run = bench._book_run(compiled, eager, book, steps_per_epoch=10, batch=32)
    assert run["compile_seconds"] == 60.0 and run["steps"] == 7 * 10
    assert run["net_seconds_saved_over_run"] == 70 * 0.5 - 60.0 and run["break_even_steps"] == 120
    assert "note" not in run and "note" in bench._book_run(compiled, eager, book, 10, batch=4)


# ------------------------------------------------------------------ a training run with them on


@pytest.mark.slow  # torch.compile of the three branches, forward and backward: minutes on 2 cores
def test_training_with_compile_and_fused_optimizer_leaves_a_plain_resumable_checkpoint(sketchy_mini_root, tmp_path):
    from semi3lib.engine.checkpoints import load_checkpoint_file
    from semi3lib.engine.train import train
    from semi3lib.models import Semi3Net

    overrides = [f"data.root={sketchy_mini_root}", "data.max_categories=4", f"data.cache_dir={tmp_path / 'edges'}",
                 f"train.out_dir={tmp_path / 'run'}", "train.max_steps_per_epoch=2", "train.compile=true",
                 "train.fused_optimizer=true", "train.cpu_precision=auto"]
    cfg = load_config(REPO / "configs" / "smoke.yaml", overrides)
    train(cfg, progress=False)
    ckpt = load_checkpoint_file(tmp_path / "run" / "last.pt", resume=True)
    assert not [k for k in ckpt["model"] if "_orig_mod" in k]
    model = Semi3Net(cfg.model, num_classes=ckpt["num_classes"])
    model.load_state_dict(ckpt["model"])  # strict: every key of the plain model, no other
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    used = row["fast_path"]
    assert used["compile"] is True and used["optimizer"] == "adamw (fused)" and used["channels_last"] is True
    assert used["precision"] == ("bf16" if fastpath.detect_cpu_bf16().native else "fp32")
    assert "train.cpu_precision=auto" in used["precision_reason"]
    # resuming the finished run restores the model and the fused optimiser's state, and trains nothing more
    resumed = train(cfg, resume=True, progress=False)
    assert len(resumed.history) == 1 and resumed.history[0]["fast_path"] == used
    assert all(torch.equal(resumed.model.state_dict()[k], v) for k, v in ckpt["model"].items())


def test_a_run_record_says_which_fast_paths_its_steps_took():
    from semi3lib.engine.fastpath import FastPath
    from semi3lib.engine.records import RunRecord

    used = FastPath(device="cpu", precision="fp32", precision_reason="train.cpu_precision=fp32 (the default)",
                    bf16_emulated=False, channels_last=True, compile=False, optimizer="adamw (fused)",
                    torch_threads=2).to_dict()
    record = RunRecord.from_dict({"run": "r", "metrics": {"query": {"mAP@all": 0.5}},
                                  "history": [{"epoch": 1, "fast_path": used}, {"epoch": 2, "fast_path": used}]})
    assert record.fast_path == used and record.fast_path["optimizer"] == "adamw (fused)"
    assert RunRecord.from_dict({"run": "old", "metrics": {"mAP@all": 0.5}, "history": [{"epoch": 1}]}).fast_path is None


def test_emulated_bf16_is_skipped_where_the_fp32_step_is_already_slow():
    import argparse

    bench = _bench()
    args = argparse.Namespace(batch=32, threads=2, warmup=2, steps=5, emulated_bf16_limit=3.0)
    setting = bench.Bench(args, CPU, book=None, peaks=None, bf16_native=False, bf16_reason=EMULATED.reason,
                          compile_error=None)
    row, flops = bench.bench_mode(setting, "vgg19", 224, bench.parse_mode("bf16-autocast+channels_last"),
                                  loader=None, count=True, baseline_seconds=34.0)
    assert flops is None and "synthetic" not in row and row["bf16_emulated"] is True
    assert row["skipped"].startswith("emulated bf16 not timed: the fp32 step takes 34.0 s "
                                     "(> --emulated-bf16-limit 3 s)")
    assert row["precision"] == {"name": "bf16", "native": False, "reason": EMULATED.reason}


def test_fused_adamw_does_not_compute_the_default_kernels_numbers():
    """Why the CPU fast path leaves fused AdamW out (chapter 8): after a few steps on the same
    gradients its parameters differ from the default kernel's in the last bits, so a run with it
    is a different run, which would need seeds of its own."""
    torch.manual_seed(0)
    params, grads = [torch.randn(1000, 100) for _ in range(3)], [torch.randn(1000, 100) for _ in range(3)]

    def steps(fused: bool) -> list[torch.Tensor]:
        trained = [p.clone().requires_grad_() for p in params]
        optimizer, _ = make_optimizer(torch.optim.AdamW, trained, fused, lr=1e-3)
        for _ in range(5):
            for p, g in zip(trained, grads):
                p.grad = g.clone()
            optimizer.step()
        return trained

    default, fused = steps(False), steps(True)
    assert not all(torch.equal(a, b) for a, b in zip(default, fused))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(default, fused))  # the same update, other rounding
