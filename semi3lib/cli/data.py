"""``semi3 data``: inspect a dataset, precompute edgemaps, pack a compact copy."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import yaml

from semi3lib.cli import int_at_least
from semi3lib.data.layouts import DATASET_NAMES, printable_path, read_dataset
from semi3lib.paths import DEFAULT_DATASET

DEFAULT_EDGE_CACHE = "cache/edges"


def _add_dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", nargs="?", default=None,
                   help="dataset folder (default: <name> under $SEMI3_DATA, ./data, ../shared/data)")
    p.add_argument("--dataset", default=DEFAULT_DATASET, choices=DATASET_NAMES, help="dataset layout/name")


def _parse_params(items: list[str]) -> dict[str, Any]:
    params = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--param {item!r} is not of the form name=value")
        key, value = item.split("=", 1)
        params[key.strip()] = yaml.safe_load(value)
    return params


def dataset_info(index, queries_per_category: int | None = None, unseen: int | None = None,
                 seed: int = 0) -> dict[str, Any]:
    """Counts of an index and of both standard splits (a split that cannot be made on this
    dataset, e.g. zero-shot on 3 categories, is reported as ``{"error": ...}``), and the files
    the index left out with why (empty, a name that is not UTF-8; with ``--verify`` also
    undecodable). Paths are printable text whatever bytes their names hold."""
    from semi3lib.data.splits import make_split

    splits: dict[str, Any] = {}
    for protocol in ("category", "zeroshot"):
        try:
            split = make_split(index, protocol, queries_per_category=queries_per_category, seed=seed,
                               unseen_categories=unseen)
            splits[protocol] = split.counts()
        except ValueError as err:
            splits[protocol] = {"error": str(err)}
    return {
        "dataset": index.name,
        "root": printable_path(index.root),
        "categories": len(index.categories),
        "photos": len(index.photos),
        "sketches": index.sketch_counts(),
        "skipped": len(index.skipped),
        "skipped_files": [f"{printable_path(s.path)}: {s.reason}" for s in index.skipped],
        "splits": splits,
    }


def _print_table(info: dict[str, Any]) -> None:
    print(f"dataset     {info['dataset']}  ({info['root']})")
    print(f"categories  {info['categories']}")
    print(f"photos      {info['photos']}")
    for variant, n in info["sketches"].items():
        print(f"sketches    {n:>7}  {variant}")
    print(f"skipped     {info['skipped']}")
    for path in info["skipped_files"][:20]:
        print(f"  - {path}")
    print(f"{'split':<10} {'query':>7} {'train':>7} {'val':>5} {'gallery':>8} {'train photos':>13}")
    for name, c in info["splits"].items():
        if "error" in c:
            print(f"{name:<10} not available: {c['error']}")
        else:
            print(f"{name:<10} {c['query']:>7} {c['train']:>7} {c['val']:>5} {c['gallery']:>8} {c['train_photos']:>13}")


def cmd_info(args: argparse.Namespace) -> int:
    index = read_dataset(args.dataset, args.root, verify=args.verify, progress=args.verify and not args.json)
    info = dataset_info(index, args.queries_per_category, args.unseen, args.seed)
    if args.json:
        print(json.dumps(info))
    else:
        _print_table(info)
    return 0


def cmd_edgemaps(args: argparse.Namespace) -> int:
    from semi3lib.data.edgemaps import EdgeCache

    index = read_dataset(args.dataset, args.root)
    cache = EdgeCache(args.cache, args.method, _parse_params(args.param))
    start = time.perf_counter()
    stats = cache.precompute([p.path for p in index.photos], progress=not args.no_progress)
    stats["seconds"] = round(time.perf_counter() - start, 3)
    for path in stats["unreadable_files"]:
        print(f"unreadable, skipped: {path}", file=sys.stderr)
    print(f"edgemaps ({stats['method']}): {stats['photos']} photos, {stats['computed']} computed, "
          f"{stats['cached']} already cached, {stats['unreadable']} unreadable, in {stats['seconds']:.2f} s "
          f"-> {stats['cache_dir']}")
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from semi3lib.data.pack import pack_dataset

    s = pack_dataset(args.root, args.out, size=args.size, name=args.dataset, quality=args.quality,
                     progress=not args.no_progress)
    print(f"packed {s['written']} files ({s['bytes'] / 2**20:.1f} MiB, {s['skipped']} skipped) "
          f"at {s['size']} px to {s['out']} in {s['seconds']:.1f} s")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``semi3 data {info,edgemaps,pack}``."""
    from semi3lib.data.edgemaps import EDGE_METHODS

    data = subparsers.add_parser("data", help="inspect datasets, precompute edgemaps, pack a copy")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    info = sub.add_parser("info", help="counts of a dataset and of its standard splits")
    _add_dataset_args(info)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.add_argument("--verify", action="store_true", help="decode every file; count unreadable ones (slow)")
    info.add_argument("--queries-per-category", type=int_at_least(1), default=None, help="default: the dataset's standard")
    info.add_argument("--unseen", type=int_at_least(1), default=None, help="zero-shot unseen categories; default: standard")
    info.add_argument("--seed", type=int_at_least(0), default=0, help="split seed")
    info.set_defaults(func=cmd_info)

    edges = sub.add_parser("edgemaps", help="precompute the edgemap cache of every photo")
    _add_dataset_args(edges)
    edges.add_argument("--method", default="canny", choices=EDGE_METHODS)
    edges.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="edge method parameter (repeatable), e.g. --param sigma=0.5")
    edges.add_argument("--cache", default=DEFAULT_EDGE_CACHE, help=f"cache folder (default: {DEFAULT_EDGE_CACHE})")
    edges.add_argument("--no-progress", action="store_true")
    edges.set_defaults(func=cmd_edgemaps)

    pack = sub.add_parser("pack", help="write a compact copy (same layout, resized images)")
    _add_dataset_args(pack)
    pack.add_argument("--size", type=int_at_least(8), default=224, help="shorter side in pixels (never enlarged)")
    pack.add_argument("--out", required=True,
                      help="output folder, new or empty (written as a whole: a failed pack leaves none)")
    pack.add_argument("--quality", type=int_at_least(1, 100), default=90, help="JPEG quality of photos")
    pack.add_argument("--no-progress", action="store_true")
    pack.set_defaults(func=cmd_pack)
