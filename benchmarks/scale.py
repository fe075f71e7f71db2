"""Scale measurements for docs/scale.md.

    python benchmarks/scale.py ledger [--days 365] [--files-per-day 8200]

``ledger``: a year of history at the seeds' volume. Fabricates a local store whose ingest ledger
holds ``days x files-per-day`` file records (ledger JSON records as ingest writes them, no data)
and whose materialization record has seen every one of them, plus the next day's drop of
``files-per-day`` tiny gzip files. Then times, each in a fresh process with its peak RSS
(VmHWM), what the next daily run does before any task is submitted:

- ingest planning: ``discover_files`` of the new drop + the ledger listing (``ledger_keys``);
- materialization planning: the state record read + the ledger listing + reading the records
  of the new drop's files (what ``materialize`` does first).

Bound (issue #15): each under 5 s and under 500 MB.
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

FIELDS = {"size": 86_000, "md5": "0" * 32, "lines": 100, "rows_ingested": 98,
          "rows_quarantined": 2, "rows_excluded": 0, "rows_anonymous": 0, "rows_late": 0,
          "bad": {"bad_timestamp": 2}}


def _peak_mb() -> float:
    """Peak resident memory of this process (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fabricate(root: Path, days: int, per_day: int) -> tuple[Path, Path, dt.date]:
    """A store with ``days x per_day`` ledger records and a materialization record that has
    seen them all, and a raw root holding the next day's drop. Returns (store, raw, next day)."""
    from featurestore.features.materialize import STATE_RECORD
    from featurestore.generate import generate_weblog
    from featurestore.ingest import LEDGER

    store, raw = root / "store", root / "raw"
    start = dt.date(2025, 1, 1)
    files: dict[str, str] = {}
    stamp = "2026-01-01T03:30:00+00:00"
    for i in range(days):
        day = start + dt.timedelta(days=i)
        folder = store / LEDGER / day.isoformat()
        folder.mkdir(parents=True)
        body = dict(FIELDS, event_dates=[day.isoformat()], ingested_at=stamp)
        for j in range(per_day):
            name = f"hits_{j:05d}.tsv.gz"
            body["file_id"] = f"{day}-{j}"
            (folder / f"{name}.json").write_text(json.dumps(body))
            files[f"{day.isoformat()}/{name}"] = stamp
    record = {"files": files, "event_dates": sorted({k[:10] for k in files}),
              "daily": {}, "as_of": {}, "state": {}, "pairs": {}}
    (store / STATE_RECORD).parent.mkdir(parents=True, exist_ok=True)
    (store / STATE_RECORD).write_text(json.dumps(record))
    nxt = start + dt.timedelta(days=days)
    generate_weblog(str(raw), days=1, customers=50, products=5, rows_per_day=per_day,
                    parts=per_day, start=nxt, columns=64)
    return store, raw, nxt


def plan_ingest(store: str, raw: str) -> dict:
    """What ``ingest_weblog`` does before submitting a task (lock aside)."""
    from featurestore.ingest import ledger_keys
    from featurestore.sources.weblog import discover_files
    from featurestore.storage import Store

    t0 = time.perf_counter()
    files, _ = discover_files(raw)
    done = set(ledger_keys(Store(store)))
    todo = [f for f in files if f.ledger_key not in done]
    return {"seconds": round(time.perf_counter() - t0, 2), "peak_mb": round(_peak_mb()),
            "ledger_records": len(done), "files_to_ingest": len(todo)}


def plan_materialize(store: str, new_day: str) -> dict:
    """What ``materialize`` does first: its record, the ledger listing, the new records."""
    from featurestore.features.materialize import _read_record
    from featurestore.ingest import ledger_entries, ledger_keys
    from featurestore.storage import Store

    s = Store(store)
    t0 = time.perf_counter()
    record = _read_record(s)
    keys = ledger_keys(s)
    known = record["files"]
    entries = ledger_entries(s, [k for k in keys if k not in known])
    return {"seconds": round(time.perf_counter() - t0, 2), "peak_mb": round(_peak_mb()),
            "ledger_records": len(keys), "new_records_read": len(entries)}


def _in_fresh_process(fn: str, *args: str) -> dict:
    """Run ``fn`` of this module in a new interpreter so its peak RSS is its own."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import scale; print(json.dumps(scale.{fn}(*sys.argv[1:])))")
    out = subprocess.run([sys.executable, "-c", code, *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def ledger(days: int, per_day: int, workdir: str | None) -> None:
    root = Path(workdir or tempfile.mkdtemp(prefix="scale-ledger-"))
    t0 = time.perf_counter()
    store, raw, nxt = fabricate(root, days, per_day)
    print(f"fabricated {days} x {per_day} ledger records + next drop in "
          f"{time.perf_counter() - t0:.0f} s under {root}", flush=True)
    ing = _in_fresh_process("plan_ingest", str(store), str(raw))
    # Then the new drop is ingested: its ledger records exist, the materialization record
    # has not seen them yet.
    new = store / "_ledger/weblog" / nxt.isoformat()
    new.mkdir()
    body = dict(FIELDS, event_dates=[nxt.isoformat()], ingested_at="2026-01-02T03:30:00+00:00")
    for j in range(per_day):
        (new / f"hits_{j:05d}.tsv.gz.json").write_text(json.dumps(body))
    mat = _in_fresh_process("plan_materialize", str(store), nxt.isoformat())
    print(json.dumps({"days": days, "files_per_day": per_day, "ingest_planning": ing,
                      "materialize_planning": mat, "bound": {"seconds": 5, "peak_mb": 500}},
                     indent=1))
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
    args = p.parse_args()
    if args.cmd == "ledger":
        ledger(args.days, args.files_per_day, args.workdir)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
