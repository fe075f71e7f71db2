"""Benchmark: point-in-time training set vs a DuckDB ASOF JOIN over the same parquet.

    python benchmarks/training_set.py                     # 20,000 customers x 60 as-of dates
    python benchmarks/training_set.py --customers 5000 --dates 30   # quick run
    python benchmarks/training_set.py --customers 5000 --dates 30 --runs 3   # three rounds

Writes synthetic SPEC-layout ``customer_features/as_of=D`` partitions (every customer on every
date) and ``events/event_date=D`` partitions (through the last as-of date + 30, so every label
window is complete), plus each events part's partial daily aggregates
(``_partials/customer/event_date=D``) written by the ingest's own writer
(``featurestore.features.partials.write_partials``, built-in repository), as a real ingest
leaves them. Then times, in the same run, each side reading what its user would have:

* ours, in process (thread pool) returning a pandas frame: features + purchasers from the
  partials; the same with the purchasers read from the events (``--no-partials`` store, or a
  store ingested before partials existed); against DuckDB reading the features and the events
  parquet and returning a pandas frame (``.df()``);
* ours on a 2-worker distributed LocalCluster writing parquet (partials), against DuckDB
  ``COPY ... TO`` parquet (events).

DuckDB computes the label with an ``ASOF LEFT JOIN`` of each (customer, as_of) row to the
customer's first purchase date after as_of (label = that date <= as_of + 30). Both sides are
checked to give the same row count and positives. Peak memory is the peak RSS increase of
this process (and of the workers, for the cluster run) sampled every 20 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from featurestore.features.daily import daily_plan
from featurestore.features.definitions import load_feature_repo
from featurestore.features.partials import write_partials
from featurestore.layout import PARTIALS_ROOT
from featurestore.storage import Store
from featurestore.training import build_training_set
from featurestore.training.pointintime import (
    commit_training_set,
    execute_training_set,
    feature_dates,
    latest_data_date,
    plan_training_set,
)

START = dt.date(2026, 1, 1)
EVENT_LISTS = np.array(["2", "2,12", "12", "1", "1,2", "10", "21", ""], dtype=object)
EVENT_P = np.array([0.45, 0.1, 0.1, 0.0025, 0.0025, 0.1, 0.1, 0.145])


def make_data(root: Path, customers: int, dates: int, hits_per_day: int, seed: int = 0) -> Store:
    store = Store(str(root))
    rng = np.random.default_rng(seed)
    ids = pd.array(np.char.add("C", np.arange(customers).astype(str)), dtype="string")
    for k in range(dates):
        day = START + dt.timedelta(days=k)
        n = customers
        f = pd.DataFrame({"customer_id": ids})
        for c in ("page_views_1d", "page_views_7d", "page_views_30d", "product_views_7d",
                  "product_views_30d", "distinct_products_viewed_30d", "cart_adds_7d",
                  "purchases_7d", "purchases_30d"):
            f[c] = rng.poisson(3, n).astype("int64")
        f["revenue_30d"] = rng.gamma(2.0, 20.0, n)
        f["active_days_30d"] = rng.integers(0, 31, n).astype("int64")
        f["days_since_last_visit"] = rng.integers(0, 60, n).astype("int64")
        last = pd.array(rng.integers(0, 90, n), dtype="Int64")
        last[rng.random(n) < 0.6] = pd.NA
        f["days_since_last_purchase"] = last
        store.write_parquet(f, "customer_features", f"as_of={day.isoformat()}", "part-0.parquet")
    base = int(pd.Timestamp(START, tz="UTC").timestamp())
    for k in range(dates + 30):
        day = START + dt.timedelta(days=k)
        n = hits_per_day
        cust = rng.integers(0, customers, n)
        ev = EVENT_LISTS[rng.choice(len(EVENT_LISTS), n, p=EVENT_P)]
        e = pd.DataFrame({
            "hit_time_gmt": (base + 86_400 * k + rng.integers(0, 86_400, n)).astype("int64"),
            "customer_id": pd.array(np.char.add("C", cust.astype(str)), dtype="string"),
            "page_url": pd.array(np.full(n, "https://shop.example/p"), dtype="string"),
            "post_page_event": pd.array(np.full(n, "0"), dtype="string"),
            "post_event_list": pd.array(np.where(ev == "", None, ev), dtype="string"),
            "post_product_list": pd.array(np.full(n, None), dtype="string"),
        })
        store.write_parquet(e, "events", f"event_date={day.isoformat()}", "part-0.parquet")
    add_partials(store)
    return store


def add_partials(store: Store) -> None:
    """Each events part's partial daily aggregates, by the writer an ingest task calls (file
    id ``0`` = ``part-0.parquet``; the built-in repository's daily plan)."""
    plan = daily_plan(load_feature_repo())
    for d in store.partitions("events", "event_date"):
        day = dt.date.fromisoformat(d)
        write_partials(store, plan, day, "0",
                       pd.read_parquet(store.uri("events", f"event_date={d}", "part-0.parquet")))


