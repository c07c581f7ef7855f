"""``semi3 checkpoint upgrade OLD NEW``: convert a checkpoint of an earlier semi3lib (numpy
arrays in its RNG state) to the data-only format every command reads. Nothing in OLD is run:
it is read by the same restricted unpickler, with numpy's arrays allowed for this one read."""

from __future__ import annotations

import argparse
import json


def cmd_upgrade(args: argparse.Namespace) -> int:
    from semi3lib.engine.checkpoints import upgrade_checkpoint

    ckpt = upgrade_checkpoint(args.old, args.new, overwrite=args.overwrite)
    print(json.dumps({"checkpoint": str(args.new), "from": str(args.old), "epoch": ckpt.get("epoch")}))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("checkpoint", help="convert a checkpoint of an earlier semi3lib")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("upgrade", help="rewrite OLD (numpy RNG state, an earlier semi3lib) as a data-only NEW",
                            description="Read OLD without running anything in it (tensors, plain values and "
                                        "numpy arrays only) and write it to NEW in the format every semi3 "
                                        "command reads (tensors and plain values only).")
    up.add_argument("old", help="the checkpoint to convert (left as it is)")
    up.add_argument("new", help="where to write the converted checkpoint (never OLD)")
    up.add_argument("--overwrite", action="store_true", help="replace NEW if it exists")
    up.set_defaults(func=cmd_upgrade)
