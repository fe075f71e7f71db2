"""``featurestore predict``: score every customer of an as-of snapshot with the production
model into ``<store>/predictions/model=<name>/as_of=D/`` (exactly once per version and as-of)."""

from __future__ import annotations

import argparse

from ._common import (
    add_cluster_options,
    add_store_options,
    feature_store_from,
    iso_date,
    print_json,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="score every customer with the production model",
                       description=__doc__)
    add_store_options(p)
    add_cluster_options(p)
    p.add_argument("--model", default="purchase-xgboost",
                   help="registered classifier (default purchase-xgboost)")
    p.add_argument("--as-of", dest="as_of", type=iso_date, metavar="YYYY-MM-DD",
                   help="snapshot to score (default: the latest)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = feature_store_from(args, "read").predict(model=args.model, as_of=args.as_of)
    if args.json:
        print_json(report.to_dict())
    elif report.status == "skipped":
        print(f"{report.model} {report.model_version} already scored as_of={report.as_of} "
              f"({report.rows:,} customers): nothing written; {report.path}")
    else:
        print(f"scored {report.rows:,} customers as_of={report.as_of} with {report.model} "
              f"{report.model_version} in {report.seconds:.1f} s: {report.path}")
    return 0
