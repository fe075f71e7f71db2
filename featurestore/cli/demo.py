"""``featurestore demo``: the whole pipeline on synthetic data, no cloud account needed.

generate -> ingest (local Dask cluster, local parquet) -> materialize feature tables ->
point-in-time training set export -> local retrain into the model registry -> serve the API
(until Ctrl-C; ``--no-serve`` exits after the pipeline). Prints where everything is and what
to try next.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .._exceptions import ConfigError, TrainingError

if TYPE_CHECKING:
    from ..storage import Store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on a synthetic data set",
                       description=__doc__)
    p.add_argument("--workdir", default="./featurestore-demo",
                   help="folder for raw drops, the store and exports; replaced only when the "
                        "demo made it")
    p.add_argument("--force", action="store_true",
                   help="replace --workdir even when it holds files the demo did not make")
    p.add_argument("--no-serve", action="store_true",
                   help="exit after the pipeline instead of serving the API")
    p.add_argument("--host", default=None, help="API interface (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="API port (default 8000)")
    p.add_argument("--days", type=int, default=45, help="daily drops to generate")
    p.add_argument("--customers", type=int, default=3_000, help="distinct customers")
    p.add_argument("--rows-per-day", type=int, default=8_000, help="web-log hits per drop")
    p.add_argument("--workers", type=int, default=2, help="local Dask worker processes")
    p.set_defaults(handler=run)


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


#: Written into a demo's work folder, so a later run may replace it without asking.
MARKER = ".featurestore-demo"


def _prepare(work: Path, force: bool) -> None:
    """Empty ``work`` for a new demo: only a folder the demo made (its marker), an empty one,
    or with ``--force``; anything else is the user's and stays."""
    if work.exists() and any(work.iterdir()):
        if not (work / MARKER).exists() and not force:
            raise ConfigError(f"--workdir {work} is not empty and was not made by the demo; "
                              "choose another folder or pass --force to replace it")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / MARKER).write_text("made by featurestore demo; the next demo run may replace it\n")


def run(args: argparse.Namespace) -> int:
    from ..cluster import dask_client
    from ..feature_store import FeatureStore
    from ..generate import generate_weblog
    from ..settings import load_settings

    work = Path(args.workdir).resolve()
    _prepare(work, args.force)
    raw = work / "raw"
    fs = FeatureStore(load_settings(store=str(work / "store"), workers=args.workers))
    store = fs.offline_store

    t = _step(f"generate {args.days} daily drops of 1,057 columns into {raw}")
    gen = generate_weblog(str(raw), days=args.days, customers=args.customers,
                          rows_per_day=args.rows_per_day, parts=2, seed=7, bad_rows=0.001,
                          late_fraction=0.02)
    print(f"   {gen.files} files, {gen.lines:,} lines ({time.perf_counter() - t:.1f} s)")

    with dask_client(workers=args.workers) as client:
        fs = FeatureStore(fs.settings, client=client)  # one cluster for every step below
        t = _step(f"ingest into {store.url} on a local Dask cluster ({args.workers} "
                  "workers), then materialize every as-of date")
        result = fs.ingest(str(raw), progress=False)
        report, mat = result.report, result.materialize
        print(f"   {report.files_ingested} files, {report.rows_ingested:,} rows, "
              f"{report.rows_quarantined} quarantined, {report.rows_excluded} excluded "
              f"({report.seconds:.1f} s)")
        for table, dates in sorted(mat.as_of_written.items()):
            print(f"   {table}: {len(dates)} as-of dates {dates[0]} .. {dates[-1]}, "
                  f"{mat.rows_written.get(table, 0):,} rows")
        t = _step("ingest again: nothing new, every file is skipped (exactly once)")
        again = fs.ingest(str(raw), progress=False)
        print(f"   {again.report.files_ingested} ingested, {again.report.files_skipped} "
              f"skipped; materialized: {again.materialize.as_of_written or 'nothing to do'}")

        t = _step("export a point-in-time training set for XGBoost (CSV, split by time)")
        export_dir = work / "exports" / "purchase-xgboost"
        try:
            # gap_days=0: the demo's short history would leave no as-of date after a 30-day
            # purge between the splits.
            meta = fs.training_set(str(export_dir), gap_days=0)["metadata"]
        except TrainingError as exc:  # e.g. --days too small for any complete label window
            meta = None
            print(f"   skipped: {exc}")
        else:
            print(f"   {export_dir}: rows {meta['rows']}, positive rate "
                  f"{meta['positive_rate']['train']:.4f}, scale_pos_weight "
                  f"{meta['scale_pos_weight']:.1f} ({time.perf_counter() - t:.1f} s)")

    if meta is not None:
        t = _step("retrain purchase-xgboost on the local backend and register it")
        job = fs.retrain("purchase-xgboost", export_url=str(export_dir))
        metrics = {k: round(v, 4) for k, v in (job.get("metrics") or {}).items()
                   if k in ("pr_auc", "roc_auc", "positive_rate")}
        print(f"   job {job['job_id']}: {job['status']} {metrics} -> model version "
              f"{job.get('model_version')} ({time.perf_counter() - t:.1f} s)")
        reason = (job.get("alert") or {}).get("not_promoted_reason")
        if reason:  # e.g. a tiny --days run that learned nothing: registered, not promoted
            print(f"   not promoted: {reason}")
    tables = {t.name: t for t in fs.tables()}
    latest = tables["customer_features"].as_of_range[1] if "customer_features" in tables else ""
    # The newest as-of date whose 30-day label window is complete.
    labelled = (dt.date.fromisoformat(str(latest)) - dt.timedelta(days=30)) if latest else ""

    print(f"""
== done. Everything is under {work}
   raw drops:   {raw}
   events:      {store.uri('events')}   (hive-partitioned by event_date)
   quarantine:  {store.uri('_quarantine/weblog')}
   features:    {store.uri('customer_features')}, {store.uri('customer_product_features')}
                (hive-partitioned by as_of, latest {latest})

Try:
   python -c "import pandas as pd; print(pd.read_parquet('{store.uri('events')}').head())"
   featurestore ingest {raw} --store {store.url} --json
   featurestore tables --store {store.url}
   featurestore show --store {store.url} --table customer_features --customer C000001
   featurestore backfill --store {store.url} --from {latest}
   featurestore models --store {store.url}
   featurestore jobs --store {store.url}
   featurestore training-set --store {store.url} --from {labelled} --to {labelled} --out {work}/ts --format parquet
""")
    if not args.no_serve:
        _serve(store, args)
    return 0


def _serve(store: Store, args: argparse.Namespace) -> None:
    """Last step: serve the store over HTTP until Ctrl-C."""
    from ..settings import load_settings
    from .serve import example_customer, serve_api, try_urls

    settings = load_settings(store=store.url, host=args.host, port=args.port)
    base = f"http://{settings.host}:{settings.port}"
    _step(f"serve the API on {base} (Ctrl-C to stop)")
    if not store.partitions("customer_features", "as_of"):
        print("   no customer_features yet: /ready answers 503 until features are materialized")
    cid = example_customer(store)
    print("   try:")
    for url in try_urls(base, cid):
        print(f"     curl -s '{url}'")
    print(f"     curl -s -X POST {base}/features/batch -H 'content-type: application/json' "
          f"-d '{{\"customer_ids\": [\"{cid}\", \"nobody\"]}}'")
    try:
        serve_api(settings, log_level="warning")
    except KeyboardInterrupt:
        pass
