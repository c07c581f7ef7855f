"""Run by ``torchrun`` from tests/test_training.py: train a few steps, save this rank's weights."""

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from semi3lib.config import load_config
from semi3lib.models import Semi3Net
from semi3lib.engine.train import train

out = Path(sys.argv[1])
cfg = load_config(sys.argv[2], sys.argv[3:])
rank = int(os.environ.get("RANK", "0"))
if rank == 0:
    # The pretrained starting point, to prove the compared weights really moved.
    torch.save(Semi3Net(cfg.model, num_classes=cfg.data.max_categories).state_dict(), out / f"initial{rank}.pt")
result = train(cfg, progress=False)
torch.save(result.model.state_dict(), out / f"rank{dist.get_rank() if dist.is_initialized() else 0}.pt")
if dist.is_initialized():
    dist.destroy_process_group()
