"""Incremental materialization cost: the drop of day 60 vs the drop of day 1.

One command (full size, as in docs/features.md):

    python benchmarks/features.py

``--small`` for a quick run. Generates a 60-day history and prepares three stores: one that has
just ingested drop 1, one that has materialized drops 1..30 and just ingested drop 31 (the
first whose 30-day window is full) and one that has materialized 1..59 and just ingested 60.
Then, in ``--repeats`` rounds, times the materialization each store has due, side by side
(the files it wrote removed and its state record restored before every run, so each redoes
exactly the same work from the same start): the ratio day 60 / day 1 is the median of the
per-round ratios, so a drift of the machine's speed between rounds cancels out (one warm-up
round first, not counted). Also: a from-scratch build of all 60 as-of dates (rows/s) and peak
memory of the client and workers.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from featurestore.cluster import dask_client
from featurestore.features.materialize import STATE_RECORD
from featurestore.generate import generate_weblog
from featurestore.materialization import materialize
from featurestore.sources.weblog.ingest import ingest_weblog
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


class _Due:
    """A store with one materialization due; :meth:`run` redoes exactly that one, from the
    same starting point: the files that run wrote are removed and the state record restored
    first, so each run creates its outputs as a real run does (overwriting them instead costs
    more on some filesystems, and more for bigger files)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.record = Path(store.path(STATE_RECORD))
        self.saved = self.record.read_bytes() if self.record.exists() else None
        self.files = set(store.find())
        self.times: list[float] = []
        self.report: dict = {}

    def run(self, client) -> float:
        for name in set(self.store.find()) - self.files:
            os.remove(self.store.path(name))
        if self.saved is None:
            self.record.unlink(missing_ok=True)
        else:
            self.record.write_bytes(self.saved)
        t = time.perf_counter()
        self.report = materialize(self.store, client=client).to_dict()
        self.times.append(time.perf_counter() - t)
        return self.times[-1]


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 3) for v in values]


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
    p.add_argument("--repeats", type=int, default=15, help="timed rounds")
    p.add_argument("--small", action="store_true", help="3,000 customers, 3,000 rows/day")
    p.add_argument("--workdir", default=None)
    args = p.parse_args()
    if args.small:
        args.customers, args.rows_per_day = 3_000, 3_000
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fs-bench-features-"))
    shutil.rmtree(work, ignore_errors=True)
    raw = work / "raw"
    t = time.perf_counter()
    gen = generate_weblog(str(raw), days=args.days, customers=args.customers, products=200,
                          rows_per_day=args.rows_per_day, parts=2, seed=3,
                          late_fraction=args.late_fraction)
    print(f"generated {gen.lines:,} lines over {args.days} days in "
          f"{time.perf_counter() - t:.1f} s", flush=True)
    days = sorted(d.name for d in raw.iterdir())
    mid = 31  # the first drop whose 30-day window is full (same work as any later day)

    with dask_client(workers=args.workers) as client:
        def prepare(name: str, upto: int) -> _Due:
            """A store that has materialized drops 1..upto-1 and just ingested drop upto."""
            stage, store = work / name / "stage", Store(str(work / name / "store"))
            stage.mkdir(parents=True)

            def deliver(names: list[str]) -> None:
                for day in names:  # hard links: the drops are not copied
                    shutil.copytree(raw / day, stage / day, copy_function=os.link)
                ingest_weblog(str(stage), store, client=client, progress=False)

            if upto > 1:
                deliver(days[:upto - 1])
                materialize(store, client=client)
            deliver(days[upto - 1:upto])
            return _Due(store)

        # Warm the workers (imports, first pyarrow/pandas calls) so day 1 is not charged for it.
        client.run(lambda: __import__("featurestore.features.materialize"))
        t = time.perf_counter()
        first, middle, last = prepare("day1", 1), prepare("day31", mid), prepare("day60", args.days)
        print(f"prepared the three stores in {time.perf_counter() - t:.1f} s", flush=True)
        for due in (first, middle, last):  # one warm-up round, not counted
            due.run(client)
            due.times.clear()
        ratios, mid_ratios = [], []
        for _ in range(args.repeats):  # side by side: one run of each per round
            day1 = first.run(client)
            ratios.append(last.run(client) / day1)
            mid_ratios.append(last.times[-1] / middle.run(client))
        first_s, mid_s, last_s = (statistics.median(d.times) for d in (first, middle, last))

        # From scratch: every as-of date of the 60-day history in one run.
        Path(last.store.path(STATE_RECORD)).unlink()
        t = time.perf_counter()
        full = materialize(last.store, client=client).to_dict()
        full_s = time.perf_counter() - t
        worker_peak = max(client.run(_peak_mb).values())

    rows_first = _events_rows(first.store, first.report["daily_dates"])
    rows_last = _events_rows(last.store, last.report["daily_dates"])
    rows_all = _events_rows(last.store, full["daily_dates"])
    ratio, mid_ratio = statistics.median(ratios), statistics.median(mid_ratios)
    figures = {
        "history_days": args.days, "customers": args.customers,
        "rows_per_day": args.rows_per_day, "late_fraction": args.late_fraction,
        "workers": args.workers, "rounds": args.repeats,
        "day1_seconds": round(first_s, 3), "day1_as_of_written": len(
            first.report["as_of_written"].get("customer_features", [])),
        "day1_runs": _rounded(first.times), "day31_runs": _rounded(middle.times),
        "day60_runs": _rounded(last.times),
        "day31_seconds": round(mid_s, 3),
        "ratio_day60_vs_day31": round(mid_ratio, 3),
        "day60_seconds": round(last_s, 3), "day60_as_of_written": len(
            last.report["as_of_written"].get("customer_features", [])),
        "ratio_day60_vs_day1": round(ratio, 3),
        "ratio_day60_vs_day1_rounds": _rounded(ratios),
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
    print(f"ratio day {args.days} / day 1: {ratio:.2f} (target <= 1.2; median of the "
          f"per-round ratios {', '.join(f'{r:.2f}' for r in ratios)})")
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
