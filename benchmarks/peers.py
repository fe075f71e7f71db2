"""Side by side with the peer a user would pick instead: Feast (``feast[dask]``, local provider).

    python benchmarks/peers.py [--customers 5000] [--dates 30] [--rounds 3] [--seconds 5]
        [--connections 4] [--workdir /tmp/fs-peers] [--no-serve] [--online-store redis]

Builds Feast in its own virtualenv (``<workdir>/feast-venv``, created with ``python -m venv``
and ``pip install 'feast[dask]'`` when missing; Feast runs only in subprocesses of that
environment), generates one data set (``benchmarks/training_set.py``'s ``make_data``: every
customer on every as-of date, plus the events the label is computed from) and measures in the
same run:

* point-in-time training sets (``--rounds`` interleaved rounds, every round printed): our
  ``build_training_set`` (in process, features + label from
  the ingest's partial daily aggregates, which ``make_data`` writes with the ingest's writer),
  DuckDB ``ASOF LEFT JOIN`` over the same parquet (features + label from events), and Feast's
  ``get_historical_features(...).to_df()`` (Dask offline store) for the same entity rows. Feast
  has no label logic: its entity dataframe carries our labels (how Feast users bring labels),
  so it does strictly less work. Row counts and positives are checked equal;
* serving: ``featurestore serve`` (GET ``/customers/{id}/features``, POST ``/features/batch``
  of 100) vs ``feast serve`` (POST ``/get-online-features`` of 1 and of 100 entities, SQLite
  online store materialized for the latest day) vs a hello-world FastAPI app, each with one
  worker process, driven by ``benchmarks/serve.py``'s ``wrk`` load generator in interleaved
  rounds;
* with ``--online-store redis``, both online stores in one local ``redis-server``: the rows
  per second written (our first whole push of the latest ``customer_features`` vs Feast's
  ``materialize`` of the same day into its Redis online store, ``feast[redis]``, each from one
  process), then the serving rounds above with ``featurestore serve`` reading Redis and
  ``feast serve`` reading Redis.

Prints every round and the ratios side by side. Needs ``wrk`` and network access to PyPI the
first time (the virtualenv is reused afterwards).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from serve import free_port, start, wrk  # noqa: E402
from training_set import START, duckdb_sql, make_data  # noqa: E402

from featurestore.storage import Store  # noqa: E402
from featurestore.training import build_training_set  # noqa: E402


def feast_venv(workdir: Path) -> Path:
    """The Python of Feast's virtualenv, created on first use."""
    venv = workdir / "feast-venv"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "feast").exists():
        print(f"creating {venv} (pip install 'feast[dask]') ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-U", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "feast[dask,redis]"],
                       check=True)
    return python


