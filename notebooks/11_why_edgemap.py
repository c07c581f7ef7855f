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
# # The edgemap branch, taken apart
#
# Chapter 9 asked *where* the edgemap branch pays, setting by setting. On the categories the
# network was trained on, the earlier studies measured Semi3-Net below the same network
# without the branch (chapter 9 states by how much, and on which hosts). This chapter asks
# **why**, on one kind of host.
#
# Taking the branch away (`model.edge_branch=false`) removes several mechanisms at once:
#
# - the cross-entropy term on the edgemap branch's logits;
# - the alignment loss between photo and edgemap, and the contrastive loss between sketch and
#   edgemap;
# - co-attention, which recalibrates each photo's features with its edgemap's, in training and
#   when the gallery is embedded;
# - the **shared sketch+edgemap bottom**. Sketches and edgemaps pass through it in one call, so
#   its BatchNorm statistics are those of the mixed batch. At test time a query sketch is
#   normalised with statistics that are half edgemap.
#
# Chapter 5's ablations took out one part each (co-attention, the alignment loss, the
# contrastive loss), never the edgemap's cross-entropy term or the shared bottom's mixed
# statistics, and their seeds ran on two kinds of host. So the study cannot say where the cost
# lives: in a part never isolated, or in the parts' combination.
#
# **The plan** (`configs/why-edgemap.yaml`) keeps the main study's tuned setting (sketchy-mini,
# EfficientNet-Lite0, 128 px, 7 epochs, label smoothing 0.1) and changes one thing per row:
#
# - `no-edge-ce`: no cross-entropy on the edgemap branch;
# - `domain-bn`: the shared bottom keeps its convolutions but one set of BatchNorm statistics and
#   affine parameters per domain (`model.domain_bn`), a well-known fix for mixed-domain batches;
# - `no-coattention`: the edgemaps become a training-only auxiliary, and the gallery is embedded
#   from photos alone;
# - two re-scored rows (no training) embed the gallery from photo and edgemap
#   (`model.gallery_embedding=photo+edge`), for Semi3-Net and for `domain-bn`.
#
# **The rule, written into the plan before its first seed ran**: the book's one comparison rule
# on mAP@all, seed k against seed k, 5 seeds a row, every pair on one kind of host. A mechanism
# **costs** when taking it out is ahead of Semi3-Net by the rule. It carries the **whole** cost
# when that row is also level with the network without the branch, the cost **and more** when
# that row is even ahead of it (then the branch's other mechanisms pay once this one is out),
# and a **part** when that row stays behind it.

# %% tags=["parameters", "hide-input"]
results_dir = "results/book/cpu"
figures_dir = "figures"
study_dir = "results/why-edgemap"

# %% tags=["hide-input"]
from semi3lib.interactive import use_project_root

use_project_root()  # JupyterLab starts kernels in notebooks/; every path here is from the root

from IPython.display import HTML
from markdown_it import MarkdownIt

from semi3lib.book import figures
from semi3lib.book import runner as book
from semi3lib.study import hosts
from semi3lib.study import why_edgemap as why
from semi3lib.study.rule import verdict_word
from semi3lib.study.records import runs_by_row
from semi3lib.study.tables import runs_reader_table, study_table

figures.use_book_style()
runs = why.load_why(study_dir)
missing = why.missing_runs(study_dir)
if runs is None:
    print(f"No records in {study_dir}: run `semi3 study --plan {why.PLAN}`.")
else:
    print(runs_by_row(runs, width=22))
print(f"{len(missing)} runs of the plan have no record yet (`semi3 study --plan {why.PLAN}` runs them)"
      if missing else "every row and seed of the plan has its record")

# %% [markdown]
# ## The rows
#
# Mean ± standard deviation over the seeds that have run (a row with one seed shows its one
# value). The re-scored rows train nothing; their "train min" is that of the models they score.

# %%
#| label: tbl-why-edgemap
#| tbl-cap: The decomposition, sketchy-mini's seen categories; mean ± std over seeds.
(study_table(runs, groups=why.GROUPS, reference=why.REFERENCE if why.REFERENCE in set(runs["run"]) else None)
 if runs is not None else "No runs yet.")

# %% [markdown]
# ## Seed by seed
#
# Each dot is one seed's mAP@all minus Semi3-Net's with the same seed on the same kind of host,
# in one colour per seed down the rows. Right of the line, taking the mechanism out pays. The
# bar is the mean gap, and the rule's verdict against Semi3-Net is written at the right.

# %% tags=["hide-input"]
#| label: fig-why-edgemap
#| fig-cap: Each mechanism out, its mAP@all gap to Semi3-Net seed by seed, with the rule's verdict.
gaps = why.seed_gaps(runs) if runs is not None else None
if gaps is not None and len(gaps):
    words = {row: verdict_word(found.vs_semi3net, why.AGAINST_SEMI3NET)
             for row, found in why.part_verdicts(runs).items() if found.vs_semi3net is not None}
    fig = figures.why_edgemap.plot_seed_gaps(gaps, [why.WHOLE, *why.PARTS], words, why.LABELS)
    figures.save_figure(fig, "11_why_edgemap", figures_dir)
