"""train.keep_freed_memory (semi3lib.engine.allocator): glibc keeps freed memory for the next
training step. It must change where tensors live, never what a step computes, and it must
spare the step the page faults of memory unmapped and mapped in again."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from semi3lib.engine.allocator import AllocatorSetting, keep_freed_memory

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Three training steps of Semi3-Net (EfficientNet-Lite0, random init, 128 px, batch 16), in a
# fresh process, since the setting is process-wide and cannot be undone: the loss and the
# gradients of the last step, bit for bit, and the minor page faults of the last two steps.
STEPS = r"""
import hashlib, json, resource, sys, warnings
import torch
from semi3lib.config import ModelConfig
from semi3lib.engine.allocator import keep_freed_memory
from semi3lib.models import Semi3Net
from semi3lib.models.losses import HybridLoss
from semi3lib.config import LossConfig
warnings.simplefilter("ignore")
setting = keep_freed_memory(sys.argv[1] == "keep")
torch.set_num_threads(1)
torch.manual_seed(0)
model = Semi3Net(ModelConfig(backbone="efficientnet_lite0", pretrained=False), 10).to(memory_format=torch.channels_last)
loss_fn = HybridLoss(LossConfig())
g = torch.Generator().manual_seed(1)
batch = {k: torch.randn(16, 3, 128, 128, generator=g).contiguous(memory_format=torch.channels_last)
         for k in ("sketch", "photo", "edge")}
batch["sketch_label"] = batch["photo_label"] = torch.arange(16) % 10
faults = []
for step in range(3):
    model.zero_grad(set_to_none=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    loss, _ = loss_fn(model(sketch=batch["sketch"], photo=batch["photo"], edge=batch["edge"]), batch)
    loss.backward()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
grads = hashlib.sha256(b"".join(p.grad.numpy().tobytes() for p in model.parameters() if p.grad is not None))
print(json.dumps({"kept": setting.kept, "loss": loss.item().hex(), "grads": grads.hexdigest(),
                  "faults": sum(faults[1:]) / 2}))
"""


def _steps(setting: str) -> dict:
    done = subprocess.run([sys.executable, "-c", STEPS, setting], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="the setting is glibc's (mallopt); elsewhere it is left alone")
def test_keeping_freed_memory_computes_the_same_step_with_far_fewer_page_faults():
    default, kept = _steps("default"), _steps("keep")
    assert not default["kept"] and kept["kept"]
    assert (kept["loss"], kept["grads"]) == (default["loss"], default["grads"])  # bit for bit
    assert kept["faults"] < default["faults"] / 3, (kept["faults"], default["faults"])


def test_switched_off_or_without_glibc_the_allocator_is_left_alone_and_says_why(monkeypatch):
    off = keep_freed_memory(False)
    assert off == AllocatorSetting(False, "the platform's default (train.keep_freed_memory: false)")
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert str(keep_freed_memory()).startswith("the platform's default (no glibc on ")


def test_a_whole_book_run_with_freed_memory_kept_scores_what_one_without_it_scored():
    """Chapter 4's committed record (trained with the setting) against the host check's (the
    same config and seed on the same kind of host, trained before the setting existed): every
    epoch's losses and the final scores, to the last digit."""
    from pathlib import Path

    from semi3lib.engine.hardware import host_kind

    repo = Path(__file__).resolve().parents[1]
    book = json.loads((repo / "results" / "book" / "cpu" / "04_training.json").read_text())
    check = json.loads((repo / "results" / "host-check" / "chapter-4-seed0-amd-epyc-avx2.json").read_text())
    assert "freed memory kept" in book["history"][0]["fast_path"]["allocator"]
    assert "allocator" not in check["history"][0].get("fast_path", {})
    assert host_kind(book["hardware"]) == host_kind(check["machine"])
    losses = ("loss_ce", "loss_alignment", "loss_contrastive", "loss_total")
    assert [[e[k] for k in losses] for e in book["history"]] == [[e[k] for k in losses] for e in check["history"]]
    assert book["final_query_metrics"]["mAP@all"] == check["metrics"]["query"]["mAP@all"]
