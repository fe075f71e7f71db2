"""What Dask's profiler costs our workers: ingest tasks on a 2-worker LocalCluster sampled
every 10 ms (Dask's default) against every 100 ms (``featurestore.cluster.WORKER_SETTINGS``).

    python benchmarks/worker_profiler.py --raw DIR [--files 24] [--rounds 2]

Each round starts one cluster of each kind (``featurestore.cluster.local_cluster``, the
clusters our commands start), alternating which goes first, waits until its workers have
loaded the kernels, then runs the ingest task (``_ingest_one``) of the first ``--files`` files
of the drop under ``DIR`` into a scratch store, one Dask task per file. It prints, per kind,
the median over rounds of: the tasks' own CPU per file (``time.thread_time`` in the task), the
worker processes' CPU per file over the same span (``time.process_time``: the task, the
profiler, the event loop, garbage collections), the difference (what a worker spends beside
its tasks) and the full garbage collections the workers ran meanwhile. CPU times, not wall
time: the figures hold on a loaded machine, where wall time says little.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INTERVAL = "distributed.worker.profile.interval"


def _warm() -> None:
    from featurestore.features import hit_lists
    from featurestore.sources.weblog import scan

    scan.warm_up()
    hit_lists.warm_up()


def _start_counting() -> float:
    """Count this worker's garbage collections from now; returns its CPU time so far."""
    import builtins
    import gc

    counts = [0, 0, 0]

    def count(phase: str, info: dict) -> None:
        if phase == "stop":
            counts[info["generation"]] += 1

    gc.callbacks.append(count)
    builtins._profiler_bench_gc = counts
    return time.process_time()


def _stop_counting() -> tuple[float, list[int]]:
    import builtins

    return time.process_time(), builtins._profiler_bench_gc


def _task(store_root: str, raw, plan) -> float:
    """One file's ingest task; returns its own CPU time."""
    from featurestore.sources.weblog.ingest import _ingest_one
    from featurestore.storage import Store

    start = time.thread_time()
    result = _ingest_one(Store(store_root), raw, {}, None, None, 30, plan)
    assert result["status"] == "ingested", result
    return time.thread_time() - start


def _one_run(interval: str, files: list, plan, scratch: Path) -> dict[str, float]:
    from distributed import Client

    from featurestore import cluster

    saved = cluster.WORKER_SETTINGS
    cluster.WORKER_SETTINGS = {**saved, INTERVAL: interval}
    try:
        with cluster.local_cluster(2) as lc, Client(lc) as client:
            client.run(_warm)  # the preload's warm-up done before anything is counted
            time.sleep(1)
            before = client.run(_start_counting)
            store = tempfile.mkdtemp(dir=scratch)
            cpu = client.gather([client.submit(_task, store, raw, plan, pure=False)
                                 for raw in files])
            after = client.run(_stop_counting)
    finally:
        cluster.WORKER_SETTINGS = saved
    process = sum(after[w][0] - before[w] for w in after)
    return {"task": sum(cpu) / len(files) * 1000, "process": process / len(files) * 1000,
            "full_gc": sum(after[w][1][2] for w in after)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--raw", required=True, help="the raw root holding the drop folder")
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    from featurestore.features.daily import daily_plan
    from featurestore.features.partials import repo_for_ingest
    from featurestore.sources.weblog.drops import discover_drops
    from featurestore.storage import Store

    scratch = Path(tempfile.mkdtemp(prefix="worker-profiler-"))
    try:
        plan = daily_plan(repo_for_ingest(Store(str(scratch / "empty")), None))
        files = discover_drops(args.raw).files[:args.files]
        kinds = {"every 10 ms (Dask's default)": "10ms",
                 "every 100 ms (WORKER_SETTINGS)": "100ms"}
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
        for round_ in range(args.rounds):
            order = list(kinds) if round_ % 2 == 0 else list(kinds)[::-1]
            for kind in order:
                runs[kind].append(_one_run(kinds[kind], files, plan, scratch))
        print(f"{len(files)} files, {args.rounds} rounds, 2 workers; CPU ms per file (median "
              "of rounds)")
        print(f"{'profiler':32}{'task':>8}{'worker process':>16}{'beside tasks':>14}"
              f"{'full GCs':>10}")
        for kind, results in runs.items():
            task = statistics.median(r["task"] for r in results)
            process = statistics.median(r["process"] for r in results)
            beside = statistics.median(r["process"] - r["task"] for r in results)
            full = statistics.median(r["full_gc"] for r in results)
            print(f"{kind:32}{task:8.1f}{process:16.1f}{beside:14.1f}{full:10.1f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
