"""The ``semi3`` command. Each subcommand group lives in its own module with a
``register(subparsers)`` function that adds its parser and sets ``func``."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute subcommands, in the order they appear in --help.
_COMMAND_MODULES = ["data", "model", "engine", "study", "book", "export"]


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semi3", description="Semi3-Net sketch-based image retrieval")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"semi3lib.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"semi3lib.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from semi3lib.config import ConfigError

    try:
        return int(args.func(args) or 0)
    except (UserError, ConfigError, FileNotFoundError, ValueError) as err:
        print(f"semi3 {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
