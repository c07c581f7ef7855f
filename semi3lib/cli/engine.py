"""``semi3 train``, ``semi3 eval``, ``semi3 index`` and ``semi3 search``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from semi3lib.cli import UserError, int_at_least


# The default of --max-unreadable (engine.evaluate.MAX_UNREADABLE, not imported here: the
# command line is built without torch).
MAX_UNREADABLE = 0.05


def fraction(text: str) -> float:
    """An argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is out of range (valid: in [0, 1])")
    return value


def skipped_line(what: str, kept: int, skipped: int, first: str | None) -> str:
    """``"gallery: 50, skipped: 25 (first: photo/.../x.jpg)"``: how many files a command used
    and how many it left out as unreadable, naming the first."""
    return f"{what}: {kept}, skipped: {skipped}" + (f" (first: {first})" if skipped and first else "")


def _print_metrics(metrics: dict, as_json: bool) -> None:
    from semi3lib.engine.evaluate import EXAMPLES, OWN_PHOTO_RANKS

    if as_json:
        print(json.dumps(metrics, indent=None))
        return
    unreadable = {k: metrics[k] for k in ("queries_unreadable", "gallery_unreadable", "unreadable_files")
                  if k in metrics}
    for key, value in metrics.items():
        if key in (OWN_PHOTO_RANKS, EXAMPLES):  # per-query lists: --json has them
            continue
        if key not in unreadable:
            print(f"{key:>12}: {value:.4f}" if isinstance(value, float) else f"{key:>12}: {value}")
    if unreadable:  # the files left out, one line per side, each naming its first
        from semi3lib.engine.evaluate import NAMED_UNREADABLE

        files, lost_q = unreadable["unreadable_files"], int(unreadable["queries_unreadable"])
        lost_g = int(unreadable["gallery_unreadable"])
        first_g = min(lost_q, NAMED_UNREADABLE)  # the names list the first queries, then the first gallery photos
        print(skipped_line("queries", int(metrics["queries"]), lost_q, files[0] if lost_q else None))
        print(skipped_line("gallery", int(metrics["gallery"]), lost_g, files[first_g] if lost_g else None))


def cmd_train(args: argparse.Namespace) -> int:
    from semi3lib.config import load_config
    from semi3lib.engine.prechecks import check_config, check_writable
    from semi3lib.engine.train import train

    cfg = load_config(args.config, args.overrides)
    check_config(cfg)  # the cheap checks, before any data is read (train() makes them all again)
    if args.results:  # refused before hours of training, not after
        from semi3lib.io import RUN_FILES, check_output_file

        check_output_file(args.results, inputs=[args.config, *(Path(cfg.train.out_dir) / n for n in RUN_FILES)],
                          overwrite=args.overwrite, what="--results file")
        check_writable(args.results, "--results file")
    result = train(cfg, resume=args.resume, progress=not args.quiet, overwrite=args.overwrite)
    summary = {"out_dir": str(result.out_dir), "epochs": len(result.history),
               "wall_seconds": round(result.wall_seconds, 1), "query": result.final_metrics}
    print(json.dumps(summary))
    if args.results:
        from semi3lib.engine.hardware import machine_info
        from semi3lib.engine.records import RunRecord, training_metrics, write_record

        # the record a study writes for each of its runs, plus the command and the run folder
        write_record(args.results, RunRecord(
            run=cfg.name, seed=cfg.train.seed, metrics=training_metrics(result.history, result.final_metrics),
            wall_seconds=summary["wall_seconds"], overrides=list(args.overrides), history=result.history,
            config=cfg.to_dict(), machine=machine_info(), data=result.data,
            command="semi3 " + " ".join(sys.argv[1:]) if sys.argv else None, out_dir=summary["out_dir"]))
    return 0


def _require_split(data, split: str, source: str) -> None:
    """Refuse ``--split val`` where the split holds no validation sketches (before embedding)."""
    if split == "val" and not data.split.val:
        raise UserError(f"--split val: {source} has no validation sketches (data.val_sketches_per_category is 0); "
                        "use --split query, or train with data.val_sketches_per_category=N")


