"""``featurestore show``: one customer's row of a feature table at an as-of date (latest by
default)."""

from __future__ import annotations

import argparse

from .._exceptions import NotFoundError
from ._common import add_store_options, feature_store_from, iso_date, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="print one customer's features", description=__doc__)
    add_store_options(p)
    p.add_argument("--table", default="customer_features", help="feature table to read")
    p.add_argument("--customer", required=True, help="customer id")
    p.add_argument("--as-of", type=iso_date, metavar="YYYY-MM-DD",
                   help="as-of date (default: the latest)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=run)


def _plain(value):
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return None
    if getattr(value, "ndim", 0) > 0:  # a list feature (top_k) arrives as a numpy array
        return [_plain(v) for v in value.tolist()]
    return value.item() if hasattr(value, "item") else value


def run(args: argparse.Namespace) -> int:
    fs = feature_store_from(args, "read")
    store = fs.offline_store
    df = fs.read_table(args.table, as_of=args.as_of, customer_id=args.customer)
    if df.empty:
        raise NotFoundError(f"customer {args.customer!r} has no row in {args.table} at "
                            f"{args.as_of or 'the latest as-of'}")
    as_of = args.as_of.isoformat() if args.as_of else \
        store.partitions(args.table, "as_of")[-1]
    rows = [{k: _plain(v) for k, v in r.items()} for r in df.to_dict("records")]
    if args.json:
        print_json(rows[0] if len(rows) == 1 else rows)
        return 0
    print(f"{args.table} as of {as_of}")
    for row in rows:
        for k, v in row.items():
            print(f"  {k:<34} {v}")
        print()
    return 0
