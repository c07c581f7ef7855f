"""The model inspection helpers: a traced forward pass and the sharing modes' sizes."""

from __future__ import annotations

import torch

from semi3lib.config import ModelConfig
from semi3lib.models import Semi3Net
from semi3lib.models.inspect import sharing_comparison, trace_forward


def test_trace_lists_every_block_call_with_the_branches_it_carries():
    cfg = ModelConfig(pretrained=False, embed_dim=32, hidden_dim=64)
    model = Semi3Net(cfg, num_classes=5, load_weights=False).eval()
    images = {b: torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(i))
              for i, b in enumerate(("sketch", "photo", "edge"))}
    trace = trace_forward(model, **images)
    rows = {row["block"]: row for row in trace.to_dict(orient="records")}
    assert rows["bottoms.sketch_edge"]["branches"] == "sketch, edge"
    assert rows["bottoms.photo"]["branches"] == "photo"
    assert rows["top"]["branches"] == "sketch, photo, edge"
    assert list(trace["block"]).count("embedding") == 3
    assert rows["classifier"]["output"].endswith("5)")


def test_sharing_comparison_counts_one_two_and_three_bottoms():
    table = sharing_comparison(ModelConfig(embed_dim=32, hidden_dim=64), num_classes=5).set_index(["sharing", "co-attention"])
    assert table.loc[("shared", True), "bottoms"] == 1
    assert table.loc[("semi", True), "bottoms"] == 2 and table.loc[("separate", True), "bottoms"] == 3
    sizes = table["parameters"]
    assert sizes[("shared", True)] < sizes[("semi", True)] < sizes[("separate", True)]
    assert sizes[("semi", False)] < sizes[("semi", True)]
