"""Evaluation benchmark: chunked mAP@all + P@200 against a per-query scikit-learn loop.

    python benchmarks/bench_eval.py            # Sketchy scale: 6,250 x 73,002, 512-d, 125 classes
    python benchmarks/bench_eval.py --queries 500 --gallery 5000   # quick run

Embeddings are seeded random, L2-normalised float32; query labels are balanced over the
classes (Sketchy: 50 per class), gallery labels uniform at random. Each method runs in its
own subprocess so its time and peak memory are not disturbed by the other.

The reference is what a per-query evaluation does: for each query, scikit-learn's
``average_precision_score(gallery_labels == label, scores)`` and P@200 from
``np.argpartition``. It gets its scores from the same blocked BLAS product as the project's
code (the fastest way to score, timed and added), so the speed-up measures ranking, not a
slow score computation. It is timed on ``--ref-queries`` queries spread over all classes and
scaled linearly to all queries (each query costs the same: one sort of G scores). The
literal loop that also scores each query with its own matrix-vector product is timed on the
same subset and reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakRSS, machine_info, write_result  # noqa: E402


def make_data(queries: int, gallery: int, dim: int, classes: int, seed: int):
    """(Q, D) and (G, D) float32 unit vectors, (Q,) balanced and (G,) uniform labels."""
    rng = np.random.default_rng(seed)

    def unit(n: int) -> np.ndarray:
        x = rng.standard_normal((n, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    q, g = unit(queries), unit(gallery)
    ql = np.arange(queries) % classes
    gl = rng.integers(0, classes, gallery)
    return q, ql, g, gl


def reference_subset(q: np.ndarray, n: int) -> np.ndarray:
    """``n`` query indices spread evenly over the (class-interleaved) query list."""
    return np.unique(np.linspace(0, len(q) - 1, num=min(n, len(q))).astype(np.int64))


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (robust to other load)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker(args) -> dict:
    """Run one method in this process; returns its timings, memory and values."""
    import torch

    torch.set_num_threads(args.threads)
    q, ql, g, gl = make_data(args.queries, args.gallery, args.dim, args.classes, args.seed)
    subset = reference_subset(q, args.ref_queries)
    if args.worker in ("ours", "ours_all"):
        from semi3lib.engine.metrics import retrieval_metrics

        ks, map_at = ((200,), ()) if args.worker == "ours" else ((10, 25, 100, 200), (200,))
        retrieval_metrics(q[:8], ql[:8], g, gl, ks=ks, map_at=map_at)  # warm-up (threads, pages)
        with PeakRSS() as mem:
            t0, c0 = time.perf_counter(), cpu_seconds()
            metrics = retrieval_metrics(q, ql, g, gl, ks=ks, map_at=map_at,
                                        chunk_size=args.chunk_size)
            seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        out = {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
               "peak_rss_increase_mb": mem.increase_mb,
               "process_peak_rss_mb": mem.peak_mb, "metrics": metrics}
        if args.worker == "ours":
            sub = per_query_metrics_subset(q, ql, g, gl, subset)
            out["subset_ap"], out["subset_p200"] = sub
        return out
    # Reference: blocked scores, then the per-query scikit-learn loop.
    from sklearn.metrics import average_precision_score

    qs, qls = q[subset], ql[subset]
    with PeakRSS() as mem:
        t0, c0 = time.perf_counter(), cpu_seconds()
        scores = np.empty((min(256, len(qs)), len(g)), np.float32)
        ap, p200 = [], []
        t_score = 0.0
        for start in range(0, len(qs), 256):
            ts = time.perf_counter()
            block = np.matmul(qs[start:start + 256], g.T, out=scores[:len(qs[start:start + 256])])
            t_score += time.perf_counter() - ts
            for row, label in zip(block, qls[start:start + 256]):
                relevant = gl == label
                ap.append(average_precision_score(relevant, row))
                p200.append(relevant[np.argpartition(-row, 200)[:200]].sum() / 200)
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    # The literal loop: each query also computes its own scores (matrix-vector product).
    t0 = time.perf_counter()
    for qv, label in zip(qs, qls):
        row = g @ qv
        relevant = gl == label
        average_precision_score(relevant, row)
        relevant[np.argpartition(-row, 200)[:200]].sum()
    seconds_matvec = time.perf_counter() - t0
    return {"subset_queries": len(subset), "subset_seconds": round(seconds, 3),
            "subset_cpu_seconds": round(cpu, 3),
            "subset_scoring_seconds": round(t_score, 3),
            "subset_seconds_per_query_matvec": round(seconds_matvec, 3),
            "peak_rss_increase_mb": mem.increase_mb, "process_peak_rss_mb": mem.peak_mb,
            "subset_ap": ap, "subset_p200": p200}


def per_query_metrics_subset(q, ql, g, gl, subset) -> tuple[list, list]:
    """The project's per-query AP and P@200 for the reference subset (for agreement)."""
    from semi3lib.engine.metrics import per_query_metrics

    pq = per_query_metrics(q[subset], ql[subset], g, gl, ks=(200,), map_at=())
    return pq["ap"].tolist(), pq["P@200"].tolist()


