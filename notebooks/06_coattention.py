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
# # What the co-attention does
#
# Between the photo and edgemap branches, Semi3-Net places a co-attention block: from the
# pooled features of a photo *and* of its edgemap it computes one weight per channel,
# $s \in (0, 1)^C$, and multiplies both feature maps by it. Channels that the two views agree
# matter are kept, others are damped, so the photo branch is pushed towards what the photo has
# in common with its line drawing, and so with sketches. The block starts close to the
# identity (every weight about 0.95), so whatever structure appears below was learnt.
#
# This chapter reads the trained checkpoint and looks at the weights over the gallery: their
# distribution, which channels each category boosts, and the spatial activation maps of the
# bottom features before and after recalibration.

# %% tags=["parameters", "hide-input"]
checkpoint = "runs/sketchy-mini-cpu/last.pt"
device = "auto"
show_categories = 10
show_channels = 32
top_channels = 5
example_photos = 4
seed = 0
results_dir = "results/book/cpu"
figures_dir = "figures"

# %% tags=["hide-input"]
from semi3lib.interactive import use_project_root

use_project_root()  # JupyterLab starts kernels in notebooks/; every path here is from the root

import dataclasses
from pathlib import Path

import numpy as np
import torch

from semi3lib.book import runner as book

from semi3lib.book import figures
from semi3lib.book.analysis import (activation_maps, boosted_channels, coattention_weights, discriminative_channels,
                               select_categories)
from semi3lib.engine.evaluate import embed_split, load_trained
from semi3lib.study.tables import reader_table
from semi3lib.models import Semi3Net
from semi3lib.engine.device import select_device

figures.use_book_style()
dev = select_device(device)
model, cfg, ckpt, data = load_trained(book.require_checkpoint(checkpoint), dev)
if model.coattention is None:
    raise ValueError(f"{checkpoint} was trained without co-attention (model.coattention=false or no edge "
                     f"branch): this chapter needs a Semi3-Net checkpoint with it")
print(f"checkpoint {checkpoint}: co-attention over {model.bottom_channels} channels of stage "
      f"{model.stage_names[model.split - 1]!r}, reduction {cfg.model.coattention_reduction}")

# %% [markdown]
# ## The weights over the gallery
#
# Every gallery photo with its own edgemap, as at retrieval time. Left: all weights; right:
# each channel's mean weight over the photos (sorted) and its spread. Channels with a low mean
# are damped for almost every photo; a wide band means the weight depends on the photo.

# %%
# The weights are a by-product of embedding the gallery, which training kept beside the checkpoint.
gallery = embed_split(model, data, cfg.data, "query", dev, cache_dir=Path(checkpoint).parent)
weights, labels = gallery["gallery_attention"], gallery["gallery_labels"]
print(f"weights for {len(weights)} photos x {weights.shape[1]} channels: mean {weights.mean():.3f}, "
      f"std {weights.std():.3f}, min {weights.min():.3f}, max {weights.max():.3f}")
fig = figures.coattention.plot_weight_histogram(weights, title="Co-attention channel weights over the gallery (trained)")
path = figures.save_figure(fig, "06_weight_distribution", figures_dir)

# %% [markdown]
# For comparison, the same photos through an untrained model (same pretrained backbone, the
# co-attention at its initialisation): the weights start almost flat.

# %%
shown = select_categories(labels, show_categories, seed=seed)
shown_photos = [j for j in data.split.gallery if data.index.label_of(data.index.photos[j].category) in set(shown)]
torch.manual_seed(seed)
untrained = Semi3Net(dataclasses.replace(cfg.model, pretrained=True), num_classes=data.num_classes).to(dev)
init_weights, _ = coattention_weights(untrained, data, cfg.data, shown_photos, dev)
print(f"untrained: mean {init_weights.mean():.3f}, std {init_weights.std():.3f} "
      f"(trained, same photos: mean {weights[np.isin(labels, shown)].mean():.3f}, "
      f"std {weights[np.isin(labels, shown)].std():.3f})")

# %% [markdown]
# ## Which channels each category boosts
#
# The mean weight per category for the channels whose weight varies most between categories:
# if the recalibration were the same for every photo, the columns would be flat.

# %% tags=["hide-input"]
channels = discriminative_channels(weights, labels, show_channels)
means = np.stack([weights[labels == c][:, channels].mean(0) for c in shown])
fig = figures.coattention.plot_channel_weights(means, [data.index.categories[c] for c in shown], channels,
                                               title=f"Mean co-attention weight per category ({len(channels)} most category-dependent channels)")
path = figures.save_figure(fig, "06_channel_weights", figures_dir)

# %% [markdown]
# The channels each category lifts most above their mean over all photos (the lift in
# brackets):

# %%
boosted = boosted_channels(weights, labels, data.index.categories, top=top_channels)
reader_table(boosted.loc[[data.index.categories[c] for c in shown]])

# %% [markdown]
# ## Where the features respond, before and after recalibration
#
# Channel-mean absolute activation of the bottom features for a few photos and their
# edgemaps, before and after multiplying by the shared weights (one colour scale per row).
# Recalibration changes the maps only through the channel weights, so the differences are
# modest; they show which parts of the image the boosted channels respond to.

# %% tags=["hide-input"]
from semi3lib.data.datasets import GalleryPhotos
from semi3lib.data.experiment import edge_cache_dir

rng = np.random.default_rng(seed)
examples = [shown_photos[i] for i in sorted(rng.choice(len(shown_photos), min(example_photos, len(shown_photos)),
                                                        replace=False))]
items = GalleryPhotos(data.index, examples, image_size=cfg.data.image_size, edge_method=cfg.data.edge_method,
                      cache_dir=edge_cache_dir(cfg.data))
batch = torch.utils.data.default_collate([items[i] for i in range(len(items))])
maps = activation_maps(model, batch["photo"].to(dev), batch["edge"].to(dev))
fig = figures.coattention.plot_activation_maps(list(batch["photo"]), maps, [data.index.photos[j].category for j in examples],
                                               title="Bottom-feature activation before and after co-attention")
path = figures.save_figure(fig, "06_activation_maps", figures_dir)

# %% tags=["remove-cell"]
results_path = book.write_results(results_dir, "06_coattention", {
    "checkpoint": str(checkpoint),
    "channels": int(weights.shape[1]),
    "photos": int(weights.shape[0]),
    "trained": {"mean": float(weights.mean()), "std": float(weights.std()),
                "min": float(weights.min()), "max": float(weights.max())},
    "untrained_same_photos": {"mean": float(init_weights.mean()), "std": float(init_weights.std())},
    "most_category_dependent_channels": channels,
    "boosted_channels": boosted.to_dict(orient="index"),
})
print(f"wrote {results_path}")

# %% [markdown]
# ## Summary
#
# - Training moves the co-attention weights away from their almost-flat start: some channels
#   are damped for nearly every photo, others depend on the photo.
# - Part of that dependence is by category: the heatmap and the table show channels that a
#   category's photos (with their edgemaps) lift above the average.
# - The same weights rescale photo and edgemap features, which is how the block ties the
#   photo branch to the line-drawing domain.
