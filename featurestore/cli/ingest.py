"""``featurestore ingest``: ingest every new drop exactly once, then bring tables up to date."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ._common import add_cluster_options, add_store_options, feature_store_from, print_json

if TYPE_CHECKING:
    from ..sources.weblog.ingest import IngestReport


def days_count(value: str) -> int:
    """argparse type of ``--max-late-days``: a whole number of days, 0 or more.

    Args:
        value: the flag's text.

    Returns:
        The number of days.
    """
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of days >= 0, got {value!r}")
    return int(value)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="ingest new raw files into the store",
                       description=__doc__)
    p.add_argument("raw_root", help="web-log drops folder (or s3:// URL); with --source retail "
                                   "an Online Retail CSV (.csv or .csv.gz)")
    add_store_options(p)
    add_cluster_options(p)
    p.add_argument("--source", default="weblog",
                   help="what RAW_ROOT holds: weblog drops, a retail CSV, a source name of the "
                        "store's repository or a Source class's dotted path")
    p.add_argument("--raw-storage-option", action="append", metavar="KEY=VALUE", default=[],
                   help="fsspec option for the raw root when it differs from the store's")
    p.add_argument("--max-late-days", type=days_count, metavar="N",
                   help="quarantine hits dated more than N days before their drop's date as "
                        "too_old (FEATURESTORE_MAX_LATE_DAYS, default 30)")
    p.add_argument("--accept-changed", action="store_true",
                   help="replace the rows of files whose content changed since they were "
                        "ingested (without it such files are refused and the run exits 1)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..storage import parse_storage_options, store_errors

    fs = feature_store_from(args, "write", max_late_days=args.max_late_days)
    raw_options = parse_storage_options(args.raw_storage_option) or None
    # One hold of the store's lease for ingest and the materialization that brings every
    # table up to date (no other writer can run between the two): FeatureStore.ingest.
    with store_errors(fs.offline_store):
        result = fs.ingest(args.raw_root, source=args.source, raw_storage_options=raw_options,
                           progress=args.progress, accept_changed=args.accept_changed)
    mat = result.materialize
    if result.source == "retail":
        retail = result.report
        if args.json:
            print_json(result.to_dict())
        else:
            print(f"retail: ingested {retail.files_ingested} file(s), skipped "
                  f"{retail.files_skipped}; {retail.rows_ingested} rows kept of "
                  f"{retail.rows_read}; {_summary(mat)}")
        for c in retail.changed:
            print(f"changed {c['file']}: md5 {c['md5']} (ingested {c['ingested_md5']}); "
                  f"{c['action']}", file=sys.stderr)
        return 0 if result.ok else 1
    report = result.report
    report.extra["materialize"] = mat.to_dict()
    emit_report(report, args.json)
    if not args.json:
        print(_summary(mat))
    return 0 if result.ok else 1


def _summary(mat) -> str:
    written = ", ".join(f"{t} {len(d)} as-of date(s)" for t, d in sorted(
        mat.as_of_written.items())) or "tables already up to date"
    return f"materialized: {written} ({mat.seconds:.1f} s)"


def _reasons(by_reason: dict[str, int]) -> str:
    """`` (bad_date 3, too_old 1)``, or nothing when no row was quarantined."""
    shown = ", ".join(f"{k} {v}" for k, v in by_reason.items() if v)
    return f" ({shown})" if shown else ""


def emit_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
    else:
        print(f"ingested {report.files_ingested} file(s), skipped {report.files_skipped} "
              f"already ingested, rejected {report.files_rejected}, replaced "
              f"{report.files_replaced}, {len(report.duplicates)} duplicate(s), "
              f"{len(report.changed)} changed, {len(report.placeholders)} placeholder(s), "
              f"{len(report.missing)} missing; "
              f"{report.rows_ingested} rows, {report.rows_quarantined} quarantined"
              f"{_reasons(report.quarantined_by_reason)}, {report.rows_excluded} excluded; "
              f"{report.seconds:.1f} s")
        if report.column_bad_values:  # declared columns (SPEC §3a): values stored as null
            print("declared columns, bad values (stored as null): " + ", ".join(
                f"{c} {n}" for c, n in report.column_bad_values.items()))
        for m in report.columns_missing:
            print(f"declared column {m['column']} is not in drop {m['drop']}'s "
                  f"column_headers.tsv: null for that drop ({m['files']} file(s))")
    for line in report.problems():
        print(line, file=sys.stderr)
    for d in report.duplicates:
        print(f"duplicate {d['file']}: same content as {d['same_as']}, not ingested again",
              file=sys.stderr)
    if report.incomplete_drops:
        print(f"incomplete drop(s): {', '.join(report.incomplete_drops)}", file=sys.stderr)
