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
# # The joint embedding space
#
# Retrieval works if a sketch lands near the photos of its category. This chapter projects the
# embeddings of query sketches and gallery photos to two dimensions with UMAP, before training
# (the ImageNet backbone's features, the book's baseline) and after (the trained Semi3-Net),
# coloured by category and by domain. Before training the two domains form separate clouds;
# a joint embedding should mix the domains and separate the categories.
#
# UMAP distorts distances, so the picture is backed by numbers measured in the embedding space
# itself: among each point's nearest neighbours, the share of its own category and the share of
# the other domain.

# %% tags=["parameters", "hide-input"]
checkpoint = "runs/sketchy-mini-cpu/last.pt"
device = "auto"
umap_categories = 10
umap_neighbors = 15
neighbours_k = 10
seed = 0
results_dir = "results/book/cpu"
figures_dir = "figures"

# %% tags=["hide-input"]
from semi3lib.interactive import use_project_root

use_project_root()  # JupyterLab starts kernels in notebooks/; every path here is from the root

import pandas as pd

from semi3lib.book import runner as book

from semi3lib.book import figures
from semi3lib.book.analysis import joint_points, neighbourhood_stats, select_categories, umap_2d
from semi3lib.engine.evaluate import embed_split, embed_split_imagenet, load_trained
from semi3lib.data.experiment import restrict_split
from semi3lib.study.tables import reader_table
from semi3lib.engine.device import select_device

figures.use_book_style()
dev = select_device(device)
model, cfg, ckpt, data = load_trained(book.require_checkpoint(checkpoint), dev)
categories = select_categories(range(data.num_classes), umap_categories, seed=seed)
subset = restrict_split(data, categories)
names = [data.index.categories[c] for c in categories]
print(f"{len(categories)} categories: {', '.join(names)}")
print(f"{len(subset.split.query)} query sketches and {len(subset.split.gallery)} gallery photos")

# %% tags=["hide-input"]
embeddings = {
    "before: ImageNet features": embed_split_imagenet(subset, cfg.data, cfg.model.backbone,
                                                        cfg.model.weights_path, dev),
    "after: trained Semi3-Net": embed_split(model, subset, cfg.data, "query", dev),
}
points = {name: joint_points(emb, categories) for name, emb in embeddings.items()}

# %% [markdown]
# ## UMAP projections
#
# Top row: coloured by category, sketches as crosses and photos as dots. Bottom row: the same
# points coloured by domain.

# %% tags=["hide-input"]
panels = {name: {**p, "xy": umap_2d(p["x"], seed=seed, n_neighbors=umap_neighbors)} for name, p in points.items()}
fig = figures.embeddings.plot_umap_panels(panels, names, title="Sketches and photos in the embedding space, before and after training")
path = figures.save_figure(fig, "07_umap", figures_dir)

# %% [markdown]
# ## Neighbourhoods, measured in the embedding space
#
# For every point, its `neighbours_k` nearest neighbours by cosine similarity: `same_category`
# is the share of them in its category, `other_domain` the share from the other domain (sketch
# for a photo, photo for a sketch; with 10-odd sketches per 25 photos, well-mixed domains would
# give roughly 0.3-0.6), and the last column the share of a sketch's neighbours that are photos
# of its category, what retrieval needs.

# %%
stats = pd.DataFrame({name: neighbourhood_stats(p["x"], p["category"], p["is_sketch"], k=neighbours_k)
                      for name, p in points.items()}).T
reader_table(stats)

# %% tags=["remove-cell"]
results_path = book.write_results(results_dir, "07_embeddings", {
    "checkpoint": str(checkpoint),
    "categories": names,
    "points": {name: int(len(p["x"])) for name, p in points.items()},
    "neighbourhoods": stats.to_dict(orient="index"),
})
print(f"wrote {results_path}")

# %% [markdown]
# ## Summary
#
# - Before training, ImageNet features keep sketches and photos apart: a sketch's nearest
#   neighbours are mostly other sketches.
# - After training, the domains mix and the categories separate, which is what the retrieval
#   metrics of the evaluation chapter measure.
