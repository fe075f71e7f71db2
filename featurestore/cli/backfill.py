"""``featurestore backfill``: (re)compute feature tables for history, e.g. after adding a feature
to the store's feature repository (``featurestore apply``). A table whose definition changed is
rebuilt whole, whatever the range."""

from __future__ import annotations

import argparse

from ._common import (
    add_cluster_options,
    add_date_range,
    add_store_options,
    feature_store_from,
    print_json,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backfill", help="recompute feature tables over a range of as-of dates",
                       description=__doc__)
    add_store_options(p)
    add_cluster_options(p)
    add_date_range(p, first="the first event date", last="the latest drop date")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    fs = feature_store_from(args, "write")
    report = fs.materialize(start=args.start, end=args.end, force=True)
    if args.json:
        print_json(report.to_dict())
    else:
        for table, dates in sorted(report.as_of_written.items()):
            print(f"{table}: {len(dates)} as-of date(s) {dates[0]} .. {dates[-1]}, "
                  f"{report.rows_written.get(table, 0)} rows")
        print(f"{len(report.daily_dates)} daily aggregate date(s); {report.seconds:.1f} s")
    return 0
