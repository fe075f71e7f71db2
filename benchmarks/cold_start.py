"""Start-up cost of ``featurestore ingest``: cold vs warm numba cache, this checkout vs a baseline.

    python benchmarks/cold_start.py [--baseline /path/to/other/checkout] [--workers 2]
        [--rows-per-day 20000] [--parts 2] [--rounds 1] [--workdir DIR]

Generates one small drop (``--parts`` files of 1,057 columns), then for each checkout (this one,
and ``--baseline`` if given, e.g. the main branch before the warm-up preload) runs, in
interleaved rounds:

* ``kernels``: a fresh interpreter importing the scanner and calling ``warm_up()`` (what the
  first file of a fresh worker pays): with an empty ``NUMBA_CACHE_DIR`` (compile) and again
  with the cache that run filled (load);
* the whole ``featurestore ingest RAW --store NEW --workers N`` command (own LocalCluster)
  with an empty cache and with the warm one: wall seconds, the report's ingest ``seconds``,
  and the first file's time (its events parquet written, minus the command's start).

Prints every round and the ratios cold/warm and checkout/baseline side by side. The numbers
in docs/performance.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from featurestore.generate import generate_weblog  # noqa: E402

KERNELS = ("import time; t = time.perf_counter(); "
           "from featurestore.sources.weblog.scan import warm_up; i = time.perf_counter(); warm_up(); "
           "print(round(i - t, 3), round(time.perf_counter() - i, 3))")


def _env(code: Path, cache: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(code), "NUMBA_CACHE_DIR": str(cache)}


def kernels(code: Path, cache: Path) -> tuple[float, float]:
    """(import seconds, warm_up seconds) in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", KERNELS], env=_env(code, cache), cwd=code,
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1])


def ingest(code: Path, cache: Path, raw: Path, store: Path, workers: int) -> dict[str, float]:
    """The whole command on a fresh store: wall, report seconds, first file written."""
    shutil.rmtree(store, ignore_errors=True)  # a fresh store: every file is new
    start_wall = time.time()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "featurestore", "ingest", str(raw), "--store",
                           str(store), "--workers", str(workers), "--json", "--no-progress"],
                          env=_env(code, cache), cwd=code, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"ingest failed ({code}): {proc.stderr.strip()[-500:]}")
    report = json.loads(proc.stdout)
    parts = list((store / "events").rglob("*.parquet"))
    first = min(p.stat().st_mtime for p in parts) - start_wall
    return {"wall": wall, "ingest": float(report["seconds"]), "first_file": first}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", type=Path, help="another checkout to compare with")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rows-per-day", type=int, default=20_000)
    ap.add_argument("--parts", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fs-cold-"))
    work.mkdir(parents=True, exist_ok=True)
    raw = work / "raw"
    if not raw.exists():
        generate_weblog(str(raw), days=1, customers=2_000, products=200,
                        rows_per_day=args.rows_per_day, parts=args.parts)
    size = sum(p.stat().st_size for p in raw.rglob("*.gz"))
    print(f"drop: {args.parts} file(s), {args.rows_per_day:,} rows, {size / 1e6:.1f} MB gzip; "
          f"{os.cpu_count()} cores; --workers {args.workers}")
    checkouts = {"this": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    rows: dict[tuple[str, str], list[dict[str, float]]] = {}
    n = 0
    for r in range(args.rounds):
        for name, code in checkouts.items():
            cache = work / f"numba-{name}-{r}"
            shutil.rmtree(cache, ignore_errors=True)
            cache.mkdir()
            for state in ("cold", "warm"):
                imp, load = kernels(code, cache)
                if state == "cold":  # the command starts from an empty cache too (it refills it)
                    shutil.rmtree(cache)
                    cache.mkdir()
                n += 1
                result = ingest(code, cache, raw, work / f"store-{n}", args.workers)
                result |= {"import": imp, "kernels": load}
                rows.setdefault((name, state), []).append(result)
                print(f"round {r + 1} {name:<8} {state}: kernels import {imp:.2f} s + load "
                      f"{load:.2f} s; ingest command {result['wall']:.1f} s (report "
                      f"{result['ingest']:.1f} s), first file at {result['first_file']:.1f} s",
                      flush=True)
    print("\nmedians (seconds)")
    keys = ("kernels", "wall", "ingest", "first_file")
    print(f"{'checkout':<10}{'cache':<7}" + "".join(f"{k:>12}" for k in keys))
    med = {k: {m: statistics.median(x[m] for x in v) for m in keys} for k, v in rows.items()}
    for (name, state), m in med.items():
        print(f"{name:<10}{state:<7}" + "".join(f"{m[k]:>12.2f}" for k in keys))
    print("\nratios")
    for name in checkouts:
        c, w = med[(name, "cold")], med[(name, "warm")]
        print(f"  {name}: cold/warm kernels {c['kernels'] / w['kernels']:.1f}x, whole command "
              f"{c['wall'] / w['wall']:.2f}x, first file {c['first_file'] / w['first_file']:.2f}x")
    if args.baseline:
        for state in ("cold", "warm"):
            t, b = med[("this", state)], med[("baseline", state)]
            print(f"  this/baseline ({state} cache): whole command {t['wall'] / b['wall']:.2f}x, "
                  f"first file {t['first_file'] / b['first_file']:.2f}x")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
