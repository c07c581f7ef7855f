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
# # Performance: how fast the pieces run
#
# The book's numbers come from four pieces of code that must be fast enough to run on two
# CPU cores: the evaluation (mAP over every query and the whole gallery), the search that
# answers one sketch, the training step, and the edgemaps of the photos. Each has a
# benchmark in `benchmarks/`, runnable with one command, that writes its result with a
# description of the machine to `results/benchmarks/<name>.json` (how to rerun them:
# `benchmarks/README.md`). This page plots those results and checks them against the
# project's targets: evaluation at least 20x faster than a per-query scikit-learn loop in
# under 2 GB, top-10 search under 50 ms over 10^6 embeddings, a data pipeline that does not
# hold training back, and an edgemap cache at least 10x faster than computing.
#
# The page reads committed results and measures nothing itself, so it runs in seconds; the
# numbers are those of the machine named in each file, often shared with other jobs (its
# load average is recorded beside them).

# %% tags=["parameters", "hide-input"]
benchmarks_dir = "results/benchmarks"
results_dir = "results/book/cpu"
figures_dir = "figures"

# %% tags=["hide-input"]
from semi3lib.interactive import use_project_root

use_project_root()  # JupyterLab starts kernels in notebooks/; every path here is from the root

from semi3lib.book import runner as book

from IPython.display import HTML, display
from markdown_it import MarkdownIt

from semi3lib.book import figures
from semi3lib.study.tables import reader_table
from semi3lib.study.benchmarks import (edges_table, eval_findings, fast_path_ab_table, load_benchmarks,
                                        machines_table, missing_benchmarks, search_findings, search_table,
                                        targets_table, train_flops_table, train_profile_findings,
                                        train_profile_table, train_table)

figures.use_book_style()
results = load_benchmarks(benchmarks_dir)
print(f"benchmarks found in {benchmarks_dir}: {', '.join(results) or 'none'}")
for name, command in missing_benchmarks(results).items():
    print(f"missing {name}: run `{command}`")
reader_table(machines_table(results))

# %% [markdown]
# ## Evaluation: chunked mAP against a per-query loop
#
# At Sketchy's scale (6,250 query sketches, 73,002 gallery photos, 512-d embeddings) the
# project's `retrieval_metrics` scores blocks of queries with one matrix product, sorts each
# block of scores once and finds every positive's rank by binary search. The reference is
# what a straightforward evaluation does: for each query, scikit-learn's
# `average_precision_score` over the whole gallery (timed on 250 queries and scaled
# linearly: every query costs one sort of the gallery). Both must agree to 1e-6.

# %% tags=["hide-input"]
if "eval" in results:
    e = results["eval"]
    fig = figures.benchmarks.plot_eval_benchmark(e)
    figures.save_figure(fig, "08_eval_benchmark", figures_dir)
    display(HTML(MarkdownIt().render(eval_findings(results))))  # the site shows Markdown outputs as text

# %% [markdown]
# The ranking itself is far cheaper than scikit-learn's; the score matrix, which the
# reference pays too, is the floor under the ratio (`benchmarks/README.md` has the
# breakdown). Memory stays small because only one block of queries' scores against the whole
# gallery exists at a time.
#
# ## Search: one sketch against a large gallery
#
# A deployed search answers one sketch at a time: embed it, then find the 10 nearest of N
# gallery embeddings. Exact search reads every gallery vector, so its time grows with N and
# is bounded by memory bandwidth; FAISS's IVF index scans only the clusters nearest the
# query, and HNSW walks a neighbour graph. The approximate indexes are scored by their
# recall@10 against the exact answer.

# %% tags=["hide-input"]
if "search" in results:
    fig = figures.benchmarks.plot_search_benchmark(results["search"])
    figures.save_figure(fig, "08_search_benchmark", figures_dir)
if "search" in results:
    display(HTML(MarkdownIt().render(search_findings(results))))
reader_table(search_table(results))

