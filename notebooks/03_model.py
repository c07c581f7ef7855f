# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (semi3)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The model: three branches, what they share
#
# Semi3-Net embeds a sketch, a photo and the photo's edgemap with three branches that are
# neither fully shared nor fully separate, hence *semi-heterogeneous*:
#
# - **bottom layers** (the early backbone stages): the sketch and edgemap branches run the
#   *same* weights, since both are line drawings; the photo branch has its own copy;
# - a **co-attention** block between the photo and edgemap branches: one set of channel
#   weights, computed from both, rescales both feature maps;
# - **top layers** (the late backbone stages, pooling and an embedding MLP) and the
#   classifier: shared by all three branches, mapping every domain into one space.
#
# This chapter builds the model of the training config, counts the parameters of each block
# and traces one forward pass with the shape of every intermediate tensor.

# %% tags=["parameters", "hide-input"]
config = "configs/sketchy-mini-cpu.yaml"
overrides = []
batch_size = 2
results_dir = "results/book/cpu"
figures_dir = "figures"

# %% tags=["hide-input"]
from semi3lib.interactive import use_project_root

use_project_root()  # JupyterLab starts kernels in notebooks/; every path here is from the root

from semi3lib.book import runner as book

from semi3lib.book import figures
import pandas as pd
import torch

from semi3lib.config import load_config
from semi3lib.data.experiment import load_experiment_data, train_dataset
from semi3lib.models import Semi3Net
from semi3lib.models.inspect import sharing_comparison, trace_forward

figures.use_book_style()
cfg = load_config(config, overrides)
data = load_experiment_data(cfg.data)
model = Semi3Net(cfg.model, num_classes=data.num_classes).eval()
print(f"backbone {model.backbone_name} ({model.backbone_source}), stages: {', '.join(model.stage_names)}")
print(f"bottom = stages 1..{model.split}, top = stages {model.split + 1}..{len(model.stage_names)}; "
      f"sharing={cfg.model.sharing!r}, co-attention={model.coattention is not None}, classes={data.num_classes}")

# %% [markdown]
# ## What is shared: parameters per block
#
# Each row is one block of weights and the branches that run it. In the paper's `semi` mode
# there are two bottoms: `photo` and `sketch_edge`, the latter run by both the sketch and the
# edgemap branch.

# %%
# NBVAL_CHECK_OUTPUT
blocks = pd.DataFrame(model.branch_parameter_table()).set_index("block")
total = sum(p.numel() for p in model.parameters())
blocks["share"] = (blocks["n_params"] / total).map("{:.1%}".format)
print(blocks.to_string())
print(f"total parameters: {total:,}")

# %% [markdown]
# Sharing is by identity, not by copying values: the sketch and edgemap branches hold the very
# same module, so every gradient step moves both.

# %%
# NBVAL_CHECK_OUTPUT
print("sketch and edgemap bottoms are one module:", model.bottom("sketch") is model.bottom("edge"))
print("photo bottom is its own module:          ", model.bottom("photo") is not model.bottom("sketch"))

# %% [markdown]
# The other sharing modes are one config key away (`model.sharing`, `model.coattention`);
# they are the ablations of the evaluation chapter. With one bottom for all three branches
# (`shared`) the model is smallest; three separate bottoms (`separate`) add one more copy.

# %%
# NBVAL_CHECK_OUTPUT
sharing = sharing_comparison(cfg.model, data.num_classes)
print(sharing.to_string(index=False))

# %% [markdown]
# ## A forward pass, traced
#
# One training batch of real (sketch, photo, edgemap) triplets goes through the model; hooks
# record every block call in order. Two things to notice: branches that run the same block are
# batched together (the sketch/edgemap bottom sees `2B` images, the shared top `3B`), and the
# co-attention block takes the photo and edgemap features and returns both recalibrated, plus
# the `(B, C)` channel weights.
#
# The co-attention (squeeze-and-excitation style on both domains at once, an assumed design):
#
# $$ z = [\mathrm{GAP}(X_\mathrm{photo});\ \mathrm{GAP}(X_\mathrm{edge})], \qquad
#    s = \sigma\!\left(W_2\, \mathrm{ReLU}(W_1 z)\right), \qquad
#    X'_\mathrm{photo} = s \odot X_\mathrm{photo}, \quad X'_\mathrm{edge} = s \odot X_\mathrm{edge}. $$

# %% tags=["hide-input"]
triplets = train_dataset(data, cfg.data, seed=0)
batch = torch.utils.data.default_collate([triplets[i] for i in range(batch_size)])
print({k: tuple(v.shape) for k, v in batch.items() if torch.is_tensor(v)})

# %%
# NBVAL_CHECK_OUTPUT
trace = trace_forward(model, sketch=batch["sketch"], photo=batch["photo"], edge=batch["edge"])
print(trace.to_string())
with torch.no_grad():
    outputs = model(sketch=batch["sketch"], photo=batch["photo"], edge=batch["edge"])
print("outputs:", ", ".join(f"{k} {tuple(v.shape)}" for k, v in outputs.items()))

# %% [markdown]
# The triplet's three images, as the network receives them (before normalisation):

# %% tags=["hide-input"]
fig = figures.image_table([[batch["sketch"][i], batch["photo"][i], batch["edge"][i]] for i in range(batch_size)],
                          col_labels=["sketch", "photo", "edgemap"],
                          row_labels=[f"{data.index.categories[int(batch['sketch_label'][i])]}"
                                      f"{' (same)' if float(batch['same'][i]) else ' / ' + data.index.categories[int(batch['photo_label'][i])]}"
                                      for i in range(batch_size)],
                          title="Training triplets")
path = figures.save_figure(fig, "03_training_triplets", figures_dir)

# %% tags=["remove-cell"]
results_path = book.write_results(results_dir, "03_model", {
    "backbone": model.backbone_name,
    "backbone_source": model.backbone_source,
    "split_stage": model.split,
    "blocks": blocks["n_params"].to_dict(),
    "total_parameters": total,
    "sharing_modes": sharing.to_dict(orient="records"),
    "trace": trace.to_dict(orient="records"),
})
print(f"wrote {results_path}")

# %% [markdown]
# ## Summary
#
# - The sketch and edgemap branches share one bottom (the same module object); the photo
#   branch has its own; the top, the embedding and the classifier serve all three.
# - The co-attention block is tiny next to the backbone; it couples the photo and edgemap
#   branches through one set of channel weights.
# - Retrieval uses the L2-normalised embedding before the classifier: a sketch goes through
#   the sketch branch, a gallery photo through the photo branch together with its own edgemap.
