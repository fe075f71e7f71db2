"""Events compaction (issue #14 item 2): files per partition and the merge's cost, side by side.

    PYTHONPATH=. python benchmarks/compaction.py [--days 3] [--parts 16] [--rows 40000]
                                                 [--rounds 2] [--workers 2]

Generates ``--days`` daily drops of ``--parts`` files each (late hits included), then per round
ingests them into two empty stores on one running LocalCluster: compaction off (the layout of
before: a part per raw file per date) and on (one file per date per run). Prints, per round,
files per event date in both stores, their mean file size, the ingest seconds of both, the
compaction step's seconds (``report.extra["compaction"]["seconds"]``: merge tasks, records and
deletes) and its share of the ingest, and the load average. Ingest only (no materialization).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _files(store: Path) -> tuple[float, float, int]:
    """(files per event date, mean file KB, dates) of a store's events."""
    dates = [p for p in (store / "events").iterdir() if p.is_dir()]
    files = [f for d in dates for f in d.glob("*.parquet")]
    return (len(files) / len(dates), statistics.mean(f.stat().st_size for f in files) / 1024,
            len(dates))


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--parts", type=int, default=16, help="raw files per drop")
    ap.add_argument("--rows", type=int, default=40_000, help="rows per day")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", default=str(ROOT / "benchmarks" / "_work" / "compaction"))
    args = ap.parse_args(argv)

    from distributed import Client

    from featurestore.cluster import local_cluster
    from featurestore.generate import generate_weblog
    from featurestore.sources.weblog.ingest import ingest_weblog
    from featurestore.storage import Store

    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    raw = work / "raw"
    generate_weblog(str(raw), days=args.days, customers=5_000, products=200,
                    rows_per_day=args.rows, parts=args.parts, seed=1, late_fraction=0.05)
    print(f"drops: {args.days} days x {args.parts} files, {args.rows} rows/day; "
          f"{args.workers} workers")
    with local_cluster(args.workers) as cluster, Client(cluster) as client:
        for r in range(1, args.rounds + 1):
            seconds = {}
            reports = {}
            for mode in ("off", "on"):  # same order every round; stores emptied before each
                store = work / f"store-{mode}"
                shutil.rmtree(store, ignore_errors=True)
                report = ingest_weblog(str(raw), Store(str(store)), client=client,
                                       compaction=mode == "on")
                assert report.ok, report.problems()
                seconds[mode], reports[mode] = report.seconds, report
            off, on = _files(work / "store-off"), _files(work / "store-on")
            merge = reports["on"].extra["compaction"]["seconds"]
            print(f"round {r}: files/date off {off[0]:.1f} ({off[1]:.0f} KB each) -> on "
                  f"{on[0]:.1f} ({on[1]:.0f} KB each) over {on[2]} dates; ingest off "
                  f"{seconds['off']:.2f} s, on {seconds['on']:.2f} s (ratio "
                  f"{seconds['on'] / seconds['off']:.2f}); compaction step {merge:.2f} s = "
                  f"{merge / seconds['on']:.0%} of the ingest; load {_loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