else:
    print("No row shares a seed with Semi3-Net yet.")

# %% [markdown]
# ## What the rule says
#
# Each row against Semi3-Net (does taking the mechanism out pay?) and against the network
# without the branch (does it pay as much as taking the whole branch out?). The gap is the row's
# mean minus the other's; the spread is the larger of the two seed standard deviations. A
# verdict on fewer than 5 seeds is provisional, and one seed gives none.

# %%
#| label: tbl-why-edgemap-verdicts
#| tbl-cap: Each row by the book's rule on mAP@all, against Semi3-Net and against the network without the branch.
verdicts = why.verdicts_table(runs) if runs is not None else None
verdicts if verdicts is not None and len(verdicts.values) else "No row to set against Semi3-Net yet."

# %% [markdown]
# The same in words (the README prints these sentences too):

# %% tags=["hide-input"]
findings = why.why_findings(runs, missing)
HTML(MarkdownIt().render(findings))  # HTML: the site shows Markdown outputs as text

# %% [markdown]
# Each run, its training minutes and the hardware it ran on. A verdict pairs seeds run on one
# kind of host only.

# %% tags=["hide-input"]
#| label: tbl-why-edgemap-runs
#| tbl-cap: Each run of the decomposition, its training minutes and hardware.
runs_reader_table(runs, groups=why.GROUPS) if runs is not None else "No runs yet."

# %% [markdown]
# A CPU of the same name with AVX-512 trains to other last digits. Capped to AVX2
# (`semi3 --isa avx2 study ...`: torch's, oneDNN's, MKL's and numpy's kernels) it should compute
# what the AVX2 host computed, and then its runs pair with that host's. The cap check
# (`configs/avx2-cap-check.yaml`) trains a recorded run again so capped; each record names the
# CPU's own instruction set (`cpu_isa`) and the caps (`isa_caps`):

# %% tags=["hide-input"]
cap_text = hosts.cap_check_text(hosts.cap_checks())
HTML(MarkdownIt().render(cap_text))

# %% [markdown]
# Records written before they kept the instruction set say only "AMD EPYC (instruction set not
# recorded)". The recognition check (`configs/host-recognition-160px.yaml`) trains such a run's
# first epoch again, with its config and its whole learning-rate schedule, on a host of a known
# kind, and stops. Training is deterministic on one kind of host, so a total loss equal to the
# record's, to the last digit, says the run computed what that kind computes: it ran as that
# kind, and the rule pairs it with that kind's runs. It checks the first epoch, not the ones after it.

# %% tags=["hide-input"]
recognition = hosts.recognition_text(hosts.recognitions())
HTML(MarkdownIt().render(recognition))

# %% [markdown]
# ## Carried to other settings
#
# If one switch carries the cost, does Semi3-Net with it beat the network without the branch, or
# chapter 9's two-branch network, where Semi3-Net itself does not? The switch (`no-edge-ce`,
# chosen on its first seed pairs here; "the variant" below: Semi3-Net with it) is carried to
# chapter 9's other settings as a row of their plans, added before its first seed ran: the
# unseen categories (seeds 3-6, scored on both galleries) and 160 px (seeds 0-2, paired with the
# recorded seeds of Semi3-Net and of the network without the branch that a recognition check
# found to have run as the same kind of host; see above). The rule is the same; a pair counts
# only on one kind of host.

# %%
#| label: tbl-why-edgemap-carried
#| tbl-cap: The carried switch by the rule, setting by setting, against the network without the branch and against the two-branch network.
carried = why.carried_verdicts()
why.carried_table(carried)

# %% tags=["hide-input"]
carried_text = why.carried_findings(carried, runs)
HTML(MarkdownIt().render(carried_text))

# %% tags=["remove-cell"]
book.write_results(results_dir, "11_why_edgemap", {
    "available": runs is not None, "findings": findings, "missing": missing, "carried": carried_text,
    "cap_check": cap_text, "recognition": recognition,
    "runs": [] if runs is None else runs.drop(columns=["file"]).to_dict(orient="records")})

# %% [markdown]
# ## Summary
#
# - Taking the edgemap branch away removes about six mechanisms at once. The plan takes them out
#   one at a time, 5 paired seeds a row on one kind of host, and judges each by the book's one
#   rule, written into the plan before the first seed ran.
# - The findings, the table and the figure are computed from the records in
#   `results/why-edgemap/` at each build. A verdict on fewer than 5 seeds says so.
# - The switch that carries the cost is carried to the unseen categories and to 160 px as a row
#   of chapter 9's plans; the section above says where it beats the network without the branch,
#   and the two-branch network, where Semi3-Net does not.
# - `semi3 study --plan configs/why-edgemap.yaml` (resumable) runs the missing seeds, about 20-25
#   minutes each on 2 CPU cores. `semi3 study --plan configs/why-edgemap.yaml --per-run` lists
#   each record's host; run them all on one kind of host (on a CPU with AVX-512,
#   `semi3 --isa avx2 study ...` computes as the AVX2 host did).
