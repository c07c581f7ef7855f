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
# # Find this photo
#
# Every chapter so far asked for a photo of the *category* of a sketch: any cup for a sketch
# of a cup. The paper closes with its future work: carry the cross-domain network over to
# **fine-grained** (instance-level) retrieval, where a sketch has one right answer, the photo
# it was drawn from, and the network must learn the correspondence of fine details (the
# handle's angle, the number of legs, where the object sits in the frame). It is also where
# the edgemap branch should matter most: the edgemap of *this* photo carries its exact outline,
# which a category label does not.
#
# **Data.** `sketchy-fg10` is a real extract of Sketchy: 10 categories, 100 photos each and
# every sketch drawn of them. A sketch names its own photo (`<photo id>-<k>.png`). The split is
# the dataset's own, over photos: 800 training photos with their sketches, and 200 test photos
# whose sketches are the queries. The queries rank the 200 test photos; the harder variant ranks
# all 1,000 photos, the training photos as distractors.
#
# **Metrics.** acc@K is the share of query sketches whose own photo is among the first K of
# the ranking (ties count against the model); the mean and median rank of the own photo
# beside them, and the category mAP@all of the same embeddings.
#
# **Networks** (`configs/fine-grained.yaml`, EfficientNet-Lite0 from ImageNet, 128 px, the same
# budget for each): the ImageNet features without any training (the floor); the two-branch
# network; Semi3-Net without the edgemap branch; and Semi3-Net, whose edgemap branch is given
# the edgemap of the sketch's own photo. Each trains with the standard fine-grained recipe: a
# triplet loss whose positive is the sketch's own photo and whose negatives include the other
# photos of its category (batches of four categories times four photos), beside the network's
# category loss.
#
# **The rule, written into the plan before its first seed ran**: the book's one comparison
# rule on acc@1 against the 200 test photos, seed k against seed k on one kind of host. The
# edgemap branch **pays** at instance level when Semi3-Net beats the same network without it,
# **costs** when that network beats Semi3-Net, and is **level** otherwise. The target
# for the best network is acc@1 of at least 0.45 and acc@10 of at least 0.90, with at most
# 30 minutes of training on 2 CPU cores.

# %% tags=["parameters", "hide-input"]
results_dir = "results/book/cpu"
figures_dir = "figures"
study_dir = "results/fine-grained"
example_row = "semi3net"  # whose seed-0 record shows its top-5 (the no-edgemap twin while semi3net has none)

# %% tags=["hide-input"]
from semi3lib.interactive import use_project_root

use_project_root()  # JupyterLab starts kernels in notebooks/; every path here is from the root

from IPython.display import HTML
from markdown_it import MarkdownIt
from PIL import Image

from semi3lib.book import figures
from semi3lib.book import runner as book
from semi3lib.paths import DatasetNotFoundError, find_dataset_root
from semi3lib.study import fine_grained as fg
from semi3lib.study.records import runs_by_row
from semi3lib.study.tables import reader_metrics_for, runs_reader_table, study_table

figures.use_book_style()
runs = fg.load_fine_grained(study_dir)
if runs is None:
    print(f"No fine-grained records in {study_dir}: run `semi3 study --plan {fg.PLAN}`.")
else:
    print(runs_by_row(runs, width=30))
    missing = fg.missing_runs(study_dir)
    print(f"missing: {', '.join(missing)} (`semi3 study --plan {fg.PLAN}` runs them)" if missing
          else "every row and seed of the plan has its record")

# %% [markdown]
# ## The networks
#
# Mean ± standard deviation over the seeds that have run (a row with one seed shows its one
# value). The rows against all 1,000 photos score the same trained models again; they train
# nothing, and their "train min" is that of the models they score.

# %%
#| label: tbl-fine-grained
#| tbl-cap: Find this photo, sketchy-fg10's 1,157 test sketches; mean ± std over seeds.
(study_table(runs, groups=fg.GROUPS, reference="semi3net" if "semi3net" in set(runs["run"]) else None,
             metrics=reader_metrics_for(runs)) if runs is not None else "No runs yet.")

# %% [markdown]
# ## Seed by seed
#
# Each dot is one seed, in one colour per seed across the rows, so a pair (seed k of two rows)
# can be followed; the dashed lines are the target.

# %% tags=["hide-input"]
#| label: fig-fine-grained-seeds
#| fig-cap: acc@1 and acc@10 of each network against the 200 test photos, seed by seed.
if runs is not None:
    fig = figures.fine_grained.plot_seed_scores(runs, fg.NETWORKS, fg.TARGETS, fg.LABELS)
    figures.save_figure(fig, "10_fine_grained_seeds", figures_dir)

