"""Incremental materialization cost: the drop of day 60 vs the drop of day 1.

One command (full size, as in docs/features.md):

    python benchmarks/features.py

``--small`` for a quick run. Generates a 60-day history, ingests drop 1 and times the
materialization it triggers, ingests drops 2..59 and materializes, then ingests drop 60 and
times its materialization again. Each timed materialization is repeated (its state record
restored in between, so it redoes exactly the same work) and the median is reported. Also: a
from-scratch build of all 60 as-of dates (rows/s) and peak memory of the client and workers.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from featurestore.cluster import dask_client
from featurestore.features import materialize
from featurestore.features.materialize import STATE_RECORD
from featurestore.generate import generate_weblog
from featurestore.ingest import ingest_weblog
from featurestore.storage import Store


def _peak_mb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss survives exec on Linux, so a
    spawned worker would report its parent's peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(store: Store, client, repeats: int) -> tuple[float, dict, list[float]]:
    """Median seconds of the materialization due now; the record is restored between runs."""
    record = Path(store.path(STATE_RECORD))
    saved = record.read_bytes() if record.exists() else None
    times, report = [], None
    for _ in range(repeats):
        if saved is None:
            record.unlink(missing_ok=True)
        else:
            record.write_bytes(saved)
        t = time.perf_counter()
        report = materialize(store, client=client)
        times.append(time.perf_counter() - t)
    return statistics.median(times), report.to_dict(), [round(x, 3) for x in times]


def _events_rows(store: Store, dates: list[str]) -> int:
    import pyarrow.parquet as pq

    n = 0
    for d in dates:
        for name in store.listdir("events", f"event_date={d}"):
            n += pq.ParquetFile(store.path("events", f"event_date={d}", name)).metadata.num_rows
    return n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--customers", type=int, default=20_000)
    p.add_argument("--rows-per-day", type=int, default=20_000)
    p.add_argument("--late-fraction", type=float, default=0.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--small", action="store_true", help="3,000 customers, 3,000 rows/day")
    p.add_argument("--workdir", default=None)
    args = p.parse_args()
    if args.small:
        args.customers, args.rows_per_day = 3_000, 3_000
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fs-bench-features-"))
    shutil.rmtree(work, ignore_errors=True)
    raw, stage, store = work / "raw", work / "stage", Store(str(work / "store"))
    t = time.perf_counter()
    gen = generate_weblog(str(raw), days=args.days, customers=args.customers, products=200,
                          rows_per_day=args.rows_per_day, parts=2, seed=3,
                          late_fraction=args.late_fraction)
    print(f"generated {gen.lines:,} lines over {args.days} days in "
          f"{time.perf_counter() - t:.1f} s", flush=True)
    days = sorted(d.name for d in raw.iterdir())
    stage.mkdir(parents=True)

    with dask_client(workers=args.workers) as client:
        def deliver(names: list[str]) -> None:
            for name in names:
                shutil.copytree(raw / name, stage / name)
            ingest_weblog(str(stage), store, client=client, progress=False)

        # Warm the workers (imports, first pyarrow/pandas calls) so day 1 is not charged for it.
        client.run(lambda: __import__("featurestore.features.materialize"))
        deliver(days[:1])
        first_s, first, first_all = _timed(store, client, args.repeats)
        # Day 31: the first drop whose 30-day window is full (same work as any later day).
        mid = 30
        deliver(days[1:mid])
        materialize(store, client=client)
        deliver(days[mid:mid + 1])
        mid_s, _, mid_all = _timed(store, client, args.repeats)
        deliver(days[mid + 1:-1])
        materialize(store, client=client)
        deliver(days[-1:])
        last_s, last, last_all = _timed(store, client, args.repeats)

        # From scratch: every as-of date of the 60-day history in one run.
        Path(store.path(STATE_RECORD)).unlink()
        t = time.perf_counter()
        full = materialize(store, client=client).to_dict()
        full_s = time.perf_counter() - t
        worker_peak = max(client.run(_peak_mb).values())

    rows_first = _events_rows(store, first["daily_dates"])
    rows_last = _events_rows(store, last["daily_dates"])
    rows_all = _events_rows(store, full["daily_dates"])
    figures = {
        "history_days": args.days, "customers": args.customers,
        "rows_per_day": args.rows_per_day, "late_fraction": args.late_fraction,
        "workers": args.workers,
        "day1_seconds": round(first_s, 3), "day1_as_of_written": len(
            first["as_of_written"].get("customer_features", [])),
        "day1_runs": first_all, "day31_runs": mid_all, "day60_runs": last_all,
        "day31_seconds": round(mid_s, 3),
        "ratio_day60_vs_day31": round(last_s / mid_s, 3),
        "day60_seconds": round(last_s, 3), "day60_as_of_written": len(
            last["as_of_written"].get("customer_features", [])),
        "ratio_day60_vs_day1": round(last_s / first_s, 3),
        "day1_event_rows_per_s": round(rows_first / first_s),
        "day60_event_rows_per_s": round(rows_last / last_s),
        "from_scratch_seconds": round(full_s, 3),
        "from_scratch_event_rows_per_s": round(rows_all / full_s),
        "from_scratch_rows_written": full["rows_written"],
        "peak_rss_mb_client": round(_peak_mb(), 1),
        "peak_rss_mb_worker": round(worker_peak, 1),
    }
    print(f"day 1:  {first_s:.2f} s ({figures['day1_as_of_written']} as-of date)")
    print(f"day {args.days}: {last_s:.2f} s ({figures['day60_as_of_written']} as-of date(s))")
    print(f"ratio day {args.days} / day 1: {figures['ratio_day60_vs_day1']:.2f} "
          f"(target <= 1.2)")
    print(f"day 31: {mid_s:.2f} s (first day with a full 30-day window); "
          f"ratio day {args.days} / day 31: {figures['ratio_day60_vs_day31']:.2f}")
    print(f"from scratch, {args.days} as-of dates: {full_s:.1f} s, "
          f"{figures['from_scratch_event_rows_per_s']:,} event rows/s")
    print(f"peak RSS: client {figures['peak_rss_mb_client']} MB (includes generating the data), "
          f"worker {figures['peak_rss_mb_worker']} MB")
    print(json.dumps(figures))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
