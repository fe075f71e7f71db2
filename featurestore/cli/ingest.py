"""``featurestore ingest``: ingest every new drop exactly once, then bring tables up to date."""

from __future__ import annotations

import argparse
import sys

from ..ingest import IngestReport, ingest_weblog
from ..storage import parse_storage_options
from ._common import add_cluster_options, add_store_options, print_json, settings_from, store_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="ingest new raw files into the store",
                       description=__doc__)
    p.add_argument("raw_root", help="web-log drops folder (or s3:// URL)")
    add_store_options(p)
    add_cluster_options(p)
    p.add_argument("--source", choices=["weblog"], default="weblog")
    p.add_argument("--raw-storage-option", action="append", metavar="KEY=VALUE", default=[],
                   help="fsspec option for the raw root when it differs from the store's")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = store_from(settings)
    raw_options = parse_storage_options(args.raw_storage_option) or None
    report = ingest_weblog(args.raw_root, store, scheduler=settings.scheduler,
                           workers=settings.workers, raw_storage_options=raw_options,
                           progress=args.progress)
    emit_report(report, args.json)
    return 0 if report.ok else 1


def emit_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
    else:
        print(f"ingested {report.files_ingested} file(s), skipped {report.files_skipped} "
              f"already ingested, rejected {report.files_rejected}; "
              f"{report.rows_ingested} rows, {report.rows_quarantined} quarantined "
              f"({', '.join(f'{k} {v}' for k, v in report.quarantined_by_reason.items() if v)}"
              f"), {report.rows_excluded} excluded; {report.seconds:.1f} s")
    for r in report.rejected:
        print(f"rejected {r['file']}: {r['reason']}", file=sys.stderr)
