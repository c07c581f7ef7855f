"""``semi3 book run --profile smoke|cpu|full [--only NAME] [--out _build]``: execute the
notebooks headlessly (see :mod:`semi3lib.book.runner`)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from semi3lib.book.runner import add_run_arguments, cmd_run

    parser = subparsers.add_parser("book", help="execute the book's notebooks with papermill")
    sub = parser.add_subparsers(dest="book_command", metavar="COMMAND", required=True)
    run = sub.add_parser("run", help="execute the notebooks of a profile into OUT/executed/")
    add_run_arguments(run)
    run.set_defaults(func=cmd_run)