def feast_run(python: Path, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # Feast's env only
    out = subprocess.run([str(python), str(HERE / "_peers_feast.py"), *args],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"feast {args[0]} failed: {out.stderr.strip()[-1500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _write(frame: pd.DataFrame, path: Path) -> None:
    """Parquet with ``string`` (not ``large_string``) ids: Feast reads large_string as JSON."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema = pa.schema([f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f
                        for f in table.schema]).remove_metadata()
    pq.write_table(table.cast(schema), path)


def training_sets(store: Store, python: Path, workdir: Path, latest: dt.date, rounds: int
                  ) -> tuple[dict[str, list[float]], list[str]]:
    """Seconds of ours, DuckDB and Feast for the same training rows, ``rounds`` interleaved
    rounds each (after one warm-up of ours and DuckDB)."""
    import duckdb

    build_training_set(store, start=START, end=START)  # warm-up (imports, page cache)
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute(duckdb_sql(store, latest)).df()
    times: dict[str, list[float]] = {"ours": [], "duckdb": [], "feast": []}
    for _ in range(rounds):
        t = time.perf_counter()
        ours = build_training_set(store)
        times["ours"].append(time.perf_counter() - t)
        t = time.perf_counter()
        duck = con.execute(duckdb_sql(store, latest)).df()
        times["duckdb"].append(time.perf_counter() - t)
        assert ours.rows == len(duck) and ours.positives == int(duck["purchased_next_30d"].sum())

    feast_dir = workdir / "feast"
    feast_dir.mkdir(exist_ok=True)
    features = pd.read_parquet(store.uri("customer_features"))
    features["event_timestamp"] = pd.to_datetime(features.pop("as_of").astype(str), utc=True)
    features["customer_id"] = features["customer_id"].astype(str)
    _write(features, feast_dir / "features.parquet")
    frame = ours.frame
    entities = pd.DataFrame({
        "customer_id": frame["customer_id"].astype(str),
        "event_timestamp": pd.to_datetime(frame["as_of"].astype(str), utc=True),
        "purchased_next_30d": frame["purchased_next_30d"].astype("int64")})
    _write(entities, feast_dir / "entities.parquet")
    served_day = str(features["event_timestamp"].max().date())
    setup = feast_run(python, "setup", str(feast_dir / "repo"), str(feast_dir / "features.parquet"),
                      served_day)
    for _ in range(rounds):
        feast = feast_run(python, "historical", str(feast_dir / "repo"),
                          str(feast_dir / "entities.parquet"))
        times["feast"].append(feast["seconds"])
    assert feast["rows"] == ours.rows and feast["positives"] == ours.positives, (feast, ours.rows)
    # the same feature values too (a checksum of one feature over every row)
    assert feast["checksum"] == float(frame["page_views_7d"].fillna(0).sum()), feast
    print(f"training set: {ours.rows:,} rows x {len(frame.columns)} columns, "
          f"{ours.positives:,} positives (same rows in all three)")
    def rounds_of(name: str) -> str:
        return " ".join(f"{x:.2f}" for x in times[name]) + " s"

    print(f"  ours (in process)                 {rounds_of('ours')} (label: purchasers of "
          + ", ".join(f"{n} event dates from {k}" for k, n in ours.label_event_dates.items())
          + ")")
    print(f"  DuckDB ASOF JOIN (2 threads)      {rounds_of('duckdb')} (label: events)")
    print(f"  Feast get_historical_features     {rounds_of('feast')} (Dask offline store; "
          "labels given; each round a fresh process, timed inside it)")
    return times, setup["features"]


def redis_writes(store: Store, python: Path, workdir: Path, url: str) -> dict[str, float]:
    """Rows per second into one Redis: our first whole push of the latest customer_features
    (from this process) and Feast's materialize of the same day (its Redis online store)."""
    from featurestore.online.redis_push import push_online

    t = time.perf_counter()
    report = push_online(store, url, tables={"customer_features": ["customer_id"]},
                         recency={"customer_features": []})
    ours_s = time.perf_counter() - t
    rows = report.tables["customer_features"]["written"]
    feast_dir = workdir / "feast"
    served_day = str(pd.read_parquet(feast_dir / "features.parquet", columns=["event_timestamp"])
                     ["event_timestamp"].max().date())
    feast = feast_run(python, "setup", str(workdir / "feast-redis" / "repo"),
                      str(feast_dir / "features.parquet"), served_day, url)
    assert feast["rows"] == rows, (feast["rows"], rows)
    out = {"ours_rows_per_s": rows / ours_s, "feast_rows_per_s": feast["rows_per_s"],
           "rows": rows, "ours_s": ours_s, "feast_s": feast["materialize_s"]}
    print(f"redis writes of {rows:,} customer rows: ours {out['ours_rows_per_s']:,.0f} rows/s "
          f"({ours_s:.2f} s, whole push) | Feast materialize {out['feast_rows_per_s']:,.0f} "
          f"rows/s ({feast['materialize_s']:.2f} s) | ours / Feast "
          f"{out['ours_rows_per_s'] / out['feast_rows_per_s']:.1f}x", flush=True)
    return out


def serving(store: Store, python: Path, workdir: Path, refs: list[str], args,
            redis_url: str | None = None) -> dict:
    latest = store.partitions("customer_features", "as_of")[-1]
    ids = pd.read_parquet(store.uri("customer_features", f"as_of={latest}"),
                          columns=["customer_id"])["customer_id"].astype(str).tolist()
    rng = np.random.default_rng(1)
    sample = [ids[i] for i in rng.integers(0, len(ids), 1000)]
    batches = [[ids[i] for i in rng.integers(0, len(ids), 100)] for _ in range(20)]
    ours_port, feast_port, hello_port = free_port(), free_port(), free_port()
    env_bin = str(python.parent)
    online = {"FEATURESTORE_ONLINE_STORE": redis_url} if redis_url else None
    procs = [
        start([sys.executable, "-m", "featurestore", "serve", "--store", store.url, "--port",
               str(ours_port), "--log-level", "warning"], f"http://127.0.0.1:{ours_port}/ready",
              env=online),
        start([sys.executable, "-m", "uvicorn", "serve:hello_app", "--app-dir", str(HERE),
               "--port", str(hello_port), "--workers", "1", "--log-level", "warning",
               "--no-access-log"], f"http://127.0.0.1:{hello_port}/hello"),
    ]
    repo = workdir / ("feast-redis" if redis_url else "feast") / "repo"
    feast_cmd = [str(Path(env_bin) / "feast"), "--chdir", str(repo),
                 "serve", "-p", str(feast_port), "--no-access-log", "-w", "1"]
    procs.append(start(feast_cmd, f"http://127.0.0.1:{feast_port}/health"))
    ids_lua = "{" + ",".join(f'"{c}"' for c in sample) + "}"
    feast_one = [json.dumps({"features": refs, "entities": {"customer_id": [c]}})
                 for c in sample[:200]]
    feast_many = [json.dumps({"features": refs, "entities": {"customer_id": b}}) for b in batches]
    ours_many = [json.dumps({"customer_ids": b}) for b in batches]

    def post(path: str, bodies: list[str]) -> str:
        return ("local bodies = {" + ",".join(json.dumps(b) for b in bodies) + "}\n"
                "local n = 0\nrequest = function()\n  n = n % #bodies + 1\n"
                f"  return wrk.format('POST', '{path}', "
                "{['Content-Type']='application/json'}, bodies[n])\nend\n")

    plan = [
        ("hello-world", hello_port,
         "request = function() return wrk.format('GET', '/hello') end\n"),
        ("ours GET 1", ours_port, f"local ids = {ids_lua}\nlocal n = 0\nrequest = function()\n"
         "  n = n % #ids + 1\n  return wrk.format('GET', '/customers/' .. ids[n] .. "
         "'/features')\nend\n"),
        ("feast POST 1", feast_port, post("/get-online-features", feast_one)),
        ("ours batch-100", ours_port, post("/features/batch", ours_many)),
        ("feast batch-100", feast_port, post("/get-online-features", feast_many)),
    ]
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in plan}
    try:
        for _, port, script in plan:  # warm-up
            wrk(f"http://127.0.0.1:{port}", script, 2, args.connections, workdir)
        for r in range(args.rounds):
            for name, port, script in plan:
                runs[name].append(wrk(f"http://127.0.0.1:{port}", script, args.seconds,
                                      args.connections, workdir))
            print(f"  round {r + 1}: " + "; ".join(
                f"{n} {rs[-1]['rps']:.0f}/s p99 {rs[-1]['p99_ms']:.1f} ms"
                for n, rs in runs.items()), flush=True)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
    return runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--customers", type=int, default=5_000)
    ap.add_argument("--dates", type=int, default=30)
    ap.add_argument("--hits-per-day", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/fs-peers"))
    ap.add_argument("--no-serve", action="store_true")
    ap.add_argument("--online-store", choices=("sqlite", "redis"), default="sqlite",
                    help="redis: both online stores in one local redis-server (Feast's "
                         "Redis online store, our Redis store), with their write rates")
    args = ap.parse_args()
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    python = feast_venv(workdir)
    version = subprocess.run([str(python), "-c", "import feast; print(feast.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    data = workdir / f"store-{args.customers}x{args.dates}"
    if not (data / "events").exists():
        make_data(data, args.customers, args.dates, args.hits_per_day)
    store = Store(str(data))
    latest = START + dt.timedelta(days=args.dates - 1 + 30)
    print(f"Feast {version} (own virtualenv {python.parent.parent}); {args.customers:,} customers "
          f"x {args.dates} as-of dates; {os.cpu_count()} cores")
    ts, refs = training_sets(store, python, workdir, latest, args.rounds)
    runs = {}
    redis_proc, url, writes = None, None, None
    try:
        if args.online_store == "redis":
            from serve import start_redis

            for folder in (workdir / "redis", workdir / "feast-redis"):
                if folder.exists():
                    import shutil

                    shutil.rmtree(folder)
            redis_proc, url = start_redis(workdir)
            writes = redis_writes(store, python, workdir, url)
        if not args.no_serve:
            print(f"serving ({args.online_store} online stores): wrk -t1 -c{args.connections} "
                  f"-d{args.seconds}s x {args.rounds} interleaved rounds, one worker process "
                  "per server")
            runs = serving(store, python, workdir, refs, args, url)
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=30)
    print("\nratios (same run, same data)")
    def ratio(a: str, b: str) -> str:  # median of the per-round ratios, and every round
        per = [x / y for x, y in zip(ts[a], ts[b], strict=True)]
        return f"{statistics.median(per):.2f}x (rounds {' '.join(f'{r:.2f}' for r in per)})"

    print(f"  training set: ours / DuckDB {ratio('ours', 'duckdb')} | Feast / DuckDB "
          f"{ratio('feast', 'duckdb')} | Feast / ours {ratio('feast', 'ours')}")
    if runs:
        def med(name: str, key: str) -> float:
            return statistics.median(r[key] for r in runs[name])

        def paired(name: str, key: str) -> float:
            return statistics.median(r[key] / h[key] for r, h in zip(runs[name],
                                                                      runs["hello-world"]))
        print(f"  {'server':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'x hello req/s':>15}"
              f"{'x hello p99':>13}")
        for name in runs:
            print(f"  {name:<18}{med(name, 'rps'):>9.0f}{med(name, 'p50_ms'):>9.2f}"
                  f"{med(name, 'p99_ms'):>9.2f}{paired(name, 'rps'):>15.2f}"
                  f"{paired(name, 'p99_ms'):>13.2f}")
        for kind, ours_name, feast_name in (("single", "ours GET 1", "feast POST 1"),
                                            ("batch-100", "ours batch-100", "feast batch-100")):
            feast_rps = med(feast_name, "rps")
            ratio = (f"{med(ours_name, 'rps') / feast_rps:.1f}x" if feast_rps
                     else "feast answered none")
            print(f"  ours / feast req/s, {kind}: {ratio}")
    if writes:
        print(f"  redis rows/s written: ours {writes['ours_rows_per_s']:,.0f} | Feast "
              f"{writes['feast_rows_per_s']:,.0f} | ours / Feast "
              f"{writes['ours_rows_per_s'] / writes['feast_rows_per_s']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
