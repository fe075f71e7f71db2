"""Scale runs for docs/scale.md (issue #15): what the projection alone cannot show.

    python benchmarks/scale.py workers     [--mb 200] [--rounds 3]
    python benchmarks/scale.py small-files [--files 8200] [--workers 2]
    python benchmarks/scale.py serve       [--customers 10000000] [--seconds 10]

``workers``: parallel efficiency. One generated drop ingested into an empty store by a running
LocalCluster of 1 worker and one of 2 workers (single-threaded processes, as `featurestore.cluster`
starts them), in interleaved rounds; efficiency = t(1) / (2 x t(2)). On a 2-core machine two
workers is the most that can scale; more needs more machines (the compose stack's
``--scale worker=N``).

``small-files``: a drop of ``--files`` tiny gzip files (1,057 columns, a few rows each), the
seeds' file count at toy size: the per-file cost of the scheduler, ledger and commit records.
Times the whole ``featurestore ingest`` command (which also materializes), then a re-run with
nothing new (discovery + ledger only).

``serve``: ``featurestore serve`` (real uvicorn subprocess) over a store whose latest
``customer_features`` partition holds ``--customers`` rows: time from start to ``/ready``
(snapshot load), the server's peak RSS (VmHWM), then single-customer GET req/s and p99 with wrk.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _vmhwm_mb(pid: int) -> float:
    """Peak resident memory of process ``pid`` (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def workers(mb: int, rounds: int, workdir: str | None) -> dict:
    """Ingest the same drop with 1 and with 2 workers on running clusters; print efficiency.

    Args:
        mb: uncompressed size of the generated drop, MB.
        rounds: interleaved timed rounds per cluster size.
        workdir: where the drop and stores go (default: a temp dir, removed after).

    Returns:
        The figures printed, as a dict.
    """
    from distributed import Client

    from featurestore.cluster import local_cluster
    from featurestore.generate import generate_weblog
    from featurestore.sources.weblog.ingest import ingest_weblog
    from featurestore.storage import Store

    root = Path(workdir or tempfile.mkdtemp(prefix="scale-workers-"))
    raw = root / "raw"
    if not raw.exists():
        generate_weblog(str(raw), days=1, customers=50_000, products=2_000,
                        rows_per_day=max(1000, int(mb * 1e6 / 2100)), parts=16, seed=3)
    files = sorted(raw.rglob("*.tsv.gz"))
    gz_mb = sum(f.stat().st_size for f in files) / 1e6
    times: dict[int, list[float]] = {1: [], 2: []}
    clusters = {n: local_cluster(n) for n in (1, 2)}
    try:
        clients = {n: Client(c) for n, c in clusters.items()}
        for n, client in clients.items():  # warm: numba cache, allocator, imports
            ingest_weblog(str(raw), Store(str(root / f"warm{n}")), client=client)
            shutil.rmtree(root / f"warm{n}", ignore_errors=True)
        for _ in range(rounds):
            for n, client in clients.items():
                store = root / f"store{n}"
                shutil.rmtree(store, ignore_errors=True)
                t = time.perf_counter()
                rep = ingest_weblog(str(raw), Store(str(store)), client=client)
                times[n].append(time.perf_counter() - t)
                assert rep.ok and rep.files_ingested == len(files), rep.to_dict()
        for c in clients.values():
            c.close()
    finally:
        for c in clusters.values():
            c.close()
    t1, t2 = statistics.median(times[1]), statistics.median(times[2])
    out = {"files": len(files), "gzip_mb": round(gz_mb, 1), "rows": rep.lines,
           "seconds_1_worker": [round(t, 2) for t in times[1]],
           "seconds_2_workers": [round(t, 2) for t in times[2]],
           "speedup": round(t1 / t2, 2), "efficiency": round(t1 / (2 * t2), 2),
           "cores": os.cpu_count()}
    print(f"drop: {len(files)} files, {gz_mb:.0f} MB gzip, {rep.lines:,} rows; {rounds} "
          "interleaved rounds (median)")
    print(f"1 worker   {t1:6.2f} s   ({' '.join(f'{t:.2f}' for t in times[1])})")
    print(f"2 workers  {t2:6.2f} s   ({' '.join(f'{t:.2f}' for t in times[2])})")
    print(f"speed-up {t1 / t2:.2f}x, parallel efficiency {t1 / (2 * t2):.0%} "
          f"({os.cpu_count()} cores)")
    if not workdir:
        shutil.rmtree(root, ignore_errors=True)
    return out


def _cli(*args: str) -> tuple[float, str]:
    """Run the real ``featurestore`` command; return (seconds, stdout)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "featurestore", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    took = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"featurestore {args[0]} failed ({proc.returncode}): "
                         f"{proc.stderr.strip().splitlines()[-1:]}")
    return took, proc.stdout


def small_files(files: int, n_workers: int, workdir: str | None) -> dict:
    """Ingest one drop of ``files`` tiny files with the whole CLI command; print per-file cost.

    Args:
        files: number of gzip files in the drop (the seeds deliver 8,200 a day).
        n_workers: workers of the command's own LocalCluster.
        workdir: where the drop and store go (default: a temp dir, removed after).

    Returns:
        The figures printed, as a dict.
    """
    from featurestore.generate import generate_weblog

    root = Path(workdir or tempfile.mkdtemp(prefix="scale-small-"))
    raw, store = root / "raw", root / "store"
    t = time.perf_counter()
    if not raw.exists():
        generate_weblog(str(raw), days=1, customers=20_000, products=1_000,
                        rows_per_day=files * 4, parts=files, seed=5)
    gen_s = time.perf_counter() - t
    n = len(list(raw.rglob("*.tsv.gz")))
    shutil.rmtree(store, ignore_errors=True)
    first, out = _cli("ingest", str(raw), "--store", str(store), "--workers", str(n_workers),
                      "--json", "--no-progress")
    report = json.loads(out[out.index("{"):])
    again, _ = _cli("ingest", str(raw), "--store", str(store), "--workers", str(n_workers),
                    "--json", "--no-progress")
    ingest = report.get("ingest", report)
    res = {"files": n, "generated_seconds": round(gen_s, 1), "command_seconds": round(first, 1),
           "ms_per_file": round(first / n * 1000, 1), "rerun_nothing_new_seconds": round(again, 1),
           "files_ingested": ingest.get("files_ingested"), "rows": ingest.get("lines")}
    print(f"drop: {n:,} files ({res['rows']} rows), generated in {gen_s:.0f} s")
    print(f"featurestore ingest (whole command, {n_workers} workers, ingest + materialize): "
          f"{first:.1f} s = {first / n * 1000:.1f} ms per file")
    print(f"re-run with nothing new (discovery + ledger): {again:.1f} s")
    if not workdir:
        shutil.rmtree(root, ignore_errors=True)
    return res


def _fabricate_features(root: Path, customers: int) -> list[str]:
    """A store whose latest customer_features partition has ``customers`` rows (random values
    in the SPEC columns) and a small customer_product_features partition."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from serve import INTS

    rng = np.random.default_rng(0)
    ids = np.char.add("C", np.char.zfill(np.arange(customers).astype(str), 8)).astype(object)
    cols = {"customer_id": pa.array(ids, pa.string())}
    for col in INTS:
        cols[col] = pa.array(rng.poisson(5, customers).astype("int64"))
    cols["revenue_30d"] = pa.array(rng.gamma(1.0, 30.0, customers).round(2))
    cols["active_days_30d"] = pa.array(rng.integers(0, 31, customers).astype("int64"))
    cols["days_since_last_visit"] = pa.array(rng.integers(0, 60, customers).astype("int64"))
    last = rng.integers(0, 90, customers).astype("int64")
    cols["days_since_last_purchase"] = pa.array(last, mask=rng.random(customers) < 0.7)
    part = root / "store" / "customer_features" / "as_of=2026-03-01"
    part.mkdir(parents=True)
    # row groups of 250k rows: a whole Redis push splits its tasks by row group
    pq.write_table(pa.table(cols), part / "part-0.parquet", row_group_size=250_000)
    n = min(customers, 1_000_000)
    cp = pd.DataFrame({"customer_id": ids[rng.integers(0, customers, n)],
                       "product_id": [f"P{i:05d}" for i in rng.integers(0, 2000, n)]})
    cp = cp.drop_duplicates(["customer_id", "product_id"])
    cp["product_views_7d"] = rng.integers(0, 7, len(cp)).astype("int64")
    cp["product_views_30d"] = (cp["product_views_7d"] * 3).astype("int64")
    part = root / "store" / "customer_product_features" / "as_of=2026-03-01"
    part.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(cp, preserve_index=False), part / "part-0.parquet")
    return [ids[i] for i in rng.integers(0, customers, 1000)]


