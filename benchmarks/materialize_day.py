"""Materialization of a store's first day, two versions of the code side by side in one run.

    python benchmarks/materialize_day.py --raw /work/bench/issue-sparse/raw --before 532d7d7
    python benchmarks/materialize_day.py --raw RAW --before REV --rounds 3 --workdir DIR

Issue #27's budget for materializing the first day of the issue's drop (4.66 M rows, 500 k
customers) is 0.6x serial ``igzip -d`` of the drop. The drop is ingested once (this checkout's
code, into ``WORKDIR/ingested``; kept for the next run); each round then hard-links that
ingested store twice and materializes it (every due as-of date: the daily aggregates, the
state, both feature tables, the online delta, the commit) on a running 2-worker LocalCluster
per version: this checkout ("after") and ``git archive REV`` ("before"), their order swapped
every round. Each version's cluster first does one untimed run (kernels loaded, caches warm),
as a long-lived cluster would have. Prints per round the seconds of each, serial in-process
``igzip -d`` of the drop (the same round), the ratios, and the medians; then checks that the
two versions' last stores hold the same files byte for byte.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "--serve" not in sys.argv:  # a runner imports the version its PYTHONPATH names
    sys.path.insert(0, str(ROOT))

def serve(workers: int) -> None:
    """Runner: a LocalCluster of this PYTHONPATH's code; materializes each store path read
    from stdin, answering one JSON line per path."""
    from distributed import Client

    from featurestore.cluster import local_cluster
    from featurestore.materialization import materialize
    from featurestore.storage import Store

    with local_cluster(workers) as cluster, Client(cluster) as client:
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            start = time.perf_counter()
            report = materialize(Store(line.strip()), client=client)
            print(json.dumps({"seconds": time.perf_counter() - start,
                              "rows": report.rows_written}), flush=True)


class Runner:
    """One version's runner process."""

    def __init__(self, name: str, tree: Path, workers: int) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(tree)}
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "materialize_day.py"), "--serve",
             "--workers", str(workers)], cwd=tree, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        assert json.loads(self.proc.stdout.readline())["ready"]

    def run(self, store: Path) -> dict:
        self.proc.stdin.write(f"{store}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _copy(ingested: Path, target: Path) -> Path:
    """Hard links of the ingested store (a materialization only adds files, and renames
    over its own)."""
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(["cp", "-al", str(ingested), str(target)], check=True)
    return target


def _ingest(raw: Path, store: Path, workers: int) -> None:
    from distributed import Client

    from featurestore import Store, ingest_weblog
    from featurestore.cluster import local_cluster

    if (store / ".ingested").exists():
        return
    shutil.rmtree(store, ignore_errors=True)
    with local_cluster(workers) as cluster, Client(cluster) as client:
        report = ingest_weblog(str(raw), Store(str(store)), client=client)
    print(f"ingested {report.files_ingested} files into {store}", flush=True)
    (store / ".ingested").write_text("")


def _same_files(a: Path, b: Path) -> tuple[int, list[str]]:
    """(files compared, those that differ or exist on one side) of the two stores' outputs
    (the lease and the commit's JSON records, which hold times, left out)."""
    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*")
                if p.is_file() and not p.name.endswith(".json") and p.name != ".ingested"}

    fa, fb = files(a), files(b)
    differ = sorted((fa ^ fb) | {f for f in fa & fb
                                 if not filecmp.cmp(a / f, b / f, shallow=False)})
    return len(fa | fb), differ


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw", help="the drop (e.g. /work/bench/issue-sparse/raw)")
    ap.add_argument("--before", help="git revision of the version to compare with")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", default="/tmp/materialize-day")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.workers)
        return
    if not args.raw or not args.before:
        ap.error("--raw and --before are required")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from ingest import _igzip_in_process

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    raw = Path(args.raw)
    files = sorted(raw.rglob("*.gz"))
    ingested = work / "ingested"
    _ingest(raw, ingested, args.workers)
    before = work / f"before-{args.before}"
    if not before.exists():
        before.mkdir()
        archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
    runners = {"before": Runner("before", before, args.workers),
               "after": Runner("after", ROOT, args.workers)}
    try:
        for name, runner in runners.items():  # warm: kernels, imports, page cache
            runner.run(_copy(ingested, work / f"warm-{name}"))
        rows = []
        for r in range(args.rounds):
            igzip = _igzip_in_process(files)
            order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
            got = {name: runners[name].run(_copy(ingested, work / f"run-{name}"))
                   for name in order}
            rows.append((igzip, got["before"]["seconds"], got["after"]["seconds"]))
            print(f"round {r + 1}: igzip -d {igzip:.2f} s | before {rows[-1][1]:.2f} s "
                  f"({rows[-1][1] / igzip:.2f}x) | after {rows[-1][2]:.2f} s "
                  f"({rows[-1][2] / igzip:.2f}x) | after/before {rows[-1][2] / rows[-1][1]:.2f}"
                  f" | rows {got['after']['rows']}", flush=True)
    finally:
        for runner in runners.values():
            runner.close()
    med = [statistics.median(c) for c in zip(*rows, strict=True)]
    print(f"median: igzip -d {med[0]:.2f} s | before {med[1]:.2f} s ({med[1] / med[0]:.2f}x) "
          f"| after {med[2]:.2f} s ({med[2] / med[0]:.2f}x; budget 0.6x) | after/before "
          f"{statistics.median(a / b for _, b, a in rows):.2f}")
    count, differ = _same_files(work / "run-before", work / "run-after")
    print(f"outputs: {count} files, {len(differ)} differ" + (f": {differ[:5]}" if differ else ""))


if __name__ == "__main__":
    main()
