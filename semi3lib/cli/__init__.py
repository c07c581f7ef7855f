"""The ``semi3`` command. Each subcommand group lives in its own module with a
``register(subparsers)`` function that adds its parser and sets ``func``.

:func:`main` is the command's one error boundary. A user's mistake (a bad config, path or
argument) and an environment error (disk full, permission, a path that is a directory) are one
line on stderr and exit status 2; anything else is a bug: one line and exit status 1, with the
traceback only under ``--debug`` or ``SEMI3_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import typing

from semi3lib.engine.hardware import ISA_CAPS, isa_environment

# Modules that contribute subcommands, in the order they appear in --help.
_COMMAND_MODULES = ["data", "model", "engine", "doodles", "study", "book", "export", "checkpoint"]


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (not usage + error)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def int_at_least(low: int, high: int | None = None) -> typing.Callable[[str], int]:
    """An argparse type: a whole number in ``[low, high]``; the message gives the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            valid = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"{value} is out of range (valid: {valid})")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="semi3", description="Semi3-Net sketch-based image retrieval",
                                     epilog="Exit status: 0 done, 2 a user or environment error (one line on "
                                            "stderr), 1 an internal error.")
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback of an internal error (also: SEMI3_DEBUG=1); may follow the command")
    parser.add_argument("--isa", choices=sorted(ISA_CAPS), metavar="ISA",
                        help="compute what a host of this instruction set computes (avx2 on an AVX-512 CPU: "
                             "caps torch's, oneDNN's, MKL's and numpy's kernels, so its runs pair with an AVX2 "
                             "host's; the records name the caps); first, before the command")
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


# A message longer than this is cut (the rest is under --debug): one line stays readable even
# when a library puts a whole file listing into its error.
MAX_MESSAGE = 400


def describe_error(err: BaseException) -> str:
    """One line for ``err``: an OSError as its reason and path(s), anything else as its message,
    at most about :data:`MAX_MESSAGE` characters."""
    if isinstance(err, OSError) and err.strerror:
        text = err.strerror + "".join(f": {name}" for name in (err.filename, err.filename2) if name is not None)
    else:
        text = str(err) or type(err).__name__
    line = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    if len(line) > MAX_MESSAGE:
        line = f"{line[:MAX_MESSAGE]}... ({len(line) - MAX_MESSAGE} more characters: run with --debug)"
    return line


def _restart_with_isa_caps(argv: list[str], debug: bool) -> None:
    """``semi3 --isa X ...``: the kernels' instruction set is fixed when a library first loads,
    so the command starts again in a process whose environment caps it (unless it already does)."""
    if len(argv) < 2 or argv[0] != "--isa" or argv[1] not in ISA_CAPS:
        return  # no caps asked for before the command, or argparse's message names the choices
    isa = argv[1]
    try:
        env = isa_environment(isa)
    except ValueError as err:
        print(f"semi3: error: {err}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    if _isa_capped(env):
        return
    argv = [*argv, "--debug"] if debug else argv
    os.execvpe(sys.executable, [sys.executable, "-m", "semi3lib.cli", *argv], {**os.environ, **env})


def _isa_capped(env: dict[str, str]) -> bool:
    """Whether this process already runs with the caps ``env`` (:func:`isa_environment`)."""
    return all(os.environ.get(name) == value for name, value in env.items())


def main(argv: list[str] | None = None) -> int:
    as_program = argv is None  # only a process of its own may start again with other caps
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SEMI3_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    if as_program:
        _restart_with_isa_caps(argv, debug)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        uncapped = args.isa and not _isa_capped(isa_environment(args.isa))
    except ValueError as err:  # the CPU lacks it
        parser.error(str(err))
    if uncapped:
        parser.error(f"--isa {args.isa} takes effect only when the process starts: run `semi3 --isa {args.isa} ...`")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    from semi3lib.config import ConfigError

    prog = f"semi3 {args.command}"
    try:
        return int(args.func(args) or 0)
    except (UserError, ConfigError, ValueError, OSError) as err:
        # ValueError: the library's way to refuse an input (a dataset, a checkpoint, an index);
        # OSError: the environment (disk full, permission denied, is a directory, not found).
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {describe_error(err)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: say so in one line; the traceback is for --debug
        if debug:
            traceback.print_exc()
            hint = ""
        else:
            hint = " (run with --debug or SEMI3_DEBUG=1 for the traceback)"
        print(f"{prog}: internal error: {type(err).__name__}: {describe_error(err)}{hint}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
