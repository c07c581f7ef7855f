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
# # The data: Sketchy and its splits
#
# Category-level sketch-based image retrieval asks: given a hand-drawn sketch, rank a gallery
# of photos so that photos of the sketch's category come first. This chapter looks at the data
# every later chapter uses: **sketchy-mini**, a real extract of the Sketchy database
# (Sangkloy et al. 2016) with all 125 categories, 25 photos per category and the sketches
# drawn from some of them. We count what is there, show how the split into query and
# training sketches is made, put sketches beside the photos they were drawn from, and measure
# how Sketchy's two sketch renderings ("variants") differ.
#
# The dataset is read in place (from `$SEMI3_DATA`, `./data` or `../shared/data`); nothing is
# copied into the project.

# %% tags=["parameters", "hide-input"]
config = "configs/sketchy-mini-cpu.yaml"
overrides = []
example_categories = 6
variant_examples = 6
extent_sample = None
seed = 0
results_dir = "results/book/cpu"
figures_dir = "figures"

# %% tags=["hide-input"]
from semi3lib.interactive import use_project_root

use_project_root()  # JupyterLab starts kernels in notebooks/; every path here is from the root

from semi3lib.book import runner as book

from semi3lib.book import figures
from semi3lib.config import load_config
from semi3lib.data import summary
from semi3lib.data.images import load_image
from semi3lib.data.layouts import read_dataset
from semi3lib.data.experiment import load_experiment_data
from semi3lib.study.tables import reader_table

figures.use_book_style()
cfg = load_config(config, overrides)
data = load_experiment_data(cfg.data)
index, split = data.index, data.split
print(f"dataset {index.name!r} read from {index.root}")

# %% [markdown]
# ## What is in the folder
#
# Photos and sketches are indexed from the directory listing (no decoding), in a fixed sorted
# order that the split files refer to by position. Sketchy stores each sketch in several
# renderings; sketchy-mini keeps two of them (compared at the end of this chapter).

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
print(f"categories: {len(index.categories)}")
print(f"photos:     {len(index.photos)}")
for variant, n in index.sketch_counts().items():
    print(f"sketches {summary.variant_label(variant) if variant != 'total' else 'total'}: {n}")

# %% [markdown]
# ## The split
#
# The category-level protocol that SBIR papers share: a fixed number of **query** sketches
# per category (50 on Sketchy, 10 on TU-Berlin Extension and on sketchy-mini), drawn with a
# seed from the whole-canvas variant; every other sketch **trains**. The **gallery** is every
# photo, and every photo is also a training photo: the task is to generalise to new
# *sketches*, not to new photos. A query drawing's rendering in the other variant is left
# out entirely, so no query drawing is ever seen in training.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
print(f"protocol: {split.protocol}, seed: {split.seed}, queries per category: {split.queries_per_category}")
for name, n in split.counts().items():
    print(f"{name:>18}: {n}")

# %% [markdown]
# Per category, the counts are the same everywhere in sketchy-mini, which the summary below
# shows (the full table has one row per category and is written to the results file).

# %% tags=["hide-input"]
table = summary.category_table(index, split)
reader_table(table.describe().loc[["mean", "min", "max"]], digits=1)

# %% tags=["hide-input"]
reader_table(table.head(8))

# %% [markdown]
# ## Sketches beside their photos
#
# Every whole-canvas sketch names the photo it was drawn from (`<photo id>-<k>.png`). The
# drawings are quick, abstract and often cover only the object's outline, which is why
# matching a sketch to a photo is a cross-domain problem. Only 578 of the 3,125 photos have
# a sketch of their own; the others matter only through their category.

# %% tags=["hide-input"]
categories = index.categories[:: max(1, len(index.categories) // example_categories)][:example_categories]
pairs = summary.sketch_photo_examples(index, categories, per_category=2, seed=seed)
rows = [[load_image(p.path, "RGB"), load_image(s.path, "L")] for s, p in pairs]
rows = [rows[i] + rows[i + 1] for i in range(0, len(rows) - 1, 2)]
fig = figures.image_table(rows, col_labels=["photo", "its sketch", "photo", "its sketch"],
                          row_labels=[p.category for _, p in pairs[::2]],
                          title="Sketches beside the photos they were drawn from")
path = figures.save_figure(fig, "01_sketch_photo_pairs", figures_dir)

# %% [markdown]
# ## The two sketch variants
#
# Sketchy renders each drawing in several ways; sketchy-mini keeps two:
# `tx_000000000000` scales the whole drawing canvas to 256 x 256 (the variant queries are
# drawn from), and `tx_000100000000` crops to the strokes' bounding box and scales its
# largest side to 200 pixels. Only 196 drawings exist in both renderings here; some of them,
# one per category:

# %% tags=["hide-input"]
full_index = read_dataset(cfg.data.dataset, root=cfg.data.root)  # all categories: few drawings have both
vpairs = summary.variant_pairs(full_index, variant_examples, seed=seed)
fig = figures.image_table([[load_image(a.path, "L") for a, _ in vpairs], [load_image(b.path, "L") for _, b in vpairs]],
                          col_labels=[a.category for a, _ in vpairs],
                          row_labels=[summary.VARIANT_NAMES.get(v, v) for v in full_index.sketch_variants[:2]],
                          title="One drawing, two renderings")
path = figures.save_figure(fig, "01_sketch_variants", figures_dir)

# %% [markdown]
# Measured over the sketches: the share of the canvas inside the strokes' bounding box, and
# the share of dark ("ink") pixels. The bounding-box rendering normalises the size of a
# drawing, so its extent varies far less than in the whole-canvas rendering, where drawings
# range from small doodles to canvas-filling ones. Training uses both renderings (more
# drawings, and two scales of the same strokes); queries use only the whole-canvas one, as on
# Sketchy.

# %% tags=["hide-input"]
extent = summary.variant_extent_table(index, max_per_variant=extent_sample, seed=seed)
fig = figures.data.plot_histogram_panels(extent, "variant", {"bbox_area": "bounding-box area / canvas area",
                                                             "ink": "ink pixels / canvas pixels"},
                                         "How the two sketch renderings use the canvas")
path = figures.save_figure(fig, "01_variant_extent", figures_dir)
by_variant = extent.groupby("variant")
reader_table(by_variant.mean(), by_variant.std())

# %% tags=["remove-cell"]
results_path = book.write_results(results_dir, "01_data", {
    "dataset": index.name,
    "categories": len(index.categories),
    "photos": len(index.photos),
    "sketches": index.sketch_counts(),
    "split": split.counts(),
    "per_category": table.to_dict(orient="index"),
    "extent_mean": extent.groupby("variant")[["bbox_area", "ink"]].mean().to_dict(orient="index"),
})
print(f"wrote {results_path}")

# %% [markdown]
# ## Summary
#
# - sketchy-mini has 125 categories, 25 photos each, and 4,375 sketches in two renderings of
#   the same drawings; the category-level split takes 10 whole-canvas query sketches per
#   category (1,250) and trains on the rest, with every photo in the gallery.
# - Sketches are sparse outlines of their photos; the bounding-box rendering makes the same
#   strokes larger on the canvas.
# - The next chapter turns photos into edgemaps, the third domain of Semi3-Net, which sits
#   between the two.
