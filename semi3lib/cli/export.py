"""``semi3 export``: the trained sketch encoder (ONNX), the gallery's embeddings (float16) and
thumbnails, for the book's in-browser search page (see semi3lib/retrieval/export.py). The
export is written as a whole: an earlier one at ``--out`` is replaced only by a complete one.
A category checkpoint goes to ``_build/search-export``, a fine-grained one to
``_build/search-export-fine-grained``: the page offers both (semi3lib/book/search_page.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from semi3lib.cli import UserError


def book_checkpoint(profile: str, root: str | Path = ".") -> Path:
    """The checkpoint the book's chapters read under ``profile`` (its ``checkpoint`` parameter);
    an unknown or broken profile is a :class:`UserError` (its message lists the profiles)."""
    from semi3lib.book import runner as book

    try:
        values = book.load_profile(profile, root)
    except book.BookError as err:
        raise UserError(f"--profile {profile}: {err}") from None
    if "checkpoint" in values["__common__"]:
        return Path(values["__common__"]["checkpoint"])
    source = Path(root) / book.NOTEBOOK_DIR / "05_evaluation.py"
    import jupytext

    return Path(book.parse_parameters(book.parameters_cell(jupytext.read(source)).source)["checkpoint"])


def cmd_export(args: argparse.Namespace) -> int:
    from semi3lib.retrieval.export import export_search

    if bool(args.checkpoint) == bool(args.profile):
        raise UserError("give --checkpoint CKPT or --profile smoke|cpu|full (the book's checkpoint)")
    checkpoint = Path(args.checkpoint) if args.checkpoint else book_checkpoint(args.profile)
    manifest = export_search(checkpoint, args.out, progress=not args.quiet, instance_gallery=args.instance_gallery)
    print(json.dumps({"out": str(args.out), "checkpoint": str(checkpoint), "protocol": manifest["protocol"],
                      "photos": manifest["count"],
                      "encoder_bytes": manifest["encoder"]["bytes"],
                      "onnx_vs_pytorch_max_abs_diff": manifest["encoder"]["max_abs_diff_vs_pytorch"],
                      "seconds": manifest["seconds"]}))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="ONNX sketch encoder + gallery for the book's in-browser search page")
    p.add_argument("--checkpoint", help="a checkpoint written by semi3 train (last.pt / best.pt)")
    p.add_argument("--profile", help="export the checkpoint the book's chapters read with this profile")
    p.add_argument("--out", required=True,
                   help="new folder, or an earlier export to replace (the site build copies _build/search-export, "
                        "and a fine-grained model's _build/search-export-fine-grained beside it)")
    p.add_argument("--instance-gallery", choices=("test", "all"),
                   help="fine-grained checkpoints: search the test photos or every photo (default: the run's own)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_export)
