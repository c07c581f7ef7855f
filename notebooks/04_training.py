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
# # Training Semi3-Net
#
# This chapter trains the model of the previous chapter on the training sketches and photos
# and saves the checkpoint that the following chapters read. Each training item is a triplet:
# a sketch, a photo (of the sketch's category or, half of the time, of another category) and
# that photo's edgemap. The **hybrid loss** adds three terms (their exact form is an assumed
# design, the paper names them only):
#
# $$ L = \sum_{d \in \{\mathrm{sketch},\,\mathrm{photo},\,\mathrm{edge}\}} \mathrm{CE}\big(y_d, g(f_d)\big)
#      + \lambda_a\, \big\lVert f_\mathrm{photo} - f_\mathrm{edge} \big\rVert^2
#      + \lambda_c \Big[\, y\, d^2 + (1 - y) \max(0,\, m - d)^2 \Big],
#      \qquad d = \lVert f_\mathrm{sketch} - f_\mathrm{edge} \rVert, $$
#
# a classification loss on every branch's embedding $f_d$, an **alignment** loss pulling a
# photo's embedding to its own edgemap's, and a **contrastive** loss pulling a sketch towards
# edgemaps of its category ($y = 1$) and pushing it at least a margin $m$ from the others.
#
# The run is the project's default training config, `configs/sketchy-mini-cpu.yaml`
# (EfficientNet-Lite0 with ImageNet weights, 128 px, 7 epochs, scored on the queries once, at
# the end), the same run as `semi3 train --config configs/sketchy-mini-cpu.yaml`; its
# training minutes on this machine are printed with the run below.
# With `resume = True` a finished run of the *same* config in `run_dir` is reused instead of
# trained again (a run under a different config is refused, never silently mixed), and a
# stopped one continues where it stopped. The reproduction study trains the ablations; the
# evaluation chapter shows those results beside this run.

# %% tags=["parameters", "hide-input"]
config = "configs/sketchy-mini-cpu.yaml"
overrides = []
run_dir = "runs/sketchy-mini-cpu"
device = "auto"
resume = True
results_dir = "results/book/cpu"
figures_dir = "figures"

# %% tags=["hide-input"]
from semi3lib.interactive import use_project_root

use_project_root()  # JupyterLab starts kernels in notebooks/; every path here is from the root

import yaml

from semi3lib.book import runner as book

from semi3lib.book import figures
from semi3lib.config import load_config
from semi3lib.study.tables import history_table, reader_table
from semi3lib.engine.train import read_steps, train
from semi3lib.engine.device import select_device
from semi3lib.engine.hardware import machine_info

figures.use_book_style()
cfg = load_config(config, [*overrides, f"train.out_dir={run_dir}", f"train.device={device}"])
print(f"device: {select_device(cfg.train.device)}")
print(yaml.safe_dump(cfg.to_dict(), sort_keys=False))

# %% [markdown]
# ## Training
#
# The loop (`semi3lib.engine.train.train`, the same one `semi3 train` runs) writes the resolved
# config, the split, per-epoch metrics (`metrics.jsonl`, `metrics.csv`), the loss terms every
# `train.log_every` steps (`steps.jsonl`) and the checkpoints `last.pt` / `best.pt` into the
# run folder. It keeps images and activations channels-last (NHWC), which made a training
# step faster on this project's 2-core CPU (the benchmarks chapter measures by how much),
# and on CUDA adds bf16 mixed precision; it runs on whatever `device` resolves to.

# %%
result = train(cfg, resume=resume, progress=False)
print(f"{len(result.history)} epoch(s) in {result.wall_seconds:.0f} s; run folder {result.out_dir}")

# %% [markdown]
# ## Loss terms and retrieval during training
#
# Mean loss terms per epoch (unweighted; `total` is the weighted sum that was minimised) and
# the query split's mAP@all at the epochs where it was evaluated.

# %% tags=["hide-input"]
reader_table(history_table(result.history), digits=3, formats={"lr": "{:.1e}", "wall_seconds": "{:,.0f}"})

# %% [markdown]
# The curves follow the loss terms within each epoch, from the step log: each point is the
# mean over the `train.log_every` steps before it (the last point of an epoch over the steps
# left since the previous one).

# %% tags=["hide-input"]
steps = read_steps(result.out_dir)
fig = figures.training.plot_training_curves(result.history, steps=steps,
                                            title=f"Training {cfg.name} ({cfg.data.image_size} px, {cfg.train.epochs} epochs, "
                                                  f"loss every {cfg.train.log_every} steps)")
path = figures.save_figure(fig, "04_training_curves", figures_dir)

# %% tags=["remove-cell"]
checkpoint = result.out_dir / "last.pt"
results_path = book.write_results(results_dir, "04_training", {
    "config": cfg.to_dict(),
    "device": str(select_device(cfg.train.device)),
    "checkpoint": str(checkpoint),
    "wall_seconds": result.wall_seconds,
    "final_query_metrics": result.final_metrics,
    "history": result.history,
    "hardware": machine_info(),
})
print(f"checkpoint for the next chapters: {checkpoint}")
print(f"wrote {results_path}")

# %% [markdown]
# ## Summary
#
# - The model trained with the three loss terms on every batch; the curves above show each
#   term falling and the query mAP it reached.
# - The checkpoint is in the run folder (`last.pt`); the evaluation, co-attention and
#   embedding chapters read it through their `checkpoint` parameter, whose default is this
#   run's `runs/sketchy-mini-cpu/last.pt`.
