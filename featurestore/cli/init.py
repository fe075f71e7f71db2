"""``featurestore init``: create a new store - its S3 bucket or local folder - explicitly.

No other command creates a bucket (a mistyped ``--store`` fails instead of writing a store
nobody reads). Running it on an existing store changes nothing. With ``--example`` it also
writes a commented feature repository with custom features next to the store (like ``feast
init``) and prints the three commands to run next."""

from __future__ import annotations

import argparse

from .._exceptions import ConfigError
from ._common import add_json_option, add_store_options, feature_store_from, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create a new store (its bucket or folder)",
                       description=__doc__)
    add_store_options(p)
    p.add_argument("--example", action="store_true",
                   help="also write a commented feature repository with custom features "
                        "(feature_repo.yaml next to a local store, else in the working "
                        "directory)")
    p.add_argument("--repo", metavar="FILE.yaml",
                   help="with --example: where to write the repository")
    add_json_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.repo and not args.example:
        raise ConfigError("--repo names where --example writes the example repository: "
                          "add --example")
    fs = feature_store_from(args, None)
    result = fs.init()
    example = fs.write_example_repo(args.repo) if args.example else None
    if args.json:
        print_json({**result.to_dict(), "example": example and example.to_dict()})
        return 0
    if result.existed:
        print("the store already exists: nothing changed")
    else:
        made = (f"bucket {result.created_bucket}" if result.created_bucket
                else "folder" if result.created_folder else "nothing (the bucket exists)")
        print(f"created {made}" + ("" if example else
                                   f"; next: featurestore ingest RAW_ROOT --store {result.store}"))
    if example:
        print(f"{'wrote' if example.written else 'kept (unchanged)'} the example feature "
              f"repository {example.path}: table {example.table} with "
              f"{len(example.features)} custom features ({', '.join(example.features)})")
        print("next:")
        for command in example.next_commands:
            print(f"  {command}")
    return 0
