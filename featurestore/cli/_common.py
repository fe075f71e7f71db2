"""Options several subcommands share, so they are spelled the same everywhere."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Literal

from .._exceptions import ConfigError

# Imported inside the functions that need them: ``--help`` and usage errors answer without
# loading pydantic, pandas or Dask (tests/unit/test_cli_startup.py).
if TYPE_CHECKING:
    from ..feature_store import FeatureStore
    from ..settings import Settings
    from ..storage import Store

__all__ = ["add_store_options", "add_cluster_options", "add_date_range", "add_json_option",
           "settings_from", "feature_store_from", "announce_store", "iso_date",
           "out_from", "print_json", "NO_STORE"]

#: The one error line of a command run without any store setting: no silent default store.
NO_STORE = ("no store given: pass --store PATH or --store s3://bucket/prefix (or set "
            "FEATURESTORE_STORE, or store: in the --config file); featurestore init --store "
            "creates a new one")


def add_store_options(parser: argparse.ArgumentParser, required: bool = False) -> None:
    parser.add_argument("--store", required=required, default=argparse.SUPPRESS,
                        help="offline store URL: a path or s3://bucket/prefix "
                             "(FEATURESTORE_STORE)")
    parser.add_argument("--storage-option", action="append", metavar="KEY=VALUE", default=[],
                        help="fsspec storage option, repeatable, e.g. "
                             "client_kwargs.endpoint_url=http://127.0.0.1:9000")


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", help="tcp://host:port of an existing Dask scheduler "
                                            "(default: start a local cluster)")
    parser.add_argument("--workers", type=int, help="local cluster worker processes "
                                                    "(default: one per core, at most 8)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr, fed by Dask task completion (default: "
                             "when stderr is a terminal)")


def iso_date(value: str) -> dt.date:
    """argparse type of a date flag: ``YYYY-MM-DD``, else a usage error naming the format.

    Args:
        value: the flag's text.

    Returns:
        The date.
    """
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date: use YYYY-MM-DD, "
                                         "e.g. 2026-03-02") from None


def add_date_range(parser: argparse.ArgumentParser, first: str, last: str) -> None:
    """``--from`` / ``--to`` as-of dates (``args.start`` / ``args.end``); the help texts say
    what each command does without them."""
    parser.add_argument("--from", dest="start", type=iso_date,
                        metavar="YYYY-MM-DD", help=f"first as-of date (default: {first})")
    parser.add_argument("--to", dest="end", type=iso_date, metavar="YYYY-MM-DD",
                        help=f"last as-of date (default: {last})")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json``: the machine-readable report on stdout instead of the human summary."""
    parser.add_argument("--json", action="store_true",
                        help="print the machine-readable report as one JSON document instead "
                             "of the human summary")


def settings_from(args: argparse.Namespace, need_store: bool = True) -> Settings:
    """The command's settings: flags > environment > config file.

    Args:
        args: the parsed command line.
        need_store: refuse when no store was given anywhere (the built-in default
            ``./featurestore-data/store`` is never used silently by the CLI).

    Returns:
        The settings.

    Raises:
        ConfigError: ``need_store`` and neither ``--store``, FEATURESTORE_STORE nor the
            config file names a store.
    """
    if need_store and not _store_given(args):  # before pydantic loads: a usage error is quick
        raise ConfigError(NO_STORE)
    from ..settings import load_settings
    from ..storage import parse_storage_options

    overrides: dict[str, Any] = {
        "store": getattr(args, "store", None),
        "scheduler": getattr(args, "scheduler", None),
        "workers": getattr(args, "workers", None),
    }
    options = parse_storage_options(getattr(args, "storage_option", None))
    if options:
        overrides["storage_options"] = options
    settings = load_settings(getattr(args, "config", None), **overrides)
    if need_store and "store" not in settings.model_fields_set:
        raise ConfigError(NO_STORE)
    return settings


def _store_given(args: argparse.Namespace) -> bool:
    """Whether any setting may name a store: ``--store``, FEATURESTORE_STORE (any case, as
    pydantic-settings reads it) or a config file (read by :func:`settings_from`)."""
    return bool(getattr(args, "store", None) or getattr(args, "config", None)
                or any(k.upper() in ("FEATURESTORE_STORE", "FEATURESTORE_CONFIG")
                       for k in os.environ))


def announce_store(args: argparse.Namespace, url: str) -> None:
    """The first line of a command's human output names the store it uses (not with --json,
    whose stdout is the JSON document alone)."""
    if not getattr(args, "json", False):
        print(f"store: {url}", flush=True)


def feature_store_from(args: argparse.Namespace, access: Literal["read", "write"] | None,
                       **overrides: Any) -> FeatureStore:
    """The command's :class:`FeatureStore` (the composition root), its store checked before
    any cluster starts.

    Args:
        args: the parsed command line (``--config``, ``--store``, ``--storage-option``,
            ``--scheduler``, ``--workers``).
        access: "write", "read" (the store must exist) or None (no check).
        **overrides: more settings from the command's own flags (None values are ignored).

    Returns:
        The facade every command calls.
    """
    settings = settings_from(args)  # (a missing store is refused before anything loads)
    from ..feature_store import FeatureStore

    updates = {k: v for k, v in overrides.items() if v is not None}
    if updates:
        settings = settings.model_copy(update=updates)
    # progress bars on stderr when it is a terminal, fed by the cluster's task completion
    fs = FeatureStore(settings, progress=getattr(args, "progress", None),
                      progress_label=f"featurestore {getattr(args, 'command', '')}".strip())
    if access is not None:
        fs.check(access)
    announce_store(args, fs.offline_store.url)
    return fs


def out_from(store: Store, out: str) -> tuple[Store, dict | None]:
    """An output folder (``--out``) checked for writing, and its storage options: the
    store's when it is on the same filesystem protocol.

    Args:
        store: the command's store.
        out: the output URL.

    Returns:
        (the output as a Store, the storage options to write it with).

    Raises:
        StoreError: the output path cannot be written.
    """
    from ..storage import Store, options_for

    options = options_for(out, store)
    target = Store(out, options)
    target.preflight(write=True)
    return target, options


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, default=str)
    sys.stdout.write("\n")
