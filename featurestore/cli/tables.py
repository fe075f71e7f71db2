"""``featurestore tables``: the feature tables of a store, their columns, as-of range, row
counts and freshness."""

from __future__ import annotations

import argparse

from ._common import add_store_options, feature_store_from, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tables", help="list feature tables", description=__doc__)
    add_store_options(p)
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    infos = feature_store_from(args, "read").tables()
    if args.json:
        print_json([t.to_dict() for t in infos])
        return 0
    if not infos:
        print("no feature tables yet: run featurestore ingest")
    for t in infos:
        print(f"{t.name}  key ({', '.join(t.key_columns)})  as-of {t.as_of_range[0]} .. "
              f"{t.as_of_range[1]} ({t.as_of_count} dates)  {t.rows_latest} rows at latest  "
              f"written {t.last_written}")
        for col, dtype in t.features.items():
            print(f"    {col:<34} {dtype}")
    return 0
