"""Materializing one day with many customers in history vs the same day with few (issue #18).

    python benchmarks/history_scale.py [--history 500000] [--active 5000] [--repeats 3]

Two stores with the same recent days: drops on day 40 and day 41 with ``--active`` customers
(ids ``C000000..``), and a day 1 with ``--history`` customers (the *big* store) or
``--active`` (the *small* one), older than the longest window, so the windows hold the same
data in both and only the history differs. Each store has materialized as-of dates 1..40 and
just ingested day 41; the day-41 materialization of each is timed side by side (the files it
wrote removed and its record restored before every run, as ``benchmarks/features.py`` does;
one warm-up round), and the script prints the ratio big / small (median of the per-round
ratios; the issue's target: at most 1.2), each side's peak worker RSS during its runs, and
the bytes the day wrote per kind: feature tables, customer state, everything else. Narrow
drops (12 columns) keep the generation short: materialization never sees the raw width.
The workers are restarted after the preparation, so the peak RSS is the day's, not that of
ingesting the history.

The whole command too: the user's daily ``featurestore ingest <raw> --store S --scheduler
tcp://...`` of day 41 (ingest the day, then materialize it) against the same running
cluster, from a copy of each store taken before day 41 was ingested (hard links: a store
publishes by rename, never writing a file in place), timed big vs small in the same rounds
(``--command-repeats``; 0 skips it) and printed beside the materialize-only ratio. It
includes the CLI's start (Python, imports), the same on both sides.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH: run against any checkout

from benchmarks.features import _Due, _peak_mb  # noqa: E402
from featurestore.cluster import dask_client  # noqa: E402
from featurestore.generate import generate_weblog  # noqa: E402
from featurestore.materialization import materialize  # noqa: E402
from featurestore.sources.weblog.ingest import ingest_weblog  # noqa: E402
from featurestore.storage import Store  # noqa: E402

DAY1 = dt.date(2026, 1, 1)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _bytes_written(due: _Due) -> dict[str, int]:
    """Bytes of the files the last run wrote, by kind."""
    out = {"features": 0, "customer_state": 0, "other": 0}
    for name in set(due.store.find()) - due.files:
        size = Path(due.store.path(name)).stat().st_size
        kind = ("customer_state" if name.startswith("_state/customer/")
                else "other" if name.startswith("_") else "features")
        out[kind] += size
    return out


def _floor(store: Store, day: dt.date, repeats: int) -> float:
    """Seconds to write the day's ``customer_features`` table alone (read back, written again
    the way the materialization writes it, to a scratch folder; median after a warm-up): the
    part of the day that must grow with the history (one row per customer ever seen)."""
    import pyarrow.parquet as pq

    from featurestore.features._io import write_arrow

    table = pq.read_table(store.path("customer_features", f"as_of={day.isoformat()}"))
    with tempfile.TemporaryDirectory(prefix="fs-floor-") as scratch:
        out, times = Store(scratch), []
        for _ in range(repeats + 1):
            t = time.perf_counter()
            write_arrow(out, table, "customer_features", "as_of=x", "part-0.parquet",
                        unique=("customer_id",))
            times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def _command(before: Path, raw: Path, run: Path, scheduler: str) -> float:
    """Seconds of ``featurestore ingest raw --store run --scheduler ...`` on a fresh copy of
    ``before`` (hard links; checked untouched afterwards)."""
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(before, run, copy_function=os.link)
    record = (before / "_state" / "materialize.json").read_bytes()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "featurestore", "ingest", str(raw),
                           "--store", str(run), "--scheduler", scheduler],
                          capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t
    if done.returncode:
        raise SystemExit(f"featurestore ingest failed ({done.returncode}): {done.stderr[-2000:]}")
    if (before / "_state" / "materialize.json").read_bytes() != record:
        raise SystemExit(f"{before} changed under a run: hard-linked copies are not safe here")
    return seconds


def _command_rounds(work: Path, sides: dict[str, Path], scheduler: str,
                    repeats: int) -> dict[str, list[float]]:
    """The whole daily command, small then big per round, after one warm-up each."""
    times: dict[str, list[float]] = {n: [] for n in sides}
    if not repeats:
        return times
    for name, raw in sides.items():  # warm-up
        _command(work / name / "before41", raw, work / name / "command", scheduler)
    for _ in range(repeats):
        for name in ("small", "big"):
            times[name].append(_command(work / name / "before41", sides[name],
                                        work / name / "command", scheduler))
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--history", type=int, default=500_000, help="customers of day 1 (big)")
    p.add_argument("--active", type=int, default=5_000, help="customers of day 2")
    p.add_argument("--rows-per-customer", type=float, default=3.0,
                   help="day-1 rows per history customer (covers most of them)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--command-repeats", type=int, default=3,
                   help="rounds of the whole daily command (0: skip)")
    p.add_argument("--workdir", default=None)
    args = p.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="fs-bench-history-"))
    shutil.rmtree(work, ignore_errors=True)
    t = time.perf_counter()
    recent = work / "recent"
    for n, seed in ((39, 7), (40, 8)):  # days 40 and 41
        generate_weblog(str(recent), days=1, customers=args.active, products=200,
                        rows_per_day=4 * args.active, parts=2, seed=seed,
                        start=DAY1 + dt.timedelta(n), columns=12)
    sides = {}
    for name, customers in (("big", args.history), ("small", args.active)):
        raw = work / name / "raw"
        generate_weblog(str(raw), days=1, customers=customers, products=200,
                        rows_per_day=int(args.rows_per_customer * customers), parts=4, seed=5,
                        start=DAY1, columns=12)
        sides[name] = raw
    print(f"generated in {time.perf_counter() - t:.1f} s", flush=True)
    day40, day41 = (DAY1 + dt.timedelta(n) for n in (39, 40))

    with dask_client(workers=args.workers) as client:
        client.run(lambda: __import__("featurestore.features.materialize"))
        dues = {}
        for name, raw in sides.items():
            store = Store(str(work / name / "store"))
            for day in (None, day40, day41):  # day 1, then 40 (as-of 1..40), then 41: due
                if day is not None:
                    shutil.copytree(recent / day.isoformat(), raw / day.isoformat())
                ingest_weblog(str(raw), store, client=client, progress=False)
                if day != day41:
                    materialize(store, client=client)
                if day == day40:  # the store as the daily command finds it on day 41
                    shutil.copytree(work / name / "store", work / name / "before41")
            dues[name] = _Due(store)
        history = {n: len(pd.read_parquet(d.store.path(
            "customer_features", f"as_of={day40.isoformat()}"))) for n, d in dues.items()}
        active = pd.read_parquet(dues["big"].store.path(
            "events", f"event_date={day41.isoformat()}"))["customer_id"].nunique()
        print(f"customers in history: big {history['big']:,}, small {history['small']:,}; "
              f"active on the day: {active:,}; prepared in {time.perf_counter() - t:.1f} s",
              flush=True)
        client.restart()  # the peak RSS is the day's, not the preparation's
        client.run(lambda: __import__("featurestore.features.materialize"))
        for due in dues.values():  # warm-up, not counted
            due.run(client)
            due.times.clear()
        peaks = {n: 0.0 for n in dues}
        ratios = []
        for _ in range(args.repeats):
            for name in ("small", "big"):
                client.run(_reset_peak)
                dues[name].run(client)
                peaks[name] = max(peaks[name], max(client.run(_peak_mb).values()))
            ratios.append(dues["big"].times[-1] / dues["small"].times[-1])
        written = {n: _bytes_written(d) for n, d in dues.items()}
        floors = {n: _floor(d.store, day41, args.repeats) for n, d in dues.items()}
        commands = _command_rounds(work, sides, client.scheduler.address, args.command_repeats)
    figures = {
        "history_customers": history, "active_customers": active,
        "seconds": {n: round(statistics.median(d.times), 3) for n, d in dues.items()},
        "runs": {n: [round(x, 3) for x in d.times] for n, d in dues.items()},
        "ratio_big_vs_small": round(statistics.median(ratios), 3),
        "ratio_rounds": [round(r, 3) for r in ratios],
        "peak_worker_rss_mb": {n: round(v, 1) for n, v in peaks.items()},
        "bytes_written": written,
        "table_write_seconds": {n: round(v, 3) for n, v in floors.items()},
        "command_seconds": {n: [round(x, 3) for x in v] for n, v in commands.items()},
    }
    if args.command_repeats:
        command_ratios = [b / s for b, s in zip(commands["big"], commands["small"], strict=True)]
        figures["command_ratio_big_vs_small"] = round(statistics.median(command_ratios), 3)
        figures["command_ratio_rounds"] = [round(r, 3) for r in command_ratios]
    for n in ("small", "big"):
        print(f"{n:5s}: {history[n]:>9,} customers in history, day 41 {figures['seconds'][n]:.2f} s"
              f" (runs {figures['runs'][n]}), peak worker RSS {figures['peak_worker_rss_mb'][n]}"
              f" MB, wrote {written[n]}")
    print(f"ratio big / small: {figures['ratio_big_vs_small']:.2f} (target <= 1.2; rounds "
          f"{', '.join(f'{r:.2f}' for r in ratios)})")
    print(f"floor, writing the day's customer_features table alone: small "
          f"{floors['small']:.2f} s, big {floors['big']:.2f} s; the big day without it "
          f"{figures['seconds']['big'] - floors['big']:.2f} s vs the small day "
          f"{figures['seconds']['small']:.2f} s")
    if args.command_repeats:
        print(f"whole daily command (featurestore ingest of day 41, then its materialization): "
              f"small {statistics.median(commands['small']):.2f} s, big "
              f"{statistics.median(commands['big']):.2f} s, ratio big / small "
              f"{figures['command_ratio_big_vs_small']:.2f} (rounds "
              f"{', '.join(f'{r:.2f}' for r in figures['command_ratio_rounds'])}); "
              f"materialize only: {figures['ratio_big_vs_small']:.2f}")
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")
    print(json.dumps(figures))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
