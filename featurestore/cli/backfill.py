"""``featurestore backfill``: (re)compute feature tables for history, e.g. after adding a feature
to the store's feature repository (``featurestore apply``). A table whose definition changed is
rebuilt whole, whatever the range. First, a column the repository declares (SPEC §3a) that
ingested events lack is filled from the raw drops the ledger recorded (``--raw`` when they have
moved), exactly once; where a raw file is gone, the report says from which date the column is
complete."""

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
    p.add_argument("--raw", metavar="RAW_ROOT",
                   help="where the raw drops are now, to fill newly declared columns "
                        "(default: where the ledger recorded each file)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    fs = feature_store_from(args, "write")
    columns = fs.backfill_columns(raw=args.raw)
    report = fs.materialize(start=args.start, end=args.end, force=True)
    if args.json:
        print_json({**report.to_dict(), "columns": columns.to_dict()})
    else:
        _print_columns(columns)
        for table, dates in sorted(report.as_of_written.items()):
            print(f"{table}: {len(dates)} as-of date(s) {dates[0]} .. {dates[-1]}, "
                  f"{report.rows_written.get(table, 0)} rows")
        print(f"{len(report.daily_dates)} daily aggregate date(s); {report.seconds:.1f} s")
    return 0


def _print_columns(report) -> None:
    """The declared columns' lines: what was filled, what could not be, completeness."""
    if report.columns:
        print(f"declared column(s) {', '.join(report.columns)} filled from the raw drops: "
              f"{report.files_rewritten} events file(s), {report.rows_filled} rows"
              + (f", {report.rows_unfilled} rows left null" if report.rows_unfilled else ""))
    for item in report.raw_unavailable:
        print(f"cannot fill from {item['file']}: {item['reason']}")
    for item in report.raw_not_retried:
        print(f"not retried: {item['file']}: {item['reason']} at an earlier backfill "
              "(give --raw where the drops are now to try it again)")
    for column, info in report.completeness.items():
        if info["complete_from"]:
            print(f"column {column} ({info['type']}) is complete from {info['complete_from']} "
                  "(earlier dates hold rows whose raw file is gone)")