# %% [markdown]
#
# ## Training: triplets per second
#
# One step is a batch of (sketch, photo, edgemap) triplets (the book trains with 32) through
# the three branches, the hybrid loss, backward and an AdamW update. It is timed with a batch
# of random tensors held in memory (the model's own speed), with batches from the real
# `TrainTriplets` loader on sketchy-mini (worker processes, edgemaps cached), and the loader
# is also timed alone: if it delivered fewer triplets per second than the model consumes, the
# data pipeline would be the bottleneck.

# %% tags=["hide-input"]
if "train_step" in results:
    fig = figures.benchmarks.plot_train_benchmark(results["train_step"])
    figures.save_figure(fig, "08_train_benchmark", figures_dir)
    print(f"GPU: {results['train_step']['gpu'] or results['train_step'].get('gpu_reason')}")
    runs = results["train_step"]["runs"]
    loader = [r["loader_only"]["triplets_per_sec"] for r in runs if r.get("loader_only")]
    model = [r["synthetic"]["triplets_per_sec"] for r in runs if r.get("synthetic")]
    print(f"the loader alone: {min(loader):,.0f}-{max(loader):,.0f} triplets/s; "
          f"the model: {min(model):,.1f}-{max(model):,.1f} triplets/s")
reader_table(train_table(results))

# %% [markdown]
# On two CPU cores the model is the bottleneck by a wide margin (the line above the table):
# with the real loader a step takes about as long as with synthetic input, within the noise
# of a shared machine, because the worker processes prepare the next batch while the step
# runs. On a GPU the balance changes, which is what the benchmark's `--device cuda` modes
# (bf16 autocast, channels-last, `torch.compile`) measure; no GPU was available for these
# results.
#
# ### Against the machine's limit
#
# How far is a step from what the hardware can do? The benchmark counts the floating-point
# operations of one step once (torch's `FlopCounterMode`: the convolutions and matrix
# products of forward and backward) and divides them by the step's time, beside the rate a
# large fp32 matrix product reaches on the same machine in the same run: the dense-GEMM
# peak. A step can stay far below that peak: most of EfficientNet's convolutions are
# depthwise (little arithmetic per byte moved) and much of its time goes to elementwise work
# (batch norm, activations, the optimiser) that does no counted FLOPs. The fast paths the
# training loop can switch on, each off by default, are timed against today's step (fp32,
# channels-last): bf16 autocast on the CPU (`train.cpu_precision`; emulated, and slow, on a
# CPU without native bf16), `torch.compile` (`train.compile`; its compile time is spread over
# the book's run), the fused AdamW kernel (`train.fused_optimizer`) and the number of torch
# threads. Results measured before the FLOPs were counted show no such panel.
#
# One setting is on by default because it changes where tensors live, not what is computed
# (`train.keep_freed_memory`): glibc's allocator otherwise hands each large activation back to
# the kernel when it is freed, and the next step maps it in again page by page, each page
# zeroed first. The table's page faults a step show the cost; `+keep_freed_memory` is the same
# step with freed memory kept for the next one (in a process of its own: the setting cannot be
# undone), and its peak resident memory what keeping it costs.

# %% tags=["hide-input"]
flops = train_flops_table(results)
if not flops.empty:
    fig = figures.benchmarks.plot_train_flops(results["train_step"])
    figures.save_figure(fig, "08_train_flops", figures_dir)
    display(reader_table(flops))
else:
    print("the committed training benchmark predates the FLOP count: rerun `python benchmarks/bench_train_step.py`")