def _push_redis(store_dir: Path, root: Path, workers: int) -> tuple[Any, str, dict]:
    """Start a redis-server, push the store to it from a LocalCluster of ``workers``; return
    the server, its URL and the push figures (rows/s, Redis bytes per customer row)."""
    import redis
    from distributed import Client, LocalCluster
    from serve import start_redis

    from featurestore.online.redis_codec import SlotMeta, TableKeys
    from featurestore.online.redis_push import push_online
    from featurestore.storage import Store

    shutil.rmtree(root / "redis", ignore_errors=True)  # a kept --workdir: a fresh server
    proc, url = start_redis(root)
    r = redis.Redis.from_url(url, socket_timeout=600)  # MEMORY USAGE of 10 M fields is slow
    store = Store(str(store_dir))
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        t = time.perf_counter()
        report = push_online(store, url, tables={"customer_features": ["customer_id"]},
                             recency={"customer_features": ["days_since_last_visit",
                                                            "days_since_last_purchase"]},
                             client=client, parts=2 * workers)
        seconds = time.perf_counter() - t
    info = report.tables["customer_features"]
    rows = info["written"]
    print(f"redis push of customer_features ({workers} workers): {rows:,} rows in {seconds:.1f} s "
          f"({rows / seconds:,.0f} rows/s)", flush=True)
    keys = TableKeys(report.namespace, "customer_features")
    meta = SlotMeta.loads(r.get(keys.meta(info["slot"])))
    hash_bytes, what = _slot_bytes(r, keys, info["slot"], meta.buckets if meta else 0, rows)
    figures = {"push_seconds": round(seconds, 1), "push_rows_per_second": round(rows / seconds),
               "redis_bytes_per_customer_row": round(hash_bytes / rows),
               "redis_used_memory_mb": round(r.info("memory")["used_memory"] / 1e6)}
    print(f"redis push of customer_features ({workers} workers): {rows:,} rows in {seconds:.1f} s "
          f"({rows / seconds:,.0f} rows/s); Redis {hash_bytes / rows:.0f} bytes per customer row "
          f"({what}), used_memory {figures['redis_used_memory_mb']} MB")
    return proc, url, figures


