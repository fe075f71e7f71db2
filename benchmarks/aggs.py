"""SPEC §3a aggregations (issue #26): window-length independence, ingest overhead, sketch error.

One command (full size, as the issue asks; the lead's idle-machine run):

    python benchmarks/aggs.py

``--small`` for a quick run (a shorter history, fewer hits); ``--profile`` adds, for the
ingest measure, compute seconds per Dask task kind. Three measurements, each printed
as one JSON object, side by side in one run:

* ``window``: a day's materialization on day ``--days`` (400) of a generated history, with the
  default repository plus ten SPEC §3a features of 365 days vs the same ten with 7 days
  (count, sum, mean, stddev, min, max, last, distinct, approx_distinct, top_k). Both stores are
  built through day N-1, then in ``--repeats`` alternating rounds each is restored, ingests
  drop N and materializes it: the ratio 365/7 is the median of the per-round ratios
  (target <= 1.3).
* ``ingest``: ``ingest`` + materialization of the same drops with the default repository vs
  the default plus ten declared columns and thirty SPEC §3a features of every kind
  (target <= 1.5x).
  CPU seconds of each build (this process plus the worker processes) and their ratio are
  printed too; ``--in-process`` runs the workers as threads of this process instead.
* ``sketch``: approx_distinct's error over 1,000 customers with 101..20,000 distinct values:
  the share within 3% (SPEC §3a: >= 95%), the median and the 95th percentile error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from featurestore.cluster import dask_client
from featurestore.features.definitions import DEFAULT_REPO, parse_feature_repo
from featurestore.generate import generate_weblog
from featurestore.materialization import materialize
from featurestore.sources.weblog.ingest import ingest_weblog
from featurestore.storage import Store

TEN = {
    "n_{w}": {"aggregation": "count", "filter": {"where": [
        {"column": "post_page_event", "op": "eq", "value": "0"}]}},
    "qty_{w}": {"aggregation": "sum", "field": "quantity"},
    "price_mean_{w}": {"aggregation": "mean", "field": "price"},
    "price_sd_{w}": {"aggregation": "stddev", "field": "price"},
    "price_min_{w}": {"aggregation": "min", "field": "price"},
    "price_max_{w}": {"aggregation": "max", "field": "price"},
    "last_product_{w}": {"aggregation": "last", "field": "product_id"},
    "products_{w}": {"aggregation": "distinct", "field": "product_id"},
    "approx_products_{w}": {"aggregation": "approx_distinct", "field": "product_id"},
    "top_products_{w}": {"aggregation": "top_k", "field": "product_id", "k": 3},
}


def ten_features(window: int) -> dict:
    return {k.format(w=f"{window}d"): {**v, "window_days": window} for k, v in TEN.items()}


#: Ten declared columns: the generator's four clickstream columns and six filler ones.
DECLARED = {"post_channel": "string", "visit_num": "int", "evar12": "float",
            "geo_country": "string", "evar1": "string", "evar2": "string",
            "browser": "string", "geo_city": "string", "os": "string",
            "visit_page_num": "string"}
#: The ten kinds over the declared columns.
TEN_DECLARED = {
    "search_{w}": {"aggregation": "count", "filter": {"where": [
        {"column": "post_channel", "op": "in", "value": ["Natural Search", "Paid Search"]}]}},
    "visit_sum_{w}": {"aggregation": "sum", "field": "visit_num"},
    "visit_mean_{w}": {"aggregation": "mean", "field": "visit_num"},
    "evar12_sd_{w}": {"aggregation": "stddev", "field": "evar12"},
    "evar12_min_{w}": {"aggregation": "min", "field": "evar12"},
    "evar12_max_{w}": {"aggregation": "max", "field": "evar12"},
    "last_country_{w}": {"aggregation": "last", "field": "geo_country"},
    "channels_{w}": {"aggregation": "distinct", "field": "post_channel"},
    "cities_{w}": {"aggregation": "approx_distinct", "field": "geo_city"},
    "top_browsers_{w}": {"aggregation": "top_k", "field": "browser", "k": 3},
}


def thirty_features(declared: bool = True) -> dict:
    """Ten kinds x (7 days, 30 days, lifetime): over the declared columns (7 and 30 days) and
    the built-in fields (lifetime), with filters."""
    out = {}
    for window in (7, 30, None):
        kinds = TEN_DECLARED if declared and window else TEN
        for k, v in kinds.items():
            f = dict(v)
            if window:
                f["window_days"] = window
            if "filter" not in f and k.startswith(("price", "qty")):
                f["filter"] = {"event_id": "2"}
            out[k.format(w=f"{window or 'life'}")] = f
    return out


def repo_text(extra: dict, declared: dict | None = None) -> str:
    repo = yaml.safe_load(DEFAULT_REPO.read_text())
    if declared:
        repo["sources"]["weblog"]["columns"] = dict(declared)
    repo["tables"]["customer_features"]["features"].update(extra)
    text = yaml.safe_dump(repo, sort_keys=False)
    parse_feature_repo(text, "benchmark repository")  # valid
    return text


def _build(raw: Path, store: Path, repo, client) -> None:
    ingest_weblog(str(raw), Store(str(store)), client=client, repo=repo, progress=False)
    materialize(Store(str(store)), client=client, repo=repo)


def window_ratio(work: Path, days: int, rows: int, customers: int, repeats: int,
                 client) -> dict:
    raw = work / "raw"
    generate_weblog(str(raw), days=days, customers=customers, products=200,
                    rows_per_day=rows, parts=1, seed=7, bad_rows=0.001, late_fraction=0.02)
    folders = sorted(p for p in raw.iterdir() if p.is_dir())
    head, last = work / "head", work / "last"
    head.mkdir()
    last.mkdir()
    for p in folders[:-1]:
        p.rename(head / p.name)
    folders[-1].rename(last / folders[-1].name)
    repos = {w: parse_feature_repo(repo_text(ten_features(w)), f"{w}d") for w in (365, 7)}
    started = time.perf_counter()
    for w, repo in repos.items():
        _build(head, work / f"base{w}", repo, client)
    build = round(time.perf_counter() - started, 1)  # both histories through day N-1
    times: dict[int, list[float]] = {365: [], 7: []}
    for r in range(repeats + 1):
        for w, repo in repos.items():
            store = work / f"run{w}"
            shutil.rmtree(store, ignore_errors=True)
            shutil.copytree(work / f"base{w}", store)
            ingest_weblog(str(last), Store(str(store)), client=client, repo=repo,
                          progress=False)
            started = time.perf_counter()
            materialize(Store(str(store)), client=client, repo=repo)
            if r:  # the first round warms up
                times[w].append(time.perf_counter() - started)
    ratios = [a / b for a, b in zip(times[365], times[7], strict=True)]
    return {"measure": "window", "day": days, "rows_per_day": rows, "customers": customers,
            "build_seconds": build, "seconds_365d": times[365],
            "seconds_7d": times[7], "ratio_365_over_7": round(statistics.median(ratios), 3),
            "target": 1.3}


def _task_kind(key) -> str:
    """A Dask task's kind: ``fs-ext-2026-01-02-<ns>`` -> ``ext``; ``_ingest_one-<uuid>`` ->
    ``_ingest_one``."""
    key = str(key[0] if isinstance(key, tuple) else key)
    found = re.match(r"fs-([a-z]+)-\d{4}-\d\d-\d\d", key)
    return found.group(1) if found else re.sub(r"-[0-9a-f]{8,}.*$|-[0-9a-f]{8}-.*$", "", key)


def _task_seconds(stream: list[dict]) -> dict[str, float]:
    """Compute seconds per task kind of a Dask task stream, largest first."""
    out: dict[str, float] = {}
    for task in stream:
        for ss in task["startstops"]:
            if ss["action"] == "compute":
                kind = _task_kind(task["key"])
                out[kind] = out.get(kind, 0.0) + ss["stop"] - ss["start"]
    return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def ingest_ratio(work: Path, days: int, rows: int, customers: int, repeats: int,
                 client, in_process: bool = False, profile: bool = False) -> dict:
    raw = work / "iraw"
    generate_weblog(str(raw), days=days, customers=customers, products=200,
                    rows_per_day=rows, parts=2, seed=8, bad_rows=0.001, late_fraction=0.02)
    repos = {"default": parse_feature_repo(DEFAULT_REPO.read_text(), "default"),
             "plus30": parse_feature_repo(repo_text(thirty_features(), DECLARED), "plus30")}
    times: dict[str, list[float]] = {k: [] for k in repos}
    cpu: dict[str, list[float]] = {k: [] for k in repos}
    tasks: dict[str, dict[str, float]] = {}
    for r in range(repeats + 1):
        for name, repo in repos.items():
            store = work / f"ingest-{name}"
            shutil.rmtree(store, ignore_errors=True)
            workers = 0.0 if in_process else _workers_cpu(client)
            started, cpu_started = time.perf_counter(), time.process_time()
            if profile and r == repeats:  # the last round: compute seconds per task kind
                from distributed import get_task_stream

                with get_task_stream(client) as stream:
                    _build(raw, store, repo, client)
                tasks[name] = _task_seconds(stream.data)
            else:
                _build(raw, store, repo, client)
            if r:
                times[name].append(time.perf_counter() - started)
                spent = time.process_time() - cpu_started
                if not in_process:  # this process (client and scheduler) plus the workers
                    spent += _workers_cpu(client) - workers
                cpu[name].append(round(spent, 2))
    ratios = [a / b for a, b in zip(times["plus30"], times["default"], strict=True)]
    out = {"measure": "ingest", "days": days, "rows_per_day": rows,
           "seconds_default": times["default"], "seconds_plus30": times["plus30"],
           "ratio": round(statistics.median(ratios), 3), "target": 1.5}
    # CPU seconds of the whole build: in process, this process's (the workers are its
    # threads); else this process's (client and scheduler) plus the worker processes'. On a
    # loaded machine the ratio of CPU seconds moves less than the wall's
    out["cpu_seconds_default"], out["cpu_seconds_plus30"] = cpu["default"], cpu["plus30"]
    out["cpu_ratio"] = round(statistics.median(
        [a / b for a, b in zip(cpu["plus30"], cpu["default"], strict=True)]), 3)
    if profile:  # where the time goes, per task kind (ext*: the SPEC §3a chain's tasks)
        out["task_seconds_default"], out["task_seconds_plus30"] = \
            tasks["default"], tasks["plus30"]
    return out


def _cpu_self() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _workers_cpu(client) -> float:
    """User + system CPU seconds of every worker process so far."""
    return sum(client.run(_cpu_self).values())


def sketch_error(customers: int = 1000, seed: int = 1) -> dict:
    import pyarrow as pa

    from featurestore.features.aggs.kernels import StateKey, finalize, merge
    from featurestore.features.definitions import Filter

    key = StateKey("sketch", "v", "string", False, json.dumps(Filter().model_dump(),
                                                               sort_keys=True))
    rng = random.Random(seed)
    errors = []
    from featurestore.features.aggs.kernels import _lists, _sketchify
    for c in range(customers):
        n = rng.randint(101, 20000)
        # three day partials with overlapping values, merged as a window would be
        days = []
        for d in range(3):
            values = sorted({f"c{c}-{rng.randrange(n)}" for _ in range(n // 2)} if d else
                            {f"c{c}-{i}" for i in range(n)})
            t = _lists(pa.table({"customer_id": pa.array(["a"] * len(values),
                                                          pa.large_string()),
                                 "v": pa.array(values, pa.large_string())}))
            t = _sketchify(t, [])
            days.append(pa.table({"customer_id": t["customer_id"], f"{key.name}.v": t["v"],
                                  f"{key.name}.h": t["h"]}))
        state = merge(days, [(key, key.name)])
        est = finalize(key, key.name, state, pa.array(["a"], pa.large_string()),
                       "approx_distinct", None, 0).to_pylist()[0]
        errors.append(abs(est - n) / n)
    errors.sort()
    return {"measure": "sketch", "customers": customers,
            "within_3pct": round(sum(e <= 0.03 for e in errors) / len(errors), 4),
            "median_error": round(errors[len(errors) // 2], 5),
            "p95_error": round(errors[int(0.95 * len(errors))], 5), "target": 0.95}


@contextlib.contextmanager
def _client(workers: int, in_process: bool):
    if not in_process:
        with dask_client(None, workers, None) as client:
            yield client
        return
    from distributed import Client, LocalCluster

    with LocalCluster(processes=False, n_workers=workers, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="a quick run")
    ap.add_argument("--days", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=None, help="rounds (default 5; --small 2)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", choices=["window", "ingest", "sketch"])
    ap.add_argument("--window-rows", type=int, default=None,
                    help="hits per day of the window history (default 4000; --small 300): "
                         "e.g. 150 with --window-customers 100 builds day 400 in minutes")
    ap.add_argument("--window-customers", type=int, default=None,
                    help="customers of the window history (default 5000; --small 300)")
    ap.add_argument("--profile", action="store_true",
                    help="ingest measure: also print the last round's compute seconds per "
                         "Dask task kind of each repository (ext, extday, extfront, asof ...)")
    ap.add_argument("--in-process", action="store_true",
                    help="ingest measure on worker threads of this process instead of "
                         "worker processes")
    args = ap.parse_args()
    days, rows, customers = (args.days, 4000, 5000) if not args.small else (
        args.days if args.days != 400 else 40, 300, 300)
    wrows = args.window_rows or rows
    wcustomers = args.window_customers or customers
    if args.repeats is None:
        args.repeats = 2 if args.small else 5
    work = Path(tempfile.mkdtemp(prefix="aggs-bench-"))
    try:
        if args.only in (None, "sketch"):
            print(json.dumps(sketch_error(200 if args.small else 1000)), flush=True)
        with _client(args.workers, args.in_process) as client:
            if args.only in (None, "window"):
                print(json.dumps(window_ratio(work, days, wrows, wcustomers, args.repeats,
                                              client)), flush=True)
            if args.only in (None, "ingest"):
                print(json.dumps(ingest_ratio(work, 30 if args.small else 60, rows * 5,
                                              customers, args.repeats, client,
                                              args.in_process, args.profile)), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
