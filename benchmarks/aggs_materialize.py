"""Issue #26's plus-30 materialization alone, on a store the plus-30 repository ingested (the
issue's 4.8 M-line sparse drop: 500 k customers, 48 files of SPEC §3a partials).

    python benchmarks/aggs_materialize.py --store STORE [--before CHECKOUT] [--rounds 2]

Each round, for this checkout and (``--before``) another one, interleaved: a hard-linked copy of
``STORE`` (no bytes copied; every write publishes a new file, so ``STORE`` is never changed),
then ``materialize(force=True)`` on a 2-worker LocalCluster started beforehand (kernels warmed):
every as-of table, day state and SPEC §3a state rebuilt, as the ingest command's
materialization step does on a first day. Prints the step's wall and the workers' CPU seconds,
the wall of each task prefix (extday: the day's merge of the file partials; ext: the chained
state; asof: the feature tables) and whether the feature tables equal ``STORE``'s byte for
byte. Build STORE with, e.g.:

    featurestore apply --repo plus30.yaml --store STORE   # benchmarks/aggs.py's repository
    featurestore ingest /work/bench/issue-sparse/raw --store STORE --no-progress --json
"""

from __future__ import annotations

import argparse
import collections
import filecmp
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("customer_features", "customer_product_features")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _code() -> str:
    """Which checkout a worker runs."""
    import featurestore

    return str(Path(featurestore.__file__).parents[1])


def one_run(store: str, copy: str) -> dict:
    """Materialize a hard-linked copy of ``store`` with the code on ``sys.path``."""
    from distributed import get_task_stream

    from featurestore.cluster import dask_client
    from featurestore.features import strings
    from featurestore.features.aggs import runs
    from featurestore.materialization import materialize
    from featurestore.storage import Store

    shutil.rmtree(copy, ignore_errors=True)
    subprocess.run(["cp", "-al", store, copy], check=True)
    with dask_client(workers=2) as client:
        client.run(runs.warm_up)
        client.run(strings.warm_up)
        code = sorted(set(client.run(_code).values()))
        cpu = sum(client.run(_cpu).values())
        start = time.perf_counter()
        with get_task_stream(client) as stream:
            materialize(Store(copy), client=client, force=True)
        wall = time.perf_counter() - start
        cpu = sum(client.run(_cpu).values()) - cpu
    tasks: dict[str, float] = collections.defaultdict(float)
    t0 = min((s["start"] for t in stream.data for s in t["startstops"]), default=0.0)
    timeline = sorted(
        (round(s["start"] - t0, 2), round(s["stop"] - t0, 2), t["worker"][-5:],
         str(t["key"]).split("-20")[0].removeprefix("fs-"))
        for t in stream.data for s in t["startstops"] if s["action"] == "compute")
    for task in stream.data:
        prefix = str(task["key"]).split("-20")[0].removeprefix("fs-")
        for span in task["startstops"]:
            if span["action"] == "compute":
                tasks[prefix] += span["stop"] - span["start"]
    same = {}
    for table in TABLES:
        for part in sorted(Path(store, table).rglob("*.parquet")):
            mine = Path(copy, part.relative_to(store))
            same[table] = same.get(table, True) and filecmp.cmp(part, mine, shallow=False)
    shutil.rmtree(copy, ignore_errors=True)
    return {"code": code, "wall": round(wall, 2), "workers_cpu": round(cpu, 2),
            "tasks": {k: round(v, 2) for k, v in sorted(tasks.items(), key=lambda kv: -kv[1])},
            "identical": same, "timeline": timeline}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", help="a store the plus-30 repository ingested (required)")
    ap.add_argument("--before", help="another checkout, run interleaved")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--timeline", action="store_true",
                    help="print each task's start and stop on its worker")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # (store, copy): a child run
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one_run(*args.one)), flush=True)
        return
    if not args.store:
        ap.error("--store is required")
    store = os.path.abspath(args.store)
    sides = {"this": str(ROOT)}
    if args.before:
        sides["before"] = os.path.abspath(args.before)
    results: dict[str, list[dict]] = {side: [] for side in sides}
    for r in range(args.rounds):
        for side, checkout in sides.items():
            env = {**os.environ, "PYTHONPATH": checkout}
            out = subprocess.run([sys.executable, __file__, "--one", store, store + ".bench"],
                                 env=env, cwd=checkout, check=True, capture_output=True,
                                 text=True)  # cwd: Dask workers import from it first
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["load"] = os.getloadavg()[0]
            timeline = result.pop("timeline")
            if args.timeline:  # each task's (start, stop) seconds on its worker
                print("\n".join(f"  {a:6.2f} {b:6.2f} {w} {k}" for a, b, w, k in timeline))
            results[side].append(result)
            print(f"round {r + 1} {side}: {json.dumps(result)}", flush=True)
    summary = {side: {"wall": [x["wall"] for x in rs], "workers_cpu": [x["workers_cpu"] for x in rs]}
               for side, rs in results.items()}
    print(json.dumps({"measure": "plus-30 materialization", **summary}))


if __name__ == "__main__":
    main()
