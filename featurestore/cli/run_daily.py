"""``featurestore run-daily``: the cron entry point - ingest, materialize, retrain on the
configured weekday (or ``--retrain``), notify."""

from __future__ import annotations

import argparse

from ._common import (
    add_cluster_options,
    add_store_options,
    feature_store_from,
    iso_date,
    print_json,
)
from .ingest import days_count


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run-daily", help="daily cron job: ingest, materialize, retrain, notify",
                       description=__doc__)
    add_store_options(p)
    add_cluster_options(p)
    p.add_argument("--raw", required=True, help="web-log drops folder (or s3:// URL)")
    p.add_argument("--retrain", action="store_true", help="retrain today whatever the weekday")
    p.add_argument("--max-late-days", type=days_count, metavar="N",
                   help="quarantine hits dated more than N days before their drop's date as "
                        "too_old (FEATURESTORE_MAX_LATE_DAYS, default 30)")
    p.add_argument("--today", type=iso_date, metavar="YYYY-MM-DD",
                   help="pretend today is this date, for backfills (default: today, UTC)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    fs = feature_store_from(args, "write", max_late_days=args.max_late_days)
    report = fs.run_daily(args.raw, force_retrain=args.retrain, today=args.today)
    print_json(report)
    return 0 if report["ok"] else 1
