"""Where an ingest's time goes, per stage and per worker: py-spy samples every worker process.

    python benchmarks/ingest_profile.py --workdir DIR [--workers 2] [--rate 250]

``DIR/raw`` holds the drop (``benchmarks/ingest.py`` generates it: ``--issue-drop`` writes
``benchmarks/_work/ingest-issue-drop-d0.016/raw``). The script starts the LocalCluster
``featurestore ingest`` starts, warms each worker on one file (steady state, as
``benchmarks/ingest.py`` does), then ingests the drop into an empty store while ``py-spy
record`` samples each worker process (no change to the code measured; py-spy is a sampling
profiler from PyPI, ``pip install py-spy``). Each sample is put in the stage of the innermost
frame that names one:

| stage | frames |
|---|---|
| read | the file's bytes from the raw store (fsspec) |
| decompress | ``_one_member_pieces`` (ISA-L, a piece at a time) |
| scan | ``scan_pieces`` (the numba byte scanner; time and product checks included) |
| validate | UTF-8, time and product-list checks, the quarantine table |
| gather | ``gather_columns`` (field bytes to Arrow strings) |
| parse (rest) | the rest of ``parse_file``: md5, masks, building the Arrow table |
| partials | ``write_partials`` (the file's partial daily aggregates) |
| events write | conform, to pandas, the events parquet write |
| commit | ledger record, content marker |
| task (rest) | the rest of the ingest task |
| compaction | merging the day's events parts (after the ingest tasks) |
| outside tasks | the worker's own work: comms, heartbeats, scheduling |
| idle | the worker's event loop waiting in ``select`` (py-spy counts it as running) |

and prints per worker each stage's share of the samples and its seconds (samples / rate: py-spy
samples only threads that are running, so idle waits are not counted), beside the ingest's wall
time and a serial in-process ``igzip -d`` of the same files.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import _igzip_in_process, warm_workers

#: (stage, substrings of a frame "function (file:line)"); the innermost match wins.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    # since issue #27's third round the two interleave a piece at a time: the decompressor is
    # the generator the scan pulls from (the older names profile older checkouts)
    ("decompress", ("_one_member_pieces (", "_pieces_of (", "_decompress (")),
    ("scan", ("scan_pieces (", "scan_pieces.<locals>.scan (", "scan_lines (",
              "scan_lines_and_int (")),
    ("validate", ("valid_utf8_rows (", "_bad_products (",
                  "_quarantine_table (")),
    ("gather", ("gather_columns (", "gather_strings (")),
    ("partials", ("write_partials (",)),
    ("events write", ("write_events_file (", "write_arrow (", "write_parquet (", "conform (",
                      "to_pandas (", "footer_metadata (")),
    ("commit", ("write_json (", "_write_marker (", "_remove_old_outputs (")),
    ("read", ("fsspec/",)),
    ("parse (rest)", ("parse_file (",)),
    ("task (rest)", ("_ingest_one (",)),
    ("compaction", ("concat_parquet (", "_merge_task (")),
    ("idle", ("EpollSelector.select (", "select (selectors.py")),
]
ORDER = ["read", "decompress", "scan", "validate", "gather", "parse (rest)", "partials",
         "events write", "commit", "task (rest)", "compaction", "outside tasks", "idle"]


def stage_of(stack: list[str]) -> str:
    """The stage of one sampled stack (outermost frame first)."""
    for frame in reversed(stack):
        for stage, marks in STAGES:
            if any(m in frame for m in marks):
                return stage
    return "outside tasks"


def read_raw(path: Path) -> collections.Counter:
    """py-spy's raw (collapsed) output: ``frame;frame;... count`` per line -> stage samples."""
    counts: collections.Counter = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            counts[stage_of(stack.split(";"))] += int(n)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", required=True, help="folder holding raw/ (the drop)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    args = ap.parse_args()
    work = Path(args.workdir)
    raw = work / "raw"
    files = sorted(raw.rglob("*.tsv.gz"))
    if not files:
        sys.exit(f"no *.tsv.gz under {raw}: generate the drop with benchmarks/ingest.py")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")

    from distributed import Client

    from featurestore import Store, ingest_weblog
    from featurestore.cluster import local_cluster

    with local_cluster(args.workers) as cluster, Client(cluster) as client:
        warm_workers(client, raw, files[:args.workers], work)

        pids = client.run(os.getpid)
        out_dir = Path(tempfile.mkdtemp(prefix="ingest-profile-"))
        spies = {}
        for address, pid in pids.items():
            out = out_dir / f"{pid}.txt"
            spies[address] = (out, subprocess.Popen(
                [py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate",
                 str(args.rate), "--nonblocking", "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)  # let py-spy attach
        store = work / "profile-store"
        shutil.rmtree(store, ignore_errors=True)
        start = time.perf_counter()
        report = ingest_weblog(str(raw), Store(str(store)), client=client)
        wall = time.perf_counter() - start
        for _, spy in spies.values():
            spy.send_signal(signal.SIGINT)
        for _, spy in spies.values():
            spy.wait(timeout=60)
        shutil.rmtree(store, ignore_errors=True)
    igzip = _igzip_in_process(files)

    print(f"ingest of {len(files)} files, {report.rows_ingested:,} rows: {wall:.2f} s wall on "
          f"{args.workers} workers; serial igzip -d {igzip:.2f} s ({wall / igzip:.2f}x)")
    print(f"py-spy record --format raw --rate {args.rate} on each worker; seconds = samples / "
          "rate (busy time)")
    totals: collections.Counter = collections.Counter()
    per_worker = {}
    for address, (out, _) in sorted(spies.items()):
        per_worker[address] = read_raw(out) if out.exists() else collections.Counter()
        totals.update(per_worker[address])
    header = f"{'stage':16}" + "".join(f"{'worker ' + str(i):>18}" for i in
                                       range(len(per_worker))) + f"{'all':>18}"
    print(header)
    for stage in ORDER:
        cells = []
        for counts in [*per_worker.values(), totals]:
            n = sum(counts.values()) or 1
            cells.append(f"{counts[stage] / n * 100:6.1f}% {counts[stage] / args.rate:6.2f} s")
        print(f"{stage:16}" + "".join(f"{c:>18}" for c in cells))
    print(f"samples: {', '.join(str(sum(c.values())) for c in per_worker.values())}")


if __name__ == "__main__":
    main()