def run_worker(name: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", name] + [
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
        if k not in ("worker", "out") and v is not None]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--queries", type=int, default=6250)
    p.add_argument("--gallery", type=int, default=73002)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--classes", type=int, default=125)
    p.add_argument("--chunk-size", type=int, default=256)
    p.add_argument("--ref-queries", type=int, default=250,
                   help="queries the scikit-learn reference is timed on (then scaled)")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON path (default results/benchmarks/eval.json)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        warnings.simplefilter("ignore")
        print(json.dumps(worker(args)))
        return {}

    ours = run_worker("ours", args)
    ours_all = run_worker("ours_all", args)
    ref = run_worker("reference", args)
    scale = args.queries / ref["subset_queries"]
    ref_seconds = ref["subset_seconds"] * scale
    ref_matvec_seconds = ref["subset_seconds_per_query_matvec"] * scale
    ap_diff = float(np.max(np.abs(np.subtract(ours.pop("subset_ap"), ref.pop("subset_ap")))))
    p200_diff = float(np.max(np.abs(np.subtract(ours.pop("subset_p200"), ref.pop("subset_p200")))))
    peak_mb = max(ours["peak_rss_increase_mb"], ours_all["peak_rss_increase_mb"])
    result = {
        "benchmark": "eval",
        "command": "python benchmarks/bench_eval.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "config": {k: v for k, v in vars(args).items() if k not in ("worker", "out")},
        "data": "seeded random L2-normalised float32 embeddings; queries balanced over classes, "
                "gallery labels uniform",
        "ours": {"metrics_computed": "mAP@all + P@200", **ours},
        "ours_all_metrics": {"metrics_computed": "mAP@all, mAP@200, P@10, P@25, P@100, P@200",
                             **ours_all},
        "reference": {
            "method": "per query: sklearn.metrics.average_precision_score + P@200 by "
                      "np.argpartition; scores from the same blocked BLAS product (timed, included)",
            "timed_on_subset": True,
            "scaling": f"linear in queries: subset time x {args.queries}/{ref['subset_queries']}",
            "scaled_seconds": round(ref_seconds, 2),
            "scaled_cpu_seconds": round(ref["subset_cpu_seconds"] * scale, 2),
            "scaled_seconds_per_query_matvec_loop": round(ref_matvec_seconds, 2),
            **ref,
        },
        "speedup": round(ref_seconds / ours["seconds"], 1),
        "speedup_cpu_time": round(ref["subset_cpu_seconds"] * scale / ours["cpu_seconds"], 1),
        "speedup_vs_per_query_matvec_loop": round(ref_matvec_seconds / ours["seconds"], 1),
        "agreement_on_subset": {"max_abs_diff_ap": ap_diff, "max_abs_diff_p200": p200_diff},
        "targets": {
            "speedup_at_least_20x": ref_seconds / ours["seconds"] >= 20,
            "peak_memory_under_2gb": peak_mb < 2048,
            "agreement_1e-6": ap_diff <= 1e-6 and p200_diff <= 1e-6,
        },
        "machine": machine_info(),
    }
    write_result("eval", result, args.out)
    return result


if __name__ == "__main__":
    main()
