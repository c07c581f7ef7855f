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
# # Edgemaps: from photos to sketch-like drawings
#
# Semi3-Net's third branch sees the **edgemap** of each photo: a line drawing computed from
# the photo, which sits between the two domains. It is pixel-aligned with the photo, and it is
# made of strokes on a white background like a sketch, so the edgemap branch can share its
# bottom layers with the sketch branch. The paper does not say which edge detector it used;
# this project offers three classical ones that need no trained weights (an *assumed* design
# choice, `data.edge_method`): **Canny** with automatic thresholds, **XDoG** (extended
# difference of Gaussians, Winnemoeller et al. 2012) and **Sobel** gradient magnitude.
#
# This chapter shows them beside the photos and the human sketches of the same photos,
# measures how sketch-like each one is to a network that has never seen a sketch, and times
# them.

# %% tags=["parameters", "hide-input"]
config = "configs/sketchy-mini-cpu.yaml"
overrides = []
methods = ["canny", "xdog", "sobel"]
example_photos = 5
speed_photos = 50
retrieval_overrides = ["data.max_categories=30", "data.image_size=96"]
device = "auto"
seed = 0
results_dir = "results/book/cpu"
figures_dir = "figures"

# %% tags=["hide-input"]
from semi3lib.interactive import use_project_root

use_project_root()  # JupyterLab starts kernels in notebooks/; every path here is from the root

import numpy as np

from semi3lib.book import runner as book

from semi3lib.book import figures
from semi3lib.config import load_config
from semi3lib.data.images import load_image
from semi3lib.data.summary import sketch_photo_examples
from semi3lib.data.edgemaps import compute_edgemap, edgemap_speed
from semi3lib.engine.evaluate import edge_method_retrieval
from semi3lib.data.experiment import load_experiment_data
from semi3lib.study.tables import reader_table
from semi3lib.engine.device import select_device

figures.use_book_style()
cfg = load_config(config, overrides)
data = load_experiment_data(cfg.data)
index = data.index
print(f"edge methods: {', '.join(methods)}; the training config uses {cfg.data.edge_method!r}")

# %% [markdown]
# ## Photos, edgemaps and sketches side by side
#
# Each row is one photo, its edgemap by each method, and a human sketch drawn from that very
# photo. All three methods return the same polarity as the sketches: dark strokes on white.
# Canny gives thin, binary contours, including texture edges a person would not draw; XDoG
# gives thicker, ink-like lines and fills dark regions; Sobel keeps graded edge strength.

# %% tags=["hide-input"]
step = max(1, len(index.categories) // example_photos)
pairs = sketch_photo_examples(index, index.categories[::step][:example_photos], per_category=1, seed=seed)
rows = []
for sketch, photo in pairs:
    rgb = np.asarray(load_image(photo.path, "RGB"))
    rows.append([rgb, *(compute_edgemap(rgb, m) for m in methods), load_image(sketch.path, "L")])
fig = figures.image_table(rows, col_labels=["photo", *methods, "human sketch"],
                          row_labels=[p.category for _, p in pairs],
                          title="Edgemaps by method beside a human sketch of the same photo")
path = figures.save_figure(fig, "02_edgemaps_by_method", figures_dir)

# %% [markdown]
# ## Which edgemap looks most like a sketch? A measured comparison
#
# A cheap, training-free probe: embed the query sketches and the gallery with the
# ImageNet-pretrained backbone (global-average-pooled features, the book's no-training
# baseline) and rank the gallery for each sketch, once with the gallery shown as photos and
# once as the edgemaps of each method. The better a rendering's retrieval, the closer it is to
# the sketches *in the eyes of the pretrained network* that Semi3-Net starts from. The probe
# runs on a subset of categories at a small image size to stay cheap (see the parameters), so
# the absolute numbers are above those of the full gallery; compare the rows with each other.

# %%
cfg_r = load_config(config, overrides + retrieval_overrides)
data_r = load_experiment_data(cfg_r.data)
counts = data_r.split.counts()
print(f"{counts['query']} query sketches against {counts['gallery']} gallery items "
      f"({len(data_r.index.categories)} categories, {cfg_r.data.image_size} px, {cfg_r.model.backbone})")
comparison = edge_method_retrieval(data_r, cfg_r.data, methods, cfg_r.model.backbone,
                                   cfg_r.model.weights_path, select_device(device))
chance = 1 / len(data_r.index.categories)
reader_table(comparison, best={c: "max" for c in comparison.columns if c.startswith(("mAP", "P@"))})

# %% tags=["hide-input"]
fig = figures.edgemaps.plot_metric_bars({m: comparison[m].to_dict() for m in ("mAP@all", "P@10")},
                                        title=f"Sketch queries vs gallery renderings, ImageNet features (chance mAP ~ {chance:.3f})",
                                        ylabel="score")
path = figures.save_figure(fig, "02_edge_retrieval", figures_dir)

# %% [markdown]
# ## Extraction speed
#
# Edgemaps are computed once per photo and cached on disk (`cache/edges/`, keyed by method
# and parameters), so their cost matters only for the first epoch and for indexing a new
# gallery. Timed here on one OpenCV thread, decoding excluded:

# %% tags=["hide-input"]
speed_paths = [p.path for p in index.photos[:: max(1, len(index.photos) // speed_photos)][:speed_photos]]
speed = edgemap_speed(speed_paths, methods)
fig = figures.edgemaps.plot_speed(speed, title=f"Edgemap extraction speed ({len(speed_paths)} photos)")
path = figures.save_figure(fig, "02_edge_speed", figures_dir)

# %% tags=["remove-cell"]
results_path = book.write_results(results_dir, "02_edgemaps", {
    "methods": methods,
    "retrieval": comparison.to_dict(orient="index"),
    "retrieval_setting": {"categories": len(data_r.index.categories), "image_size": cfg_r.data.image_size,
                          "queries": counts["query"], "gallery": counts["gallery"], "backbone": cfg_r.model.backbone},
    "chance_mAP": chance,
    "seconds_per_photo": speed,
})
print(f"wrote {results_path}")

# %% [markdown]
# ## Summary
#
# - Three weight-free edge detectors turn photos into sketch-polarity line drawings; the
#   training config picks one with `data.edge_method` (Canny by default).
# - Without any training, ImageNet features already rank the gallery better from a sketch when
#   the gallery is shown as edgemaps than as photos if the edgemap is closer to the sketch
#   domain; the table above says by how much for each method on this data.
# - The extraction-speed plot gives each method's seconds per 256 x 256 photo on this
#   machine, to set beside a network's forward pass; an edgemap is cached after its first use.
