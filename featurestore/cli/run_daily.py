"""``featurestore run-daily``: the cron entry point - ingest, materialize, retrain on the
configured weekday (or ``--retrain``), notify."""

from __future__ import annotations

import argparse
import datetime as dt

from ..retrain.daily import run_daily
from ._common import add_cluster_options, add_store_options, print_json, settings_from, store_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run-daily", help="daily cron job: ingest, materialize, retrain, notify",
                       description=__doc__)
    add_store_options(p)
    add_cluster_options(p)
    p.add_argument("--raw", required=True, help="web-log drops folder (or s3:// URL)")
    p.add_argument("--retrain", action="store_true", help="retrain today whatever the weekday")
    p.add_argument("--today", help="pretend today is this date (YYYY-MM-DD), for backfills")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = store_from(settings, "write")
    today = dt.date.fromisoformat(args.today) if args.today else None
    report = run_daily(store, args.raw, settings=settings, force_retrain=args.retrain,
                       today=today)
    print_json(report)
    return 0 if report["ok"] else 1