# %% [markdown]
# ## What the rule says
#
# Each question, against the 200 test photos and against all photos, on acc@1; the gap is
# Semi3-Net's mean minus the other's and the spread the larger of the two seed standard
# deviations. A verdict on fewer than three seeds is provisional, and one seed gives none.

# %%
#| label: tbl-fine-grained-verdicts
#| tbl-cap: The plan's questions by the book's rule on acc@1.
fg.verdicts_table(runs) if runs is not None else "No runs yet."

# %% [markdown]
# The same in words (the README prints these sentences too):

# %% tags=["hide-input"]
findings = fg.fine_grained_findings(runs)
HTML(MarkdownIt().render(findings))  # HTML: the site shows Markdown outputs as text

# %% [markdown]
# ## How far down the own photo sits
#
# acc@K for every K: the share of test sketches whose own photo is among the first K photos,
# all seeds of a row pooled. acc@1 and acc@10 (the grey lines) are two points of these curves;
# the rest shows whether a network that misses the photo at 1 still puts it near the top.

# %% tags=["hide-input"]
#| label: fig-fine-grained-ranks
#| fig-cap: acc@K of each network against the 200 test photos, every K, seeds pooled; dotted, a random ranking.
curves = fg.rank_curves(study_dir)
if len(curves):
    fig = figures.fine_grained.plot_rank_curves(curves, fg.NETWORKS, fg.LABELS)
    figures.save_figure(fig, "10_fine_grained_ranks", figures_dir)
else:
    print("No record kept its ranks yet.")

# %% [markdown]
# ## What the network returns
#
# The first test sketch of each category with the five photos the network ranks first (seed 0).
# Green frames the sketch's own photo, grey another photo of its category, red a photo of
# another category. A network that has learned the category but not the instance fills the
# row with grey.

# %% tags=["hide-input"]
#| label: fig-fine-grained-grid
#| fig-cap: Test sketches and their top-5 photos (seed 0), the own photo framed green.
examples = fg.record_examples(study_dir, example_row) or fg.record_examples(study_dir, "no-edgemap-branch")
try:
    root = find_dataset_root("sketchy-fg10")
except DatasetNotFoundError as err:
    root = None
    print(f"The grid needs the dataset's images: {err}")
if examples and root is not None:
    fig = figures.fine_grained.instance_grid(examples, lambda path: Image.open(root / path).convert("RGB"))
    figures.save_figure(fig, "10_fine_grained_grid", figures_dir)

# %% [markdown]
# Each run, its training minutes and the hardware it ran on: a verdict compares seeds run on
# one kind of host only.

# %% tags=["hide-input"]
#| label: tbl-fine-grained-runs
#| tbl-cap: Each run of the fine-grained study, its training minutes and hardware.
runs_reader_table(runs, groups=fg.GROUPS) if runs is not None else "No runs yet."

# %% tags=["remove-cell"]
best = fg.best_row(runs) if runs is not None else None
book.write_results(results_dir, "10_fine_grained", {
    "available": runs is not None, "findings": findings,
    "best": None if best is None else {"row": best.row, "seeds": best.seeds,
                                       **{m: mean for m, (mean, _) in best.means.items()}},
    "runs": [] if runs is None else runs.drop(columns=["file"]).to_dict(orient="records")})

# %% [markdown]
# ## Summary
#
# - Fine-grained retrieval asks for the one photo a sketch was drawn from; the book tests it
#   on real instance pairs (`sketchy-fg10`) with the standard recipe, the same budget for each
#   network, and the book's one rule on acc@1, written into the plan before the seeds ran.
# - The findings above, the table and the figures are computed from the records in
#   `results/fine-grained/` at each build, including whether the target is met and what the
#   rule says about the edgemap branch; a row with fewer than three seeds says so.
# - `semi3 study --plan configs/fine-grained.yaml` (resumable) runs the missing seeds;
#   `semi3 eval --checkpoint runs/fine-grained/<row>-seed0/last.pt --json` scores a trained
#   model again, with acc@K, and `--refresh-scores` adds the per-query ranks to older records.
# - To draw and search with a fine-grained model: `semi3 export --checkpoint
#   runs/fine-grained/semi3net-seed0/last.pt --out _build/search-export-fine-grained`, then
#   `make book`; the [Interactive page](../book/interactive.md) offers it beside the category
#   model, and `SketchSearch.from_checkpoints(...)` does the same in JupyterLab.
