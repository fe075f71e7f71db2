"""``featurestore`` command line (also ``python -m featurestore``).

Each subcommand lives in its own module with ``register(subparsers)``; a module's handler gets
the parsed args and returns the process exit code. Add a command by adding a module and its
name to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .._exceptions import FeatureStoreError

__all__ = ["main", "build_parser"]

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("demo", "generate", "apply", "ingest", "backfill", "tables", "show", "serve",
            "training-set", "export-fm", "retrain", "models", "predict", "recommend",
            "run-daily")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="featurestore",
        description="Dask-based feature store for customer behaviour data.",
    )
    parser.add_argument("--config", help="YAML settings file (also FEATURESTORE_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f".{name.replace('-', '_')}", __name__).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except FeatureStoreError as exc:
        print(f"featurestore {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"featurestore {args.command}: interrupted", file=sys.stderr)
        return 130
