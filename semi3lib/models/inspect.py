"""Looking inside a Semi3-Net: which block runs on which branch with which shapes, and what
the sharing modes cost in parameters."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import torch

from semi3lib.config import ModelConfig
from semi3lib.models.semi3net import Semi3Net


def _shapes(value: Any) -> str:
    """``(B, C, H, W)`` of a tensor, comma-joined for (nested) tuples and lists of them."""
    if torch.is_tensor(value):
        return str(tuple(value.shape))
    if isinstance(value, (tuple, list)):
        return ", ".join(_shapes(v) for v in value if torch.is_tensor(v) or isinstance(v, (tuple, list)))
    return ""


def trace_forward(model: Semi3Net, **inputs: torch.Tensor | None) -> pd.DataFrame:
    """Run ``model(**inputs)`` once (``sketch``/``photo``/``edge`` of ``(B, 3, S, S)``) with
    hooks on its blocks and list every block call in order: the block, the branches whose
    data it carries, input and output shapes."""
    given = [b for b in model.branches if inputs.get(b) is not None]
    carried = {f"bottoms.{name}": [b for b in given if model.bottom_of[b] == name] for name in model.bottoms}
    carried.update({"coattention": ["photo", "edge"], "top": given})
    blocks = {f"bottoms.{name}": module for name, module in model.bottoms.items()}
    if getattr(model, "coattention", None) is not None:
        blocks["coattention"] = model.coattention
    blocks.update({"top": model.top, "pool": model.pool, "embedding": model.embedding, "classifier": model.classifier})
    rows: list[dict[str, str]] = []
    calls: dict[str, int] = {}

    def hook(name: str, args: Any, out: Any) -> None:
        n = calls[name] = calls.get(name, 0) + 1
        branches = carried.get(name, [given[n - 1]] if n <= len(given) else [])
        rows.append({"block": name, "branches": ", ".join(branches), "input": _shapes(args), "output": _shapes(out)})

    handles = [module.register_forward_hook(lambda _m, args, out, name=name: hook(name, args, out))
               for name, module in blocks.items()]
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for handle in handles:
            handle.remove()
    table = pd.DataFrame(rows)
    table.index = range(1, len(table) + 1)
    return table


def sharing_comparison(model_cfg: ModelConfig, num_classes: int) -> pd.DataFrame:
    """Parameters of the three sharing modes (and co-attention on/off) for one backbone:
    columns ``sharing``, ``co-attention``, ``bottoms``, ``parameters``. The layers are built
    without loading any weights (only the counts matter)."""
    rows = []
    for sharing, coatt in (("semi", True), ("semi", False), ("shared", True), ("separate", True)):
        cfg = dataclasses.replace(model_cfg, sharing=sharing, coattention=coatt)
        model = Semi3Net(cfg, num_classes, load_weights=False)
        rows.append({"sharing": sharing, "co-attention": coatt, "bottoms": len(model.bottoms),
                     "parameters": sum(p.numel() for p in model.parameters())})
    return pd.DataFrame(rows)