# %% [markdown]
# One run's rows can disagree with the next run's by more than the effects: the machine is
# shared and its speed drifts over minutes. So the fast path (the switches above that help,
# together) is also timed against the baseline in interleaved rounds, each a fresh process of
# the baseline and then one of the fast path, both seeing the same background load; the
# target's verdict is the median of the rounds' speed-ups (a round may go the other way), and
# the page faults show where the allocator's share comes from. On the CPU the fast path is
# freed memory kept, the training's default: it computes the baseline's losses and gradients
# bit for bit, so its seeds are the baseline's seeds and its accuracy theirs. Chapter 4's
# record, trained with it, and the host check's, the same config and seed trained before it
# existed, agree in every epoch's losses and the final scores to the last digit
# (`tests/test_allocator.py`; `semi3 study --plan configs/host-check.yaml --host-effect`).
# Fused AdamW is left out of it: its updates are rounded differently from the default
# kernel's (`tests/test_fastpath.py`), so a run with it is another run, which would need seeds
# of its own.

# %% tags=["hide-input"]
rounds = fast_path_ab_table(results)
if not rounds.empty:
    rounds["round"] = [f"round {n}" for n in rounds["round"]]
    display(reader_table(rounds.set_index("round"), digits={c: 0 for c in rounds if "RSS" in c},
                         integers=[c for c in rounds if "faults" in c]))
else:
    print("no interleaved rounds in the committed training benchmark: rerun `python benchmarks/bench_train_step.py`")

# %% [markdown]
# ### Where a step's time goes
#
# Why so far below the peak? `benchmarks/bench_train_profile.py` runs the same step (the
# CPU fast path) under `torch.profiler` on one thread, so that no operator's time includes
# waiting for a second thread on a shared machine, and sums each operator's own CPU time
# into the kinds of work below. Convolutions are split by their weights' shape: depthwise
# (one input channel per output channel, a 3x3 or 5x5 kernel), pointwise (1x1) and dense.
# The heaviest depthwise backward is then timed alone, its two gradients apart.

# %% tags=["hide-input"]
profile = train_profile_table(results)
if not profile.empty:
    fig = figures.benchmarks.plot_train_profile(results["train_profile"])
    figures.save_figure(fig, "08_train_profile", figures_dir)
    display(HTML(MarkdownIt().render(train_profile_findings(results))))  # the site shows Markdown outputs as text
else:
    print("no profile of the training step: run `python benchmarks/bench_train_profile.py`")

# %% [markdown]
# ## Edgemaps: first pass and cached pass
#
# Training reads the edgemap of every photo it draws, every epoch. Computing one means
# decoding the JPEG and running the edge detector; the cache stores the result on disk so
# later epochs only read it back. Binary maps (Canny, and the occasional all-or-nothing XDoG
# map) are stored as uncompressed 1-bit PNG, grey maps (XDoG, Sobel) as raw `uint8` arrays:
# decoding a compressed grey PNG cost a quarter of computing the map from the photo, which
# held the cached pass well under its target.

# %% tags=["hide-input"]
if "edges" in results:
    fig = figures.benchmarks.plot_edges_benchmark(results["edges"])
    figures.save_figure(fig, "08_edges_benchmark", figures_dir)
reader_table(edges_table(results))

# %% [markdown]
# ## Targets
#
# Each target of the performance issue, the value measured and whether it is met (`None`:
# not measured on this machine).

# %% tags=["hide-input"]
targets = targets_table(results)
results_path = book.write_results(results_dir, "08_benchmarks", {
    "benchmarks_dir": benchmarks_dir,
    "benchmarks": sorted(results),
    "targets": targets.to_dict(orient="records"),
})
print(f"wrote {results_path}")
reader_table(targets)

# %% [markdown]
# ## Summary
#
# - Evaluation at Sketchy scale: blocked scoring against a per-query scikit-learn loop; both
#   pay for the same score matrix, which bounds the speed-up (the sentence under its figure
#   gives the numbers and the target).
# - Search over a million embeddings: exact search is bound by memory bandwidth; an index
#   answers from a fraction of the gallery (the sentence above the search table says which
#   backends are under the line, and at what recall).
# - Training on two CPU cores: the profile says where a step's time goes; the GPU comparison
#   is ready to run and runs only where a GPU is lent.
# - Each target, its measured value and whether it is met: the targets table, computed from
#   `results/benchmarks/` at each build.
