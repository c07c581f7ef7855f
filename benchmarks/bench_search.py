"""Search-latency benchmark: top-10 for one sketch embedding over 10^4, 10^5, 10^6 photos.

    python benchmarks/bench_search.py                 # full run (writes results/benchmarks/search.json)
    python benchmarks/bench_search.py --sizes 10000 --queries 50 --no-extra-dim   # quick run
    python benchmarks/bench_search.py --with-forward  # also time the sketch's forward pass

Backends (semi3lib.retrieval.index): "exact" (numpy matrix-vector product + argpartition),
"faiss-flat" (FAISS exhaustive, exact), "faiss-ivf" and "faiss-hnsw" (approximate; their
recall@10 is measured against the exact top-10 of the same queries). Latency is per single
query (one sketch, batch size 1), building the index excluded; median and p95 over
``--queries`` queries after a warm-up.

Embeddings are synthetic, seeded and L2-normalised, in the project's default embed_dim (256;
512 at the largest size as well, exact and IVF). By default they are *clustered* (1,000
class centres plus noise, within-class cosine ~0.5), which is how trained embeddings look;
uniformly random points on the sphere (``--distribution uniform``) have no neighbourhood
structure and are a worst case for any approximate index. Queries come from the same
clusters as the gallery (a sketch of a category present in it).

HNSW (M=16, efConstruction=40) takes the longest to build (``build_seconds``; ~1-2 min at
10^6 on 2 cores); ``--hnsw-max-size`` skips it above a gallery size for quicker runs.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_result  # noqa: E402


def make_embeddings(n: int, dim: int, centres: np.ndarray | None, rng: np.random.Generator,
                    block: int = 100_000) -> np.ndarray:
    """(n, dim) float32 unit vectors: centre + isotropic noise of the same norm, or uniform
    on the sphere when ``centres`` is None; generated in blocks to bound temporary memory."""
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, block):
        x = rng.standard_normal((min(block, n - start), dim), dtype=np.float32)
        if centres is not None:
            x /= np.sqrt(dim)
            x += centres[rng.integers(0, len(centres), len(x))]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start:start + len(x)] = x
    return out


def latency_ms(fn, queries: np.ndarray, warmup: int = 3) -> tuple[dict, list]:
    """Time ``fn(q)`` for each query (1, D); returns stats (ms) and the results."""
    for q in queries[:warmup]:
        fn(q)
    times, results = [], []
    for q in queries:
        t0 = time.perf_counter()
        results.append(fn(q))
        times.append((time.perf_counter() - t0) * 1000)
    t = np.asarray(times)
    stats = {"median_ms": round(float(np.median(t)), 3),
             "p95_ms": round(float(np.percentile(t, 95)), 3),
             "mean_ms": round(float(t.mean()), 3), "min_ms": round(float(t.min()), 3)}
    return stats, results


def bench_size(n: int, dim: int, backends: list[str], args, rng) -> dict:
    from semi3lib.retrieval.index import build_faiss_index, search_arrays

    centres = None
    if args.distribution == "clustered":
        centres = make_embeddings(args.clusters, dim, None, rng)
    gallery = make_embeddings(n, dim, centres, rng)
    queries = make_embeddings(args.queries, dim, centres, rng)[:, None, :]  # (Q, 1, D)
    out: dict = {"gallery": n, "dim": dim, "gallery_mb": round(gallery.nbytes / 2**20, 1),
                 "backends": {}}
    exact_ids = None
    for backend in backends:
        if backend == "faiss-hnsw" and n > args.hnsw_max_size:
            out["backends"][backend] = {"skipped": f"build time: gallery {n} > --hnsw-max-size "
                                                   f"{args.hnsw_max_size}"}
            continue
        t0 = time.perf_counter()
        index = None if backend == "exact" else build_faiss_index(
            gallery, backend.removeprefix("faiss-"))
        build_s = time.perf_counter() - t0
        stats, results = latency_ms(
            lambda q: search_arrays(gallery, q, args.k, backend=backend, faiss_index=index)[1][0],
            queries)
        row = {**stats, "build_seconds": round(build_s, 2)}
        if backend == "exact":
            exact_ids = results
        elif exact_ids is not None:
            row[f"recall@{args.k}"] = round(float(np.mean(
                [len(set(a.tolist()) & set(e.tolist())) / args.k
                 for a, e in zip(results, exact_ids)])), 4)
        if backend == "faiss-ivf":
            row["nlist"], row["nprobe"] = int(index.nlist), int(index.nprobe)
        if backend == "faiss-hnsw":
            row["M"], row["ef_search"] = int(index.hnsw.nb_neighbors(1)), int(index.hnsw.efSearch)
        row["under_50ms_median"] = row["median_ms"] < 50
        out["backends"][backend] = row
        print(f"n={n} d={dim} {backend}: {row}", file=sys.stderr)
        del index
        gc.collect()
    return out


def bench_forward(args) -> dict | None:
    """Median/p95 of ``Semi3Net.embed_sketch`` for one 128 px sketch, or None + reason."""
    try:
        import torch

        from semi3lib.config import ModelConfig
        from semi3lib.models import Semi3Net

        model = Semi3Net(ModelConfig(), num_classes=125).eval()
        x = torch.rand(1, 3, args.image_size, args.image_size)
        with torch.inference_mode():
            stats, _ = latency_ms(lambda q: model.embed_sketch(x), np.zeros((30, 1)), warmup=5)
        return {**stats, "image_size": args.image_size, "batch": 1,
                "model": "Semi3Net(ModelConfig(), num_classes=125)",
                "backbone": ModelConfig().backbone}, None
    except Exception as err:  # the model is optional here: record why it did not run
        return None, f"{type(err).__name__}: {err}"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--dim", type=int, default=256, help="default: ModelConfig.embed_dim")
    p.add_argument("--no-extra-dim", action="store_true",
                   help="skip the 512-d run at the largest size")
    p.add_argument("--backends", nargs="+", default=["exact", "faiss-flat", "faiss-ivf", "faiss-hnsw"])
    p.add_argument("--hnsw-max-size", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--distribution", choices=["clustered", "uniform"], default="clustered")
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--with-forward", action="store_true")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON path (default results/benchmarks/search.json)")
    args = p.parse_args(argv)

    import faiss
    import torch

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    runs = [bench_size(n, args.dim, args.backends, args, rng) for n in args.sizes]
    if not args.no_extra_dim:
        runs.append(bench_size(max(args.sizes), 512,
                               [b for b in args.backends if b in ("exact", "faiss-ivf")], args, rng))
    forward, reason = bench_forward(args) if args.with_forward else (None, "not requested (--with-forward)")
    if forward is not None:
        for run in runs:
            for row in run["backends"].values():
                if "median_ms" in row:
                    row["median_ms_with_forward"] = round(row["median_ms"] + forward["median_ms"], 3)
    largest = [r for r in runs if r["gallery"] == max(args.sizes) and r["dim"] == args.dim][0]
    result = {
        "benchmark": "search",
        "command": "python benchmarks/bench_search.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "config": vars(args),
        "latency": "one query (batch 1) per call, index build excluded; ms",
        "data": f"{args.distribution} synthetic L2-normalised float32 embeddings"
                + (f" ({args.clusters} centres + noise)" if args.distribution == "clustered" else ""),
        "runs": runs,
        "forward": forward,
        "forward_reason": reason if forward is None else None,
        "targets": {
            "under_50ms_at_largest": {b: r.get("under_50ms_median")
                                      for b, r in largest["backends"].items()},
        },
        "machine": machine_info(),
    }
    write_result("search", result, args.out)
    return result


if __name__ == "__main__":
    main()
