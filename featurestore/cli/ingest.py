"""``featurestore ingest``: ingest every new drop exactly once, then bring tables up to date."""

from __future__ import annotations

import argparse
import sys

from ..cluster import dask_client
from ..features import materialize
from ..ingest import IngestReport, ingest_weblog
from ..sources.retail import ingest_retail
from ..storage import parse_storage_options
from ._common import add_cluster_options, add_store_options, print_json, settings_from, store_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="ingest new raw files into the store",
                       description=__doc__)
    p.add_argument("raw_root", help="web-log drops folder (or s3:// URL); with --source retail "
                                   "an Online Retail CSV (.csv or .csv.gz)")
    add_store_options(p)
    add_cluster_options(p)
    p.add_argument("--source", choices=["weblog", "retail"], default="weblog")
    p.add_argument("--raw-storage-option", action="append", metavar="KEY=VALUE", default=[],
                   help="fsspec option for the raw root when it differs from the store's")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = store_from(settings, "write")
    raw_options = parse_storage_options(args.raw_storage_option) or None
    # One Dask client and one hold of the store lock for ingest and the materialization that
    # brings every table up to date (no other writer can run between the two).
    with dask_client(settings.scheduler, settings.workers) as client, \
            store.lock(f"ingest {args.source} + materialize"):
        if args.source == "retail":
            retail = ingest_retail(args.raw_root, store, client=client,
                                   storage_options=raw_options)
            mat = materialize(store, client=client, repo=settings.feature_repo)
            out = {**retail.to_dict(), "materialize": mat.to_dict()}
            if args.json:
                print_json(out)
            else:
                print(f"retail: ingested {retail.files_ingested} file(s), skipped "
                      f"{retail.files_skipped}; {retail.rows_ingested} rows kept of "
                      f"{retail.rows_read}; {_summary(mat)}")
            return 0
        report = ingest_weblog(args.raw_root, store, client=client,
                               raw_storage_options=raw_options, progress=args.progress)
        mat = materialize(store, client=client, repo=settings.feature_repo)
    report.extra["materialize"] = mat.to_dict()
    emit_report(report, args.json)
    if not args.json:
        print(_summary(mat))
    return 0 if report.ok else 1


def _summary(mat) -> str:
    written = ", ".join(f"{t} {len(d)} as-of date(s)" for t, d in sorted(
        mat.as_of_written.items())) or "tables already up to date"
    return f"materialized: {written} ({mat.seconds:.1f} s)"


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
