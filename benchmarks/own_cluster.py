"""The whole ``featurestore ingest`` with its own LocalCluster: this checkout against another
revision, interleaved, wall and CPU of every process the command starts.

    python benchmarks/own_cluster.py --raw /work/bench/issue-sparse/raw --before <rev>
    python benchmarks/own_cluster.py --raw RAW --before REV --rounds 5 [--scheduler ADDR]

Issue #27: the command with its own cluster (its start, its workers' start and close) against
the same command of ``git archive REV`` (extracted under ``--workdir`` and kept
there, with its numba cache, for the next run), each into an empty
store, their order swapped every round, each version's numba cache warmed first by an ingest of
a one-file drop. The CPU is the command's and every process it started (its worker server and
workers included: this process is their subreaper and reaps them), so it holds under load
where the wall does not. Also times 2-worker ``local_cluster`` start and close, three in one
process per version (the first start pays the workers' loading; later ones in the same process
fork from the loaded server). ``--scheduler`` runs the commands on a running cluster instead.
Prints per run wall, CPU and the report's steps, then the medians, then compares the two
versions' last stores file by file.
"""

from __future__ import annotations

import argparse
import ctypes
import filecmp
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CLUSTER_TIMES = """
import json, time
from distributed import Client
from featurestore.cluster import local_cluster
if __name__ == "__main__":
    out = []
    for _ in range(3):
        start = time.perf_counter()
        cluster = local_cluster(2)
        client = Client(cluster)
        up = time.perf_counter() - start
        client.gather(client.map(abs, range(4)))
        start = time.perf_counter()
        client.close()
        cluster.close()
        out.append([up, time.perf_counter() - start])
    print(json.dumps(out))
"""


def _reap() -> None:
    """Wait for every orphan this subreaper adopted (a worker server outlives its command)."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _run(tree: Path, args: list[str]) -> dict:
    """One command of the version in ``tree``: wall, CPU of its process tree, report steps."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "featurestore", *args], cwd=tree, check=False,
                         env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                         text=True)
    wall = time.perf_counter() - start
    _reap()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        report = json.loads(out.stdout)
    except ValueError:
        sys.exit(f"{tree}: {out.stderr[-2000:]}")
    steps = {"ingest": report.get("seconds", 0.0),
             "materialize": (report.get("materialize") or {}).get("seconds", 0.0)}
    return {"wall": wall, "cpu": after.ru_utime - before.ru_utime + after.ru_stime
            - before.ru_stime, **steps, "load": os.getloadavg()[0]}


def _compare(after: Path, before: Path) -> None:
    """The two versions' last stores: the same files, every parquet byte for byte except the
    ledger's (it records when each file was ingested)."""
    names = [{p.relative_to(root) for p in root.rglob("*") if p.is_file()}
             for root in (after, before)]
    parquet = sorted(p for p in names[0] & names[1]
                     if p.suffix == ".parquet" and p.parts[0] != "_ledger")
    differ = [p for p in parquet if not filecmp.cmp(after / p, before / p, shallow=False)]
    print(f"outputs: {len(names[0] ^ names[1])} files in one store only; {len(parquet)} parquet "
          f"files compared (the ledger's aside), {len(differ)} differ {differ[:3] or ''}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw", required=True, help="the drops folder (issue #27's sparse drop)")
    ap.add_argument("--before", required=True, help="the revision to compare with")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None, help="run on this running cluster instead")
    ap.add_argument("--workdir", default=str(ROOT / "benchmarks" / "_work" / "own_cluster"))
    args = ap.parse_args()
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER (Linux)
    work = Path(args.workdir)
    rev = subprocess.run(["git", "rev-parse", args.before], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    before = work / f"before-{rev[:12]}"  # kept: its numba cache serves the next run too
    if not before.exists():
        part = work / f"part-{rev[:12]}"
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(part)], input=archive, check=True)
        part.rename(before)
    trees = {"after": ROOT, "before": before}
    where = ["--scheduler", args.scheduler] if args.scheduler else ["--workers",
                                                                     str(args.workers)]
    for tree in trees.values():  # numba's cache of each version, filled before any timing
        _run(tree, ["ingest", args.raw, "--store", str(work / "warm-store"), "--json",
                    "--no-progress", *where])
        shutil.rmtree(work / "warm-store")
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for k in range(args.rounds):
        for name in (list(trees) if k % 2 == 0 else list(trees)[::-1]):
            store = work / f"store-{name}"
            shutil.rmtree(store, ignore_errors=True)
            row = _run(trees[name], ["ingest", args.raw, "--store", str(store), "--json",
                                     "--no-progress", *where])
            runs[name].append(row)
            print(f"{name:6} wall {row['wall']:6.2f} s  CPU {row['cpu']:6.2f} s  ingest step "
                  f"{row['ingest']:5.2f} s  materialization {row['materialize']:5.2f} s  "
                  f"load {row['load']:.1f}", flush=True)
    for name, rows in runs.items():
        med = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        print(f"median {name:6} " + "  ".join(f"{key} {v:.2f}" for key, v in med.items()))
    _compare(work / "store-after", work / "store-before")
    if not args.scheduler:
        for name, tree in trees.items():
            out = subprocess.run([sys.executable, "-c", _CLUSTER_TIMES], cwd=tree, check=True,
                                 env={**os.environ, "PYTHONPATH": str(tree)},
                                 capture_output=True, text=True)
            _reap()
            times = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"local_cluster(2) {name:6} start " + " / ".join(f"{u:.2f}" for u, _ in times)
                  + " s; close " + " / ".join(f"{c:.2f}" for _, c in times) + " s")


if __name__ == "__main__":
    main()
