"""``featurestore run-daily``: the cron entry point - ingest, materialize, retrain on the
configured weekday (or ``--retrain``), notify."""

from __future__ import annotations

import argparse

from ._common import (
    add_cluster_options,
    add_json_option,
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
    add_json_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    fs = feature_store_from(args, "write", max_late_days=args.max_late_days)
    report = fs.run_daily(args.raw, force_retrain=args.retrain, today=args.today)
    if args.json:
        print_json(report)
    else:
        for line in summary(report):
            print(line)
    return 0 if report["ok"] else 1


def summary(report: dict) -> list[str]:
    """The daily report for a person, one line per step.

    Args:
        report: what :meth:`FeatureStore.run_daily` returned.

    Returns:
        The lines.
    """
    ingest = report.get("ingest") or {}
    lines = [f"run-daily for {report['today']}: {'ok' if report['ok'] else 'PROBLEMS'} "
             f"({report.get('seconds', 0):.1f} s)",
             f"  ingest: {ingest.get('files_ingested', 0)} file(s) ingested, "
             f"{ingest.get('files_skipped', 0)} skipped, {ingest.get('files_rejected', 0)} "
             f"rejected; {ingest.get('rows_ingested', 0):,} rows, "
             f"{ingest.get('rows_quarantined', 0):,} quarantined"]
    mat = ((report.get("materialize") or {}).get("result") or {}).get("as_of_written") or {}
    lines.append("  materialize: " + (", ".join(f"{t} {len(d)} as-of date(s)"
                                               for t, d in sorted(mat.items()))
                                     or "tables already up to date"))
    if not report.get("retrain_due"):
        lines.append("  retrain: not due today (--retrain forces it)")
    for job in report.get("retrain", []):
        if job["status"] == "skipped":
            lines.append(f"  retrain {job['model']}: retrain skipped: {job['reason']}")
            continue
        lines.append(f"  retrain {job['model']}: {job['status']} job {job['job_id']}"
                     + (f", version {job['model_version']}" if job.get("model_version") else "")
                     + (f": {job['error']}" if job.get("error") else ""))
    for p in report.get("predict", []):
        lines.append(f"  predict {p.get('model')}: {p.get('status')}"
                     + (f": {p['error']}" if p.get("error") else ""))
    online = report.get("online")
    if online:  # a shared online store (Redis) is configured
        lines.append(f"  online store: {online['status']}" + (
            f": {online['error']}; {online['hint']}" if online.get("error") else
            f", {online.get('rows_written', 0):,} customer(s) written"))
    return lines