def ours_from_events(store: Store) -> tuple[int, int]:
    """Ours in process with the purchasers read from the events (no partials): the same
    plan / execute / commit as ``build_training_set``. Returns (rows, positives)."""
    latest = latest_data_date(store)
    plan = plan_training_set(latest, feature_dates(store), lambda t: True, partials=None)
    built, excluded, sources = execute_training_set(store, plan)
    res = commit_training_set(store, plan, built, excluded, None, sources)
    assert set(res.label_event_dates) == {"events"}, res.label_event_dates
    return res.rows, res.positives


@contextlib.contextmanager
def peak_rss(pids: list[int] | None = None) -> Iterator[dict[str, float]]:
    """Peak increase of summed RSS (this process + ``pids``) over the block, in MiB."""
    procs = [psutil.Process()] + [psutil.Process(p) for p in pids or []]

    def rss() -> int:
        return sum(p.memory_info().rss for p in procs)

    out = {"peak_mib": 0.0}
    base, peak, stop = rss(), [0], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss())
            stop.wait(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        yield out
    finally:
        stop.set()
        t.join()
        out["peak_mib"] = max(0, max(peak[0], rss()) - base) / 2**20


def _load() -> str:
    """The 1-minute load average (the machine may be shared)."""
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def duckdb_sql(store: Store, latest: dt.date) -> str:
    feats = store.uri("customer_features", "*", "*.parquet")
    events = store.uri("events", "*", "*.parquet")
    return f"""
    WITH f AS (
        SELECT * REPLACE (CAST(as_of AS DATE) AS as_of)
        FROM read_parquet('{feats}', hive_partitioning = true)
        WHERE CAST(as_of AS DATE) + INTERVAL 30 DAY <= DATE '{latest}'),
    b AS (
        SELECT DISTINCT customer_id, CAST(event_date AS DATE) AS d
        FROM read_parquet('{events}', hive_partitioning = true)
        WHERE customer_id IS NOT NULL AND regexp_matches(post_event_list, '(^|,)1(,|$)'))
    SELECT f.*, CAST(b.d IS NOT NULL AND b.d <= f.as_of + INTERVAL 30 DAY AS INTEGER)
           AS purchased_next_30d
    FROM f ASOF LEFT JOIN b ON f.customer_id = b.customer_id AND b.d > f.as_of
    """


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--dates", type=int, default=60)
    ap.add_argument("--hits-per-day", type=int, default=30_000)
    ap.add_argument("--workdir", help="keep the data here (default: a temp dir, removed)")
    ap.add_argument("--no-cluster", action="store_true", help="skip the LocalCluster run")
    ap.add_argument("--no-partials", action="store_true",
                    help="a store without the ingest's partials (as before they existed)")
    ap.add_argument("--runs", type=int, default=1, help="rounds of every measurement")
    args = ap.parse_args()

    import duckdb

    work = Path(args.workdir or tempfile.mkdtemp(prefix="fs-bench-ts-"))
    try:
        t = time.perf_counter()
        if (work / "store" / "events").exists():       # --workdir of an earlier run: reuse
            store = Store(str(work / "store"))
            if not args.no_partials and not (work / "store" / PARTIALS_ROOT).exists():
                add_partials(store)
        else:
            store = make_data(work / "store", args.customers, args.dates, args.hits_per_day)
        if args.no_partials:
            shutil.rmtree(work / "store" / PARTIALS_ROOT, ignore_errors=True)
        latest = START + dt.timedelta(days=args.dates - 1 + 30)
        print(f"data: {args.customers:,} customers x {args.dates} as-of dates, "
              f"{args.dates + 30} event dates x {args.hits_per_day:,} hits "
              f"(written in {time.perf_counter() - t:.1f} s) under {work}")

        # warm-up: one whole run of each (imports, page cache), then time
        build_training_set(store)
        con = duckdb.connect()
        con.execute("SET threads TO 2")
        sql = duckdb_sql(store, latest)
        con.execute(sql).df()

        def reads(res) -> str:
            got = res.label_event_dates
            where = {"partials": "_partials/customer", "events": "events"}
            return "customer_features + purchasers of " + " + ".join(
                f"{n} event dates from {where[k]}" for k, n in sorted(got.items(), reverse=True))

        ratios: dict[str, list[float]] = {"in process": [], "in process, events": [],
                                          "cluster": []}
        for r in range(1, args.runs + 1):
            with peak_rss() as m_ours:
                t = time.perf_counter()
                ours = build_training_set(store)
                s_ours = time.perf_counter() - t
            t = time.perf_counter()
            ev_rows, ev_pos = ours_from_events(store)
            s_events = time.perf_counter() - t
            with peak_rss() as m_duck:
                t = time.perf_counter()
                duck = con.execute(sql).df()
                s_duck = time.perf_counter() - t
            assert ours.rows == len(duck) == ev_rows, (ours.rows, len(duck), ev_rows)
            assert ours.positives == int(duck["purchased_next_30d"].sum()) == ev_pos
            if r == 1:
                print(f"rows {ours.rows:,}, positives {ours.positives:,} "
                      f"({ours.positives / ours.rows:.2%}), identical in all three")
                print(f"reads: ours = {reads(ours)}; ours (events) = customer_features + "
                      "events; DuckDB = customer_features + events parquet")
            ratios["in process"].append(s_ours / s_duck)
            ratios["in process, events"].append(s_events / s_duck)
            print(f"round {r} in-process -> pandas: ours {s_ours:6.2f} s "
                  f"(peak +{m_ours['peak_mib']:.0f} MiB) | ours, labels from events "
                  f"{s_events:6.2f} s | DuckDB ASOF JOIN {s_duck:6.2f} s "
                  f"(peak +{m_duck['peak_mib']:.0f} MiB) | ratio {s_ours / s_duck:.2f}x "
                  f"(events {s_events / s_duck:.2f}x)  load {_load()}", flush=True)
            del ours, duck

        if not args.no_cluster:
            from distributed import Client, LocalCluster

            with (LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=":0") as cluster, Client(cluster) as client):
                pids = [w.pid for w in cluster.workers.values() if getattr(w, "pid", None)]
                build_training_set(store, client=client, output=str(work / "warm"))
                for r in range(1, args.runs + 1):
                    shutil.rmtree(work / "ts", ignore_errors=True)
                    with peak_rss(pids) as m_ours:
                        t = time.perf_counter()
                        res = build_training_set(store, client=client, output=str(work / "ts"))
                        s_ours = time.perf_counter() - t
                    out = work / "duck.parquet"
                    out.unlink(missing_ok=True)
                    with peak_rss() as m_duck:
                        t = time.perf_counter()
                        con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)")
                        s_duck = time.perf_counter() - t
                    assert res.rows == con.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0]
                    ratios["cluster"].append(s_ours / s_duck)
                    print(f"round {r} 2-worker cluster -> parquet: ours {s_ours:6.2f} s "
                          f"(peak +{m_ours['peak_mib']:.0f} MiB incl. workers; "
                          f"{reads(res)}) | DuckDB COPY {s_duck:6.2f} s "
                          f"(peak +{m_duck['peak_mib']:.0f} MiB) | ratio "
                          f"{s_ours / s_duck:.2f}x  load {_load()}", flush=True)
        for name, values in ratios.items():
            if values:
                print(f"ours / DuckDB, {name}: rounds "
                      + " ".join(f"{v:.2f}x" for v in values)
                      + f"; median {float(np.median(values)):.2f}x")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
        else:
            for sub in ("warm", "ts", "duck.parquet"):
                shutil.rmtree(work / sub, ignore_errors=True)
                (work / sub).unlink(missing_ok=True) if (work / sub).is_file() else None


if __name__ == "__main__":
    main()