def cmd_eval(args: argparse.Namespace) -> int:
    from semi3lib.config import load_config
    from semi3lib.engine.evaluate import evaluate_imagenet_baseline, evaluate_model, load_model
    from semi3lib.data.experiment import load_experiment_data
    from semi3lib.engine.device import select_device

    device = select_device(args.device)
    started = time.perf_counter()
    if args.baseline:
        if args.checkpoint:
            raise UserError("give either --checkpoint or --baseline, not both")
        cfg = load_config(args.config, args.overrides)
        data = load_experiment_data(cfg.data)
        _require_split(data, args.split, args.config)
        metrics = evaluate_imagenet_baseline(data, cfg.data, cfg.model.backbone, cfg.model.weights_path,
                                             device, args.split, progress=not args.quiet,
                                             max_unreadable=args.max_unreadable)
        metrics["model"] = f"imagenet:{cfg.model.backbone}"
    else:
        if not args.checkpoint:
            raise UserError("--checkpoint CKPT (or --baseline imagenet) is required")
        model, cfg, _ = load_model(args.checkpoint, device)
        if args.overrides:
            from semi3lib.config import apply_overrides, config_from_dict

            if any(not o.startswith(("data.", "model.gallery_embedding=")) for o in args.overrides):
                raise UserError("only data.* and model.gallery_embedding overrides apply to a trained checkpoint")
            cfg = config_from_dict(apply_overrides(cfg.to_dict(), args.overrides))
            try:
                model.set_gallery_embedding(cfg.model.gallery_embedding)
            except ValueError as err:
                raise UserError(str(err)) from err
        split_file = Path(args.checkpoint).parent / "split.json"
        data = load_experiment_data(cfg.data, split_file if split_file.is_file() else None)
        _require_split(data, args.split, args.checkpoint)
        metrics = evaluate_model(model, data, cfg.data, args.split, device, progress=not args.quiet,
                                 max_unreadable=args.max_unreadable)
        metrics["model"] = str(args.checkpoint)
    metrics["split"] = args.split
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    _print_metrics(metrics, args.json)
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from semi3lib.retrieval.search import index_photo_folder

    index = index_photo_folder(args.checkpoint, args.photos, args.out, device=args.device,
                               progress=not args.quiet, overwrite=args.overwrite, max_unreadable=args.max_unreadable)
    skipped = index.model_identity.get("skipped", 0)
    print(json.dumps({"index": str(args.out), "photos": len(index.paths), "skipped": skipped,
                      **({"first_skipped": index.model_identity["first_skipped"]} if skipped else {})}))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from semi3lib.engine.checkpoints import is_checkpoint_file
    from semi3lib.retrieval.search import search_sketch

    if is_checkpoint_file(args.index):  # a common slip: the checkpoint where the index belongs
        raise UserError(f"--index {args.index} is a checkpoint, not an index: build one with semi3 index "
                        f"--checkpoint {args.index} --photos FOLDER --out INDEX.npz")
    hits = search_sketch(args.index, args.sketch, k=args.k, checkpoint=args.checkpoint, device=args.device)
    if args.json:
        print(json.dumps({"sketch": str(args.sketch), "results": [{"path": p, "score": s} for p, s in hits]}))
    else:
        for rank, (path, score) in enumerate(hits, 1):
            print(f"{rank:>3}  {score:.4f}  {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a model from a YAML config")
    p.add_argument("--config", required=True, help="YAML config, e.g. configs/sketchy-mini-cpu.yaml")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the run in train.out_dir (same config) from its last.pt, if any")
    again.add_argument("--overwrite", action="store_true",
                       help="replace the run in train.out_dir and the --results file, if they exist")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--results", help="also write the run's record here, as semi3 study writes one per run")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. train.epochs=2 model.coattention=false")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("eval", help="mAP@all, mAP@200, P@k of a checkpoint or of the ImageNet baseline "
                                           "(instance-level split: acc@1/5/10 and the own photo's mean and median "
                                           "rank first; data.instance_gallery=all scores against every photo)")
    p.add_argument("--checkpoint", help="a checkpoint written by semi3 train (best.pt / last.pt)")
    p.add_argument("--baseline", choices=["imagenet"], help="evaluate the untrained ImageNet backbone instead")
    p.add_argument("--config", help="config for --baseline (dataset, backbone, image size)")
    p.add_argument("--split", choices=["query", "val"], default="query")
    p.add_argument("--max-unreadable", type=fraction, default=MAX_UNREADABLE, metavar="FRACTION",
                   help="refuse when more than this fraction of the gallery or of the queries cannot be read "
                        f"(those files are left out and named; default {MAX_UNREADABLE})")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(func=cmd_eval)

    p = subparsers.add_parser("index", help="embed a folder of photos (any layout) into an index file")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--photos", required=True, help="folder searched recursively for images")
    p.add_argument("--out", required=True, help="index file to write (.npz); never a photo or the checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--max-unreadable", type=fraction, default=MAX_UNREADABLE, metavar="FRACTION",
                   help="refuse when more than this fraction of the images cannot be read "
                        f"(those files are left out and named; default {MAX_UNREADABLE})")
    p.add_argument("--device", default="auto")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_index)

    p = subparsers.add_parser("search", help="top-k photos of an index for one sketch")
    p.add_argument("--index", required=True)
    p.add_argument("sketch", help="sketch image (any size or mode)")
    p.add_argument("-k", type=int_at_least(1), default=10)
    p.add_argument("--checkpoint", help="override the checkpoint recorded in the index")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

