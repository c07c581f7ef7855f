"""Edgemap benchmark: photos per second per method, first pass and cached second pass.

    python benchmarks/bench_edges.py                      # all sketchy-mini photos (3,125)
    python benchmarks/bench_edges.py --limit 200 --out /tmp/edges.json   # quick run

For each method (Canny, XDoG, Sobel from ``semi3lib.data.edgemaps``) the photos go through
``EdgeCache.get`` twice: the **first pass** on a fresh, empty temporary cache folder (decode
the JPEG, compute the edgemap, write it) and the **cached pass** with a new ``EdgeCache`` on
the same folder (look the entry up and read it back). Before any timing every photo file is
read once, so the operating system's file cache is equally warm for every method and both
passes measure the CPU work, not the disk. The data issue's target: a cached pass at least
10x faster than the first pass.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_result  # noqa: E402

from semi3lib.data.edgemaps import EDGE_CACHE_FORMAT_VERSION, EDGE_METHODS, EdgeCache  # noqa: E402
from semi3lib.paths import find_dataset_root  # noqa: E402

TARGET_SPEEDUP = 10.0


def photo_paths(dataset: str, root: str | None) -> list[Path]:
    """Every photo of the dataset (all variants), sorted."""
    folder = find_dataset_root(dataset, root)
    return sorted(p for p in (folder / "photo").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def timed_pass(cache: EdgeCache, photos: list[Path]) -> float:
    start = time.perf_counter()
    for p in photos:
        cache.get(p)
    return time.perf_counter() - start


def disk_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and f.name != "params.json")


def bench_method(method: str, photos: list[Path], workdir: Path) -> dict:
    cache = EdgeCache(workdir / method, method)
    first = timed_pass(cache, photos)
    cached = EdgeCache(workdir / method, method)
    second = timed_pass(cached, photos)
    if cached.hits != len(photos):
        raise RuntimeError(f"{method}: cached pass missed {len(photos) - cached.hits} photos")
    suffixes = sorted({f.suffix for f in cache.dir.rglob("*") if f.is_file() and f.name != "params.json"})
    size = disk_bytes(cache.dir)
    speedup = first / second
    return {
        "first_pass": {"seconds": round(first, 3), "photos_per_sec": round(len(photos) / first, 1),
                       "ms_per_photo": round(1e3 * first / len(photos), 4), "computed": cache.misses},
        "cached_pass": {"seconds": round(second, 3), "photos_per_sec": round(len(photos) / second, 1),
                        "ms_per_photo": round(1e3 * second / len(photos), 4), "hits": cached.hits},
        "speedup": round(speedup, 1),
        "cache_files": suffixes,
        "cache_mb": round(size / 2**20, 1),
        "cache_kb_per_photo": round(size / 1024 / len(photos), 1),
        "target_10x_met": speedup >= TARGET_SPEEDUP,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="sketchy-mini")
    parser.add_argument("--root", default=None, help="dataset folder (default: semi3lib.paths search)")
    parser.add_argument("--methods", default=",".join(EDGE_METHODS), help="comma-separated edge methods")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N photos (quick runs)")
    parser.add_argument("--out", default=None, help="JSON path (default: results/benchmarks/edges.json)")
    args = parser.parse_args()

    photos = photo_paths(args.dataset, args.root)[: args.limit]
    if not photos:
        raise SystemExit(f"no photos found for {args.dataset}")
    for p in photos:  # warm the OS file cache: both passes then time CPU work only
        p.read_bytes()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-edges-") as workdir:
        EdgeCache(Path(workdir) / "warmup", methods[0]).get(photos[0])  # imports, codec set-up
        for method in methods:
            runs[method] = bench_method(method, photos, Path(workdir))
            print(f"{method}: first {runs[method]['first_pass']['photos_per_sec']} photos/s, cached "
                  f"{runs[method]['cached_pass']['photos_per_sec']} photos/s ({runs[method]['speedup']}x)",
                  file=sys.stderr)
    command = "python benchmarks/bench_edges.py " + " ".join(sys.argv[1:])
    result = {
        "benchmark": "edges",
        "command": command.strip(),
        "config": {"dataset": args.dataset, "photos": len(photos), "methods": methods, "limit": args.limit,
                   "cache_format_version": EDGE_CACHE_FORMAT_VERSION},
        "data": f"every photo of {args.dataset} (256x256 JPEG); OS file cache warmed before timing",
        "first_pass": "fresh temporary cache folder: decode JPEG + compute edgemap + write cache entry",
        "cached_pass": "new EdgeCache on the filled folder: key the photo (stat + sha1) + read the entry",
        "cache_format": "binary maps (Canny) as 1-bit uncompressed PNG, grey maps (XDoG, Sobel) as raw uint8 .npy",
        "single_process": "one process, no DataLoader workers",
        "methods": runs,
        "targets": {"cached_pass_at_least_10x_faster": {m: r["target_10x_met"] for m, r in runs.items()}},
        "machine": machine_info(),
    }
    write_result("edges", result, args.out)


if __name__ == "__main__":
    main()
