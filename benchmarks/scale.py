"""Scale measurements for docs/scale.md.

    python benchmarks/scale.py ledger [--days 365] [--files-per-day 8200]
    python benchmarks/scale.py workers | small-files | serve [--online-store redis] | push-day
        (benchmarks/scale_runs.py)

``ledger``: a year of history at the seeds' volume. Fabricates a local store whose ingest ledger
holds ``days x files-per-day`` file records in the compacted format (one day file per drop,
``featurestore.ledger``; records as ingest writes them, sizes spread like 60-110 MB files, no
data) and whose materialization record has seen every day file, plus the next day's drop of
``files-per-day`` tiny gzip files. Then times, each in a fresh process with its peak RSS
(VmHWM), what the next daily run does around its tasks:

- ingest planning: ``discover_drops`` of the raw root + the real ``ingest._plan`` (ledger
  listing, day files of the delivered drop, size-filtered history for resends);
- compaction: the new drop's ``files-per-day`` per-file records and markers folded into its
  day file (what ingest does last);
- materialization planning: the state record read + ``materialize._new_entries`` (ledger
  listing, the new day file's rows) + the replacement notes.

Bound (issue #15): planning under 5 s and under 500 MB each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIELDS = {"status": "ingested", "lines": 100, "rows_ingested": 98, "rows_quarantined": 2,
          "rows_excluded": 0, "rows_anonymous": 0, "rows_late": 0, "bad": {"bad_timestamp": 2}}
STAMP = "2026-01-01T03:30:00+00:00"


def _peak_mb() -> float:
    """Peak resident memory of this process (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _records(day: dt.date, per_day: int, rng) -> list[dict]:
    """``per_day`` ledger records of drop ``day``, as a worker writes them."""
    sizes = rng.integers(60_000_000, 110_000_000, per_day)
    return [dict(FIELDS, file=f"s3://raw/weblog/{day}/hits_{j:05d}.tsv.gz", size=int(sizes[j]),
                 md5=f"{rng.integers(1 << 62):032x}", event_dates=[day.isoformat()],
                 file_id=f"{day}-{j}", ingested_at=STAMP) for j in range(per_day)]


def _day_file(store: Path, day: dt.date, records: list[dict]) -> None:
    """Write the compacted ledger day file of ``day`` (version 1) as ``ledger.compact`` does."""
    import pyarrow as pa

    from featurestore.ledger import DAY_SCHEMA, DAYS, LEDGER
    from featurestore.storage import Store

    keys = [f"{day}/{r['file'].rsplit('/', 1)[1]}" for r in records]
    table = pa.table({"key": keys, "md5": [r["md5"] for r in records],
                      "size": [r["size"] for r in records], "stamp": ["1"] * len(records),
                      "ingested_at": [STAMP] * len(records), "since": [1] * len(records),
                      "record": [json.dumps(r, sort_keys=True) for r in records]},
                     schema=DAY_SCHEMA)
    Store(str(store)).write_arrow(table, LEDGER, DAYS, day.isoformat(), "000001.parquet",
                                  stats=False, dictionary=False)


def fabricate(root: Path, days: int, per_day: int) -> tuple[Path, Path, dt.date]:
    """A store with ``days`` compacted day files of ``per_day`` records and a materialization
    record that has seen them all, and a raw root holding the next day's drop. Returns (store,
    raw, next day)."""
    import numpy as np

    from featurestore.features.materialize import STATE_RECORD
    from featurestore.generate import generate_weblog

    store, raw = root / "store", root / "raw"
    rng = np.random.default_rng(0)
    start = dt.date(2025, 1, 1)
    for i in range(days):
        _day_file(store, start + dt.timedelta(days=i), _records(start + dt.timedelta(i),
                                                                per_day, rng))
    seen = [(start + dt.timedelta(i)).isoformat() for i in range(days)]
    record = {"files": {}, "days": dict.fromkeys(seen, 1), "event_dates": seen, "drops": seen,
              "daily": {}, "as_of": {}, "state": {}, "pairs": {}}
    (store / STATE_RECORD).parent.mkdir(parents=True, exist_ok=True)
    (store / STATE_RECORD).write_text(json.dumps(record))
    nxt = start + dt.timedelta(days=days)
    generate_weblog(str(raw), days=1, customers=50, products=5, rows_per_day=per_day,
                    parts=per_day, start=nxt, columns=64)
    return store, raw, nxt


def plan_ingest(store: str, raw: str) -> dict:
    """What ``ingest_weblog`` does before submitting a task (lock aside): the real plan."""
    from featurestore.sources.weblog import discover_drops
    from featurestore.sources.weblog.ingest import IngestReport, _plan
    from featurestore.storage import Store

    t0 = time.perf_counter()
    found = discover_drops(raw, {})
    report = IngestReport()
    plan = _plan(Store(store), found.files, {}, False, report)
    return {"seconds": round(time.perf_counter() - t0, 2), "peak_mb": round(_peak_mb()),
            "files_to_ingest": len(plan.new), "files_skipped": report.files_skipped,
            "same_size_history_rows": sum(len(v) for v in plan.same_size.values())}


def compact_new(store: str, day: str) -> dict:
    """Fold the new drop's per-file records and markers into its day file."""
    from featurestore.ledger import compact
    from featurestore.storage import Store

    t0 = time.perf_counter()
    done = compact(Store(store), [day])
    return {"seconds": round(time.perf_counter() - t0, 2), "peak_mb": round(_peak_mb()),
            "drops_compacted": len(done)}


def plan_materialize(store: str) -> dict:
    """What ``materialize`` does first: its record, the ledger's new rows, the notes."""
    from featurestore.features.materialize import _new_entries, _read_record
    from featurestore.ledger import replaced_notes
    from featurestore.storage import Store

    s = Store(store)
    t0 = time.perf_counter()
    record = _read_record(s)
    entries, _, days = _new_entries(s, record)
    notes = replaced_notes(s)
    return {"seconds": round(time.perf_counter() - t0, 2), "peak_mb": round(_peak_mb()),
            "day_files": len(days), "new_records_read": len(entries), "notes": len(notes)}


def _in_fresh_process(fn: str, *args: str) -> dict:
    """Run ``fn`` of this module in a new interpreter so its peak RSS is its own."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import scale; print(json.dumps(scale.{fn}(*sys.argv[1:])))")
    out = subprocess.run([sys.executable, "-c", code, *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def ledger(days: int, per_day: int, workdir: str | None) -> None:
    import numpy as np

    from featurestore.ledger import CONTENT, LEDGER

    root = Path(workdir or tempfile.mkdtemp(prefix="scale-ledger-"))
    t0 = time.perf_counter()
    store, raw, nxt = fabricate(root, days, per_day)
    print(f"fabricated {days} x {per_day} ledger records + next drop in "
          f"{time.perf_counter() - t0:.0f} s under {root}", flush=True)
    ing = _in_fresh_process("plan_ingest", str(store), str(raw))
    # Then the new drop is ingested: its per-file records and markers exist ...
    new = store / LEDGER / nxt.isoformat()
    new.mkdir(parents=True)
    for r in _records(nxt, per_day, np.random.default_rng(1)):
        name = r["file"].rsplit("/", 1)[1]
        (new / f"{name}.json").write_text(json.dumps(r))
        marker = store / LEDGER / CONTENT / nxt.isoformat() / name / f"{r['md5']}-{r['size']}-1"
        marker.parent.mkdir(parents=True)
        marker.touch()
    # ... ingest compacts them, then materialization plans from the new day file
    comp = _in_fresh_process("compact_new", str(store), nxt.isoformat())
    mat = _in_fresh_process("plan_materialize", str(store))
    print(json.dumps({"days": days, "files_per_day": per_day, "ingest_planning": ing,
                      "compaction_of_the_new_drop": comp, "materialize_planning": mat,
                      "bound": {"seconds": 5, "peak_mb": 500}}, indent=1))
    if not workdir:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    lp = sub.add_parser("ledger", help="planning cost with a year of ledger records")
    lp.add_argument("--days", type=int, default=365)
    lp.add_argument("--files-per-day", type=int, default=8_200)
    lp.add_argument("--workdir", help="keep the fabricated store here (default: a temp dir)")
    wp = sub.add_parser("workers", help="parallel efficiency: one drop by 1 and by 2 workers")
    wp.add_argument("--mb", type=int, default=200, help="uncompressed size of the drop")
    wp.add_argument("--rounds", type=int, default=3)
    wp.add_argument("--workdir", help="keep the drop and stores here (default: a temp dir)")
    sp = sub.add_parser("small-files", help="a drop of many tiny files, whole ingest command")
    sp.add_argument("--files", type=int, default=8_200)
    sp.add_argument("--workers", type=int, default=2)
    sp.add_argument("--workdir", help="keep the drop and store here (default: a temp dir)")
    vp = sub.add_parser("serve", help="featurestore serve over millions of customers")
    vp.add_argument("--customers", type=int, default=10_000_000)
    vp.add_argument("--seconds", type=int, default=10)
    vp.add_argument("--workdir", help="keep the store here (default: a temp dir)")
    dp = sub.add_parser("push-day", help="a day's Redis push: N in history vs only the active")
    dp.add_argument("--history", type=int, default=5_000_000)
    dp.add_argument("--active", type=int, default=50_000)
    dp.add_argument("--workdir", help="keep the stores here (default: a temp dir)")
    dp.add_argument("--days", type=int, default=5,
                    help="days per store: 2 whole pushes, then interleaved day pushes")
    vp.add_argument("--online-store", choices=("memory", "redis"), default="memory",
                    help="redis: push to a local redis-server first (rate, bytes per row)")
    vp.add_argument("--workers", type=int, default=2, help="LocalCluster workers of the push")
    args = p.parse_args()
    if args.cmd == "ledger":
        ledger(args.days, args.files_per_day, args.workdir)
    else:
        import scale_runs

        run = {"workers": lambda: scale_runs.workers(args.mb, args.rounds, args.workdir),
               "small-files": lambda: scale_runs.small_files(args.files, args.workers,
                                                             args.workdir),
               "serve": lambda: scale_runs.serve(args.customers, args.seconds, args.workdir,
                                                 args.online_store, args.workers),
               "push-day": lambda: scale_runs.push_day(args.history, args.active,
                                                       args.workdir, args.days)}
        print(json.dumps(run[args.cmd](), indent=1))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
