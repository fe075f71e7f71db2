"""``featurestore init``: create a new store - its S3 bucket or local folder - explicitly.

No other command creates a bucket (a mistyped ``--store`` fails instead of writing a store
nobody reads). Running it on an existing store changes nothing."""

from __future__ import annotations

import argparse

from ._common import add_json_option, add_store_options, feature_store_from, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create a new store (its bucket or folder)",
                       description=__doc__)
    add_store_options(p)
    add_json_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    result = feature_store_from(args, None).init()
    if args.json:
        print_json(result.to_dict())
    elif result.existed:
        print("the store already exists: nothing changed")
    else:
        made = (f"bucket {result.created_bucket}" if result.created_bucket
                else "folder" if result.created_folder else "nothing (the bucket exists)")
        print(f"created {made}; next: featurestore ingest RAW_ROOT --store {result.store}")
    return 0
