"""What a checkpoint holds and how it is read: model weights, the run's config, RNG states,
and the identity (backbone, sizes, a digest of the weights) that an index or an export records
so that another model's embeddings are never mixed with these."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semi3lib.config import ExperimentConfig
from semi3lib.io import atomic_write


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda handle: torch.save(obj, handle))



def rng_state() -> dict[str, Any]:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state



def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])



def weights_digest(model: torch.nn.Module) -> str:
    """A short sha256 of the model's parameters and buffers: identifies *these* weights,
    so an index built by one model is refused by another."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]



def load_checkpoint_file(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file: say which, not where in pickle
        raise ValueError(f"{path} is not a readable semi3 checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path} is not a semi3 checkpoint (no model/config entries)")
    return ckpt


def model_identity(model: torch.nn.Module, cfg: ExperimentConfig) -> dict[str, Any]:
    return {
        "backbone": cfg.model.backbone,
        "embed_dim": cfg.model.embed_dim,
        "image_size": cfg.data.image_size,
        "edge_method": cfg.data.edge_method,
        "weights": weights_digest(model),
    }
