"""Options several subcommands share, so they are spelled the same everywhere."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from ..settings import Settings, load_settings
from ..storage import Store, parse_storage_options

__all__ = ["add_store_options", "add_cluster_options", "add_date_range", "settings_from",
           "store_from", "print_json"]


def add_store_options(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("--store", required=required,
                        help="offline store URL: a path or s3://bucket/prefix "
                             "(FEATURESTORE_STORE)")
    parser.add_argument("--storage-option", action="append", metavar="KEY=VALUE", default=[],
                        help="fsspec storage option, repeatable, e.g. "
                             "client_kwargs.endpoint_url=http://127.0.0.1:9000")


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", help="tcp://host:port of an existing Dask scheduler "
                                            "(default: start a local cluster)")
    parser.add_argument("--workers", type=int, help="local cluster worker processes")


def add_date_range(parser: argparse.ArgumentParser, first: str, last: str) -> None:
    """``--from`` / ``--to`` as-of dates (``args.start`` / ``args.end``); the help texts say
    what each command does without them."""
    parser.add_argument("--from", dest="start", type=dt.date.fromisoformat,
                        metavar="YYYY-MM-DD", help=f"first as-of date (default: {first})")
    parser.add_argument("--to", dest="end", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                        help=f"last as-of date (default: {last})")


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        "store": getattr(args, "store", None),
        "scheduler": getattr(args, "scheduler", None),
        "workers": getattr(args, "workers", None),
    }
    options = parse_storage_options(getattr(args, "storage_option", None))
    if options:
        overrides["storage_options"] = options
    return load_settings(getattr(args, "config", None), **overrides)


def store_from(settings: Settings) -> Store:
    return Store(settings.store, settings.storage_options)


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, default=str)
    sys.stdout.write("\n")
