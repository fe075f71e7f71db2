"""Ingest throughput against plain decompression of the same files, measured side by side.

    python benchmarks/ingest.py [--mb 400] [--workers 2] [--workdir benchmarks/_work]

Generates a drop of at least ``--mb`` MB uncompressed (1,057 columns), then times in one run:
serial ``gzip -d`` and ``igzip -d`` of every file (to /dev/null); ingest on a running
``--workers``-process LocalCluster (the production shape: a long-lived cluster that each daily
run connects to with ``--scheduler``); and the whole ``featurestore ingest`` command, which also
pays interpreter and cluster start-up (a constant, printed separately). Prints rows/s, MB/s of
gzip per core, the ratios to ``igzip -d`` and peak memory (RSS of the process tree incl.
workers, sampled every 20 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from featurestore.generate import generate_weblog  # noqa: E402


def _time(cmd: list[str], files: list[Path]) -> float:
    start = time.perf_counter()
    for f in files:
        with open(os.devnull, "wb") as sink:
            subprocess.run([*cmd, str(f)], stdout=sink, check=True)
    return time.perf_counter() - start


def _igzip_cmd() -> tuple[list[str], str]:
    if shutil.which("igzip"):
        return ["igzip", "-d", "-c"], "igzip (ISA-L CLI)"
    return [sys.executable, "-m", "isal.igzip", "-d", "-c"], "python -m isal.igzip (no igzip CLI)"


class PeakRSS(threading.Thread):
    """Samples the total RSS of a process and all its children until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs
                                               if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=400, help="uncompressed size of the drop")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", default=str(ROOT / "benchmarks" / "_work" / "ingest"))
    args = ap.parse_args()
    work = Path(args.workdir)
    raw = work / "raw"
    rows_per_day = max(1000, int(args.mb * 1e6 / 2000 / 2))  # ~2.1 KB a line, 2 days
    if not raw.exists():
        generate_weblog(str(raw), days=2, customers=50_000, products=2_000,
                        rows_per_day=rows_per_day, parts=8, seed=1, bad_rows=0.0005,
                        late_fraction=0.02)
    files = sorted(raw.rglob("*.tsv.gz"))
    gz_bytes = sum(f.stat().st_size for f in files)
    raw_bytes = 0
    for f in files:
        out = subprocess.run(["gzip", "-d", "-c", str(f)], capture_output=True, check=True)
        raw_bytes += len(out.stdout)
    if raw_bytes < args.mb * 1e6:
        print(f"note: generated {raw_bytes / 1e6:.0f} MB, below --mb {args.mb}")

    # Warm-up on a tiny drop so numba's on-disk cache is filled (steady state is measured).
    tiny = work / "tiny"
    if not tiny.exists():
        generate_weblog(str(tiny), days=1, rows_per_day=200, parts=1)
    subprocess.run([sys.executable, "-m", "featurestore", "ingest", str(tiny), "--store",
                    str(work / "tiny-store"), "--workers", "1", "--no-progress"], cwd=ROOT,
                   check=True, capture_output=True)
    shutil.rmtree(work / "tiny-store", ignore_errors=True)

    gzip_s = _time(["gzip", "-d", "-c"], files)
    igzip_cmd, igzip_name = _igzip_cmd()
    igzip_s = _time(igzip_cmd, files)

    from distributed import Client, LocalCluster

    from featurestore import Store, ingest_weblog

    sampler = PeakRSS(os.getpid())
    sampler.start()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        warm = ingest_weblog(str(tiny), Store(str(work / "warm-store")), client=client)
        assert warm.ok
        shutil.rmtree(work / "warm-store", ignore_errors=True)
        store = work / "store"
        shutil.rmtree(store, ignore_errors=True)
        start = time.perf_counter()
        result = ingest_weblog(str(raw), Store(str(store)), client=client)
        warm_s = time.perf_counter() - start
    sampler.stop.set()
    report = result.to_dict()

    shutil.rmtree(store, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "featurestore", "ingest", str(raw), "--store",
                    str(store), "--workers", str(args.workers), "--json", "--no-progress"],
                   cwd=ROOT, check=True, capture_output=True)
    cli_s = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "featurestore", "ingest", str(raw), "--store",
                    str(store), "--workers", str(args.workers), "--no-progress"],
                   cwd=ROOT, check=True, capture_output=True)
    noop_s = time.perf_counter() - start  # nothing new: start-up, discovery, ledger only

    print(f"drop: {len(files)} files, {gz_bytes / 1e6:.0f} MB gzip, {raw_bytes / 1e6:.0f} MB "
          f"uncompressed, 1,057 columns, {report['lines']:,} lines")
    print(f"gzip -d  (serial)        {gzip_s:7.2f} s")
    print(f"{igzip_name:24} {igzip_s:7.2f} s")
    print(f"ingest, running cluster  {warm_s:7.2f} s  ({args.workers} workers)")
    print(f"ingest, whole command    {cli_s:7.2f} s  (of which start-up ~{noop_s:.2f} s: a "
          "re-run with nothing new)")
    print(f"rows/s                   {report['lines'] / warm_s:,.0f}")
    print(f"gzip MB/s per core       {gz_bytes / 1e6 / warm_s / args.workers:.1f}  "
          f"(uncompressed {raw_bytes / 1e6 / warm_s / args.workers:.1f})")
    print(f"ratio ingest / igzip -d  {warm_s / igzip_s:.2f}x running cluster (target <= 2x); "
          f"{cli_s / igzip_s:.2f}x whole command")
    print(f"ratio ingest / gzip -d   {warm_s / gzip_s:.2f}x running cluster; "
          f"{cli_s / gzip_s:.2f}x whole command")
    print(f"peak memory (RSS, tree)  {sampler.peak / 2**20:,.0f} MiB (running-cluster run)")


if __name__ == "__main__":
    main()
