"""``semi3 doodles``: how well a trained model finds photos for Quick, Draw! doodles."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from semi3lib.cli import UserError, int_at_least


def cmd_doodles(args: argparse.Namespace) -> int:
    from semi3lib.data.quickdraw import QuickDrawError
    from semi3lib.engine.device import select_device
    from semi3lib.engine.doodles import GROUPS, score_doodles
    from semi3lib.engine.records import write_record
    from semi3lib.io import check_output_file

    if args.record:
        check_output_file(args.record, inputs=[args.checkpoint], overwrite=args.overwrite, what="--record file")
    adapted = None if args.adapted is None else [c.strip() for c in args.adapted.split(",") if c.strip()]
    try:
        record = score_doodles(args.checkpoint, adapted, args.strokes, args.quickdraw, args.per_class,
                               select_device(args.device), progress=not args.quiet)
    except QuickDrawError as err:
        raise UserError(str(err)) from err
    if args.record:
        write_record(args.record, record)
    rows = {split: {k: record.metrics[split][k] for k in ("mAP@all", "P@10", "queries")}
            for split in ("query", *GROUPS) if split in record.metrics}
    if args.json:
        print(json.dumps(rows))
    else:
        for split, values in rows.items():
            classes = record.metrics[split].get("classes", "sketchy-mini query sketches")
            print(f"{split:>17}: mAP@all {values['mAP@all']:.3f}  P@10 {values['P@10']:.3f}  "
                  f"({int(values['queries']):,} queries: {classes})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doodles", help="score Quick, Draw! test doodles against a checkpoint's gallery")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by semi3 train")
    p.add_argument("--adapted", help="comma-separated classes counted as adapted (default: the checkpoint's "
                                     "data.doodle_adapt_classes); the others are held out")
    p.add_argument("--strokes", choices=["raw", "normalised"],
                   help="prepare the queries this way instead of as the checkpoint was trained")
    p.add_argument("--quickdraw", type=Path, help="the Quick, Draw! folder (default: quickdraw5 where the data is)")
    p.add_argument("--per-class", type=int_at_least(1), help="the first N test doodles of each class (default: all)")
    p.add_argument("--record", help="write the run record (metrics per group, examples) here")
    p.add_argument("--overwrite", action="store_true", help="replace --record if it exists")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_doodles)