def _slot_bytes(r, keys, slot: str, buckets: int, rows: int) -> tuple[int, str]:
    """Redis's bytes for a slot's rows (MEMORY USAGE, key overhead included) and how they were
    counted: every bucket up to 200,000 buckets (pipelined), else 20,000 of them scaled; a
    slot of one hash (no buckets): that hash, sampled beyond 1 M fields."""
    if not buckets:
        used = r.memory_usage(keys.rows(slot), samples=0 if rows <= 1_000_000 else 100_000)
        return used, "MEMORY USAGE of the slot's one hash"
    picked = range(buckets) if buckets <= 200_000 else \
        range(0, buckets, max(1, buckets // 20_000))
    total = 0
    picked = list(picked)
    for i in range(0, len(picked), 5_000):
        pipe = r.pipeline(transaction=False)
        for b in picked[i:i + 5_000]:
            pipe.memory_usage(keys.rows(slot, b), samples=0)
        total += sum(x or 0 for x in pipe.execute())
    scaled = round(total * buckets / len(picked))
    how = "every bucket" if len(picked) == buckets else f"{len(picked):,} buckets scaled"
    return scaled, f"MEMORY USAGE of the slot's {buckets:,} bucket hashes, {how}"


def serve(customers: int, seconds: int, workdir: str | None, online_store: str = "memory",
          workers: int = 2) -> dict:
    """Serve ``customers`` customers from a real ``featurestore serve``; print load time, RSS
    and GET latency (``online_store="redis"``: after a push to a local redis-server, with its
    rate and Redis's bytes per customer row).

    Args:
        customers: rows of the served customer_features partition.
        seconds: wrk duration of the timed GET run.
        workdir: where the store goes (default: a temp dir, removed after).
        online_store: ``memory`` or ``redis``.
        workers: LocalCluster workers of the Redis push.

    Returns:
        The figures printed, as a dict.
    """
    import httpx
    from serve import free_port, wrk

    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install -y wrk")
    root = Path(workdir or tempfile.mkdtemp(prefix="scale-serve-"))
    t = time.perf_counter()
    if (root / "store" / "customer_features").exists():  # a kept --workdir: reuse the store
        import pyarrow.parquet as pq

        ids = pq.read_table(root / "store" / "customer_features", columns=["customer_id"])
        sample = [ids.column(0)[i].as_py() for i in range(0, ids.num_rows,
                                                          max(1, ids.num_rows // 1000))][:1000]
    else:
        sample = _fabricate_features(root, customers)
    fab_s = time.perf_counter() - t
    pq_mb = sum(f.stat().st_size for f in (root / "store").rglob("*.parquet")) / 1e6
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    redis_proc, pushed = None, {}
    if online_store == "redis":
        redis_proc, url, pushed = _push_redis(root / "store", root, workers)
        env["FEATURESTORE_ONLINE_STORE"] = url
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "featurestore", "serve", "--store",
                             str(root / "store"), "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        ready_s = None
        while time.perf_counter() - t < 1800:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200:
                    ready_s = time.perf_counter() - t
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"featurestore serve exited with {proc.returncode}")
            time.sleep(0.2)
        if ready_s is None:
            raise SystemExit("featurestore serve was not ready within 30 minutes")
        got = httpx.get(f"http://127.0.0.1:{port}/customers/{sample[0]}/features").json()
        assert got["customer_id"] == sample[0], got
        rss_ready = _vmhwm_mb(proc.pid)
        script = ("local ids = {" + ",".join(f'"{c}"' for c in sample) + "}\n"
                  "local n = 0\nrequest = function()\n  n = n % #ids + 1\n"
                  "  return wrk.format('GET', '/customers/' .. ids[n] .. '/features')\nend\n")
        wrk(f"http://127.0.0.1:{port}", script, 2, 4, root)  # warm-up
        r = wrk(f"http://127.0.0.1:{port}", script, seconds, 4, root)
        rss = _vmhwm_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=60)
    res = {"online_store": online_store, **pushed, "customers": customers,
           "parquet_mb": round(pq_mb, 1),
           "fabricated_seconds": round(fab_s, 1), "start_to_ready_seconds": round(ready_s, 1),
           "peak_rss_mb_at_ready": round(rss_ready), "peak_rss_mb": round(rss),
           "get_rps": round(r["rps"]), "get_p50_ms": r["p50_ms"], "get_p99_ms": r["p99_ms"],
           "non_2xx": r["errors"]}
    print(f"store: {customers:,} customers, parquet {pq_mb:.0f} MB (fabricated in {fab_s:.0f} s)")
    print(f"featurestore serve: start to /ready {ready_s:.1f} s, peak RSS {rss:,.0f} MB")
    print(f"single GET (wrk -t1 -c4 -d{seconds}s): {r['rps']:,.0f} req/s, p50 "
          f"{r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, non-2xx {r['errors']}")
    if not workdir:
        shutil.rmtree(root, ignore_errors=True)
    return res


def _day_partitions(root: Path, customers: int, active: int, days: int = 3) -> list[Any]:
    """``days`` consecutive customer_features partitions of ``customers`` rows: each day
    ``active`` random customers have new activity (counts change, recency 0); everyone else
    keeps their counts and their recency grows by one day (the same event date). Returns the
    ids of the customers active each day (what the materialization hands over)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from serve import INTS

    rng = np.random.default_rng(1)
    ids = np.char.add("C", np.char.zfill(np.arange(customers).astype(str), 8)).astype(object)
    counts = {c: rng.poisson(5, customers).astype("int64") for c in INTS}
    revenue = rng.gamma(1.0, 30.0, customers).round(2)
    last_visit = rng.integers(0, 60, customers).astype("int64")
    active_ids = []
    for d in range(days):
        moved = np.arange(0)
        if d:
            moved = rng.choice(customers, active, replace=False)
            for c in INTS:
                counts[c][moved] += 1
            revenue[moved] += 1.0
            last_visit += 1
            last_visit[moved] = 0
        cols = {"customer_id": pa.array(ids, pa.string()),
                **{c: pa.array(v) for c, v in counts.items()},
                "revenue_30d": pa.array(revenue), "days_since_last_visit": pa.array(last_visit)}
        part = root / "store" / "customer_features" / f"as_of=2026-03-0{d + 1}"
        part.mkdir(parents=True)
        pq.write_table(pa.table(cols), part / "part-0.parquet", row_group_size=1_000_000)
        active_ids.append(pa.array(ids[np.sort(moved)], pa.string()))
    return active_ids


def push_day(history: int, active: int, workdir: str | None, days: int = 5) -> dict:
    """The day's push to Redis with ``history`` customers in the table and ``active`` of them
    active each day, next to the same days with only ``active`` customers in history (issue
    #28: at most 2x). Each store gets two pushes first (a whole one, then a first day's);
    then ``days - 2`` day pushes of each, interleaved small / big (one redis-server each, both
    running), each handed the rows the materialization hands over (here: the customers active
    on the day or the day before, flagged with those active on the day, what
    ``featurestore.features.online_delta`` publishes for this data), from this process: the
    push writes the day's changes into an overlay and folds it into the base (both timed).
    The ratio is the median of the per-day ratios (a loaded machine moves single timings a
    lot).

    Args:
        history: customers in the big table.
        active: customers with new activity each day (also the small table's size).
        workdir: where the stores go (default: a temp dir, removed after).
        days: partitions per store (at least 3).

    Returns:
        The figures printed.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from serve import start_redis

    from featurestore.features.online_delta import commit_deltas, write_delta
    from featurestore.online.redis_push import push_online
    from featurestore.storage import Store

    root = Path(workdir or tempfile.mkdtemp(prefix="scale-push-day-"))
    cases: dict[str, dict[str, Any]] = {}
    tables = {"customer_features": ["customer_id"]}
    recency = {"customer_features": ["days_since_last_visit"]}

    def push_next(case: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """Publish the case's next day and its handover (not timed), push (timed)."""
        d = case["next"]
        case["next"] += 1
        p = case["parts"][d]
        table_dir = case["folder"] / "store" / "customer_features"
        (case["folder"] / "hidden" / p.name).rename(table_dir / p.name)
        as_of = p.name.split("=", 1)[1]
        changed = pa.chunked_array(case["moved"][max(d - 1, 0):d + 1], pa.string())
        write_delta(case["store"], "customer_features", as_of,
                    pq.read_table(table_dir / p.name), changed.combine_chunks(),
                    near=case["moved"][d])
        commit_deltas(case["store"], {"customer_features": as_of})
        t = time.perf_counter()
        report = push_online(case["store"], case["url"], tables=tables, recency=recency)
        return time.perf_counter() - t, report.tables["customer_features"]

    try:
        for label, customers in (("small", active), ("big", history)):
            folder = root / label
            moved = _day_partitions(folder, customers, active, days)
            proc, url = start_redis(folder)
            parts = sorted((folder / "store" / "customer_features").iterdir())
            (folder / "hidden").mkdir()
            for p in parts:  # published one day at a time, as the daily runs do
                p.rename(folder / "hidden" / p.name)
            cases[label] = {"folder": folder, "moved": moved, "proc": proc, "url": url,
                            "parts": parts, "next": 0, "customers": customers,
                            "store": Store(str(folder / "store")), "days": []}
            first = [push_next(cases[label])[0] for _ in range(2)]  # whole: slots a, b
            cases[label]["first_push_seconds"] = round(first[0], 3)
        for _ in range(days - 2):
            for label in ("small", "big"):
                seconds, info = push_next(cases[label])
                cases[label]["days"].append((seconds, info))
                print(f"  {label}: day push {seconds:.3f} s ({info['mode']}, "
                      f"{info['written']:,} written, {info.get('folded', 0):,} folded in "
                      f"{info.get('fold_seconds', 0):.3f} s)",
                      flush=True)
        out: dict[str, Any] = {}
        for label, case in cases.items():
            secs = [s for s, _ in case["days"]]
            out[label] = {"customers": case["customers"],
                          "seconds": [round(s, 3) for s in secs],
                          "median_seconds": round(statistics.median(secs), 3),
                          "modes": sorted({i["mode"] for _, i in case["days"]}),
                          "written": [i["written"] for _, i in case["days"]],
                          "first_push_seconds": case["first_push_seconds"]}
            print(f"{label}: {case['customers']:,} customers in history, {active:,} active a "
                  f"day: day push median {statistics.median(secs):.3f} s (the first whole push "
                  f"took {case['first_push_seconds']:.2f} s)")
        per_day = [b[0] / s[0] for s, b in zip(cases["small"]["days"], cases["big"]["days"],
                                                  strict=True)]
        out["ratio"] = round(statistics.median(per_day), 2)
        out["ratios"] = [round(x, 2) for x in per_day]
        print(f"day push with {history:,} in history / with {active:,}: {out['ratio']:.2f}x "
              f"(per day {' '.join(f'{x:.2f}' for x in per_day)}; target <= 2x)")
        return out
    finally:
        for case in cases.values():
            case["proc"].terminate()
            case["proc"].wait(timeout=60)
        if not workdir:
            shutil.rmtree(root, ignore_errors=True)
