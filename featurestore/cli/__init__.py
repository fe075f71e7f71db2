"""``featurestore`` command line (also ``python -m featurestore``).

Each subcommand lives in its own module with ``register(subparsers)``; a module's handler gets
the parsed args and returns the process exit code. Add a command by adding a module and its
name to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import traceback

from .._exceptions import FeatureStoreError

__all__ = ["main", "build_parser"]

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("demo", "init", "generate", "apply", "ingest", "backfill", "tables", "features",
            "show",
            "serve", "training-set", "export-fm", "retrain", "jobs", "models", "predict",
            "recommend", "run-daily", "online")


def _plain(text: str) -> str:
    """Help text for a terminal: no reStructuredText double backticks, no references to
    sections of the spec a user does not have."""
    text = re.sub(r"\s*\(SPEC §[\d.]+\)", "", text)
    text = re.sub(r"SPEC §[\d.]+\s*", "", text)
    return text.replace("``", "")


class _HelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default when it has a meaningful one, in plain text."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(_plain(text))

    def _expand_help(self, action: argparse.Action) -> str:
        return _plain(super()._expand_help(action))

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or default in (None, False, argparse.SUPPRESS, [])
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


def _add_global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """``--config`` and ``-v``, accepted before and after the subcommand (a subcommand's copy
    has no default, so it never overwrites a value given before it)."""
    default = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument("--config", help="YAML settings file (also FEATURESTORE_CONFIG)",
                        **default)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress details and show tracebacks", **default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="featurestore", formatter_class=_HelpFormatter,
        description="Dask-based feature store for customer behaviour data.",
    )
    _add_global_options(parser, suppress=False)
    parser.add_argument("--store", default=argparse.SUPPRESS,
                        help="offline store URL, also accepted after the subcommand")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f".{name.replace('-', '_')}", __name__).register(sub)
    for command in sub.choices.values():
        command.formatter_class = _HelpFormatter
        _add_global_options(command, suppress=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (0 ok, 1 failed run, 2 usage, 141 closed pipe).

    Args:
        argv: the arguments after ``featurestore`` (default: ``sys.argv[1:]``).

    Returns:
        The process exit code.
    """
    try:
        code = _main(argv)
        # Flush here, not at interpreter exit, so a reader that went away is handled below
        # rather than reported as "Exception ignored ... BrokenPipeError" with exit 120.
        sys.stdout.flush()
        if argv is None:  # the program itself (the console script, ``python -m featurestore``)
            _skip_exit_gc()
        return code
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as Unix tools do; point stdout at
        # devnull so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _skip_exit_gc() -> None:
    """Freeze every object now, so the interpreter's collections at exit skip them: with
    numba, pyarrow and pandas loaded they cost a command 0.2-1 s of CPU after its work is
    done (issue #27). Only for the process's own run: a host that calls :func:`main` with
    arguments (the tests) keeps collecting."""
    import gc

    gc.freeze()


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    root = logging.getLogger()
    before = list(root.handlers)  # (a host's own handlers, e.g. pytest's, are left alone)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Dask is imported later (only by commands that need it) and then sees a root handler, so
    # it installs none of its own: its INFO records (cluster start, a comm race at close logged
    # with a traceback) propagate here. The handler's level, not the root logger's, stops them.
    for handler in root.handlers:
        if handler not in before:
            handler.setLevel(level)
    try:
        return int(args.handler(args) or 0)
    except FeatureStoreError as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"featurestore {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"featurestore {args.command}: interrupted", file=sys.stderr)
        return 130
