"""Where materialization's time goes: CPU seconds per task and per step, one process.

    python benchmarks/materialize_profile.py --store INGESTED [--rounds 3]
    PYTHONPATH=OTHER_CHECKOUT python benchmarks/materialize_profile.py ...  # another version

``INGESTED`` is a store after ``featurestore ingest``'s ingest step and before any
materialization (``benchmarks/materialize_day.py`` leaves one in ``WORKDIR/ingested``). Each
round hard-links it and materializes it with a one-thread in-process Dask worker, timing with
``time.thread_time`` (CPU of the calling thread: what the machine's other load does not
inflate much) every task function of ``featurestore.features.materialize`` and the steps below
them that exist in the version profiled. The first round loads kernels and caches; the last
is printed. Tasks run one after the other here: on the 2-worker cluster the customer-side
tasks (``_daily_task``, ``_advance_task``, ``_customer_tables_task``) run on one worker and
the pair-side ones (the customer x product rows, the window, its tables) on the other, so
the longer of the two sums is the critical path.
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib.util
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("featurestore") is None:  # else PYTHONPATH names the version
    sys.path.insert(0, str(ROOT))

TIMES: dict[str, float] = collections.defaultdict(float)
#: Task functions and steps of features/materialize.py (those a version lacks are skipped).
NAMES = ["_daily_task", "_daily_pairs_task", "_aggregated_prior_task", "_rolled_prior_task",
         "_distinct_task", "_advance_task", "_pair_tables_task", "_customer_tables_task",
         "combine_partials", "_daily_tables", "customer_snapshot", "customer_product_snapshot",
         "write_delta", "candidates", "write_state", "write_pairs", "write_arrow",
         "write_table", "parquet_bytes", "commit_weblog"]


def _wrap(module, name: str) -> None:
    fn = module.__dict__.get(name)
    if not callable(fn):
        return

    @functools.wraps(fn)
    def timed(*args, **kwargs):
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[name] += time.thread_time() - start

    setattr(module, name, timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True, help="an ingested, not yet materialized store")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/materialize-profile")
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    import featurestore.features.materialize as m
    from featurestore.materialization import materialize
    from featurestore.storage import Store

    for name in NAMES:
        _wrap(m, name)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        for r in range(args.rounds):
            TIMES.clear()
            target = Path(args.workdir) / "run"
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-al", args.store, str(target)], check=True)
            start = time.perf_counter()
            materialize(Store(str(target)), client=client)
            wall = time.perf_counter() - start
        print(f"{m.__file__}\nlast round: {wall:.2f} s wall (one worker thread); CPU s per "
              "task function and step (steps are inside tasks):")
        for name, seconds in sorted(TIMES.items(), key=lambda kv: -kv[1]):
            print(f"  {name:28s} {seconds:6.3f}")


if __name__ == "__main__":
    main()
