"""Generated blocks: the numbers and verdicts of the book's prose, written from the records.

A page (``README.md``, ``book/*.md``) marks a block with two HTML comments, invisible on GitHub
and in the rendered book::

    <!-- gen:NAME -->
    ...whatever the generator NAME writes from results/**...
    <!-- /gen:NAME -->

Every NAME is a function registered here with :func:`generator`; it takes the :class:`Records`
of a repository and returns Markdown. ``python -m semi3lib.book.generated --write`` refreshes
every block, ``--check`` exits 1 naming the stale ones; the site build writes them before it
renders, and ``tests/test_generated.py`` checks that every block is its generator's output.

:func:`hand_typed` is the other half: it finds what looks like a result (a score, a percentage,
a count of seeds or runs, a time, a size, a speed-up, a verdict word) typed by hand outside the
generated blocks, so that a test can refuse it. Verdicts come from :mod:`semi3lib.study.rule`
only (the book's one comparison rule).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from semi3lib.book.generated import readme, results_page  # noqa: F401  (importing them registers their generators)
from semi3lib.book.generated.blocks import GENERATORS, block_names, generator, pages, render, stale_blocks, write_blocks
from semi3lib.book.generated.guard import ALLOWED, NOT_GUARDED, guarded_pages, hand_typed
from semi3lib.book.generated.inputs import MissingRecords, Records

__all__ = ["ALLOWED", "GENERATORS", "MissingRecords", "NOT_GUARDED", "Records", "block_names", "generator",
           "guarded_pages", "hand_typed", "main", "pages", "render", "stale_blocks", "write_blocks"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m semi3lib.book.generated", description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="refresh every generated block")
    action.add_argument("--check", action="store_true", help="exit 1 naming the stale blocks")
    parser.add_argument("--root", default=".", help="the repository (default: here)")
    args = parser.parse_args(argv)
    if args.write:
        for page in write_blocks(args.root):
            print(f"refreshed {page}")
        return 0
    stale = stale_blocks(args.root)
    for line in stale:
        print(f"stale: {line}", file=sys.stderr)
    if stale:
        print("refresh them with `python -m semi3lib.book.generated --write`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
