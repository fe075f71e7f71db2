"""Check a running compose stack against a local run of the same drops (deploy/test-stack.sh).

Runs inside a one-off container of the featurestore image on the compose network:

1. copies the drops the `seed` job wrote to ``s3://raw/weblog`` into a local folder;
2. runs ``featurestore run-daily`` on them locally (its own LocalCluster, a local store);
3. checks that every table the stack's `daily` job wrote to ``s3://featurestore/store`` equals
   the local run's, row for row;
4. checks that the API serves the latest as-of date (the last drop's) and, for a sample of
   customers, exactly the local run's feature values; with a second replica (``CHECK_API_2``,
   both serving from the stack's Redis), that it answers the same bodies, headers included.

Prints one line per check and exits 1 on the first mismatch.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import fsspec
import pandas as pd

from featurestore.cli import main as featurestore_main
from featurestore.storage import Store

RAW_URL = os.environ.get("CHECK_RAW", "s3://raw/weblog")
STORE_URL = os.environ.get("CHECK_STORE", "s3://featurestore/store")
API_URL = os.environ.get("CHECK_API", "http://api:8000")
#: The second API replica (empty: only one); both read the stack's online store (Redis).
API_URL_2 = os.environ.get("CHECK_API_2", "http://api-2:8000")
SAMPLE_CUSTOMERS = 20


def fail(message: str) -> None:
    """Print a one-line failure and exit 1."""
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def read_table(store: Store, table: str) -> pd.DataFrame:
    """A whole hive-partitioned table, partition columns as strings, rows in a canonical order."""
    df = pd.read_parquet(store.path(table), filesystem=store.fs)
    for col in df.columns:
        if isinstance(df[col].dtype, pd.CategoricalDtype):
            df[col] = df[col].astype(str)
    df = df[sorted(df.columns)]
    return df.sort_values(list(df.columns), kind="stable").reset_index(drop=True)


def tables_of(store: Store) -> list[str]:
    """Top-level tables of a store (store bookkeeping starts with ``_``)."""
    return sorted(n for n in store.listdir() if not n.startswith(("_", ".")))


def get_json(url: str) -> dict:
    """GET a JSON document (the API is on the compose network)."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def get_answer(url: str) -> tuple[dict, str | None, str | None]:
    """A feature answer: the JSON body and its X-Feature-As-Of / X-Feature-Generation."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        return (json.loads(resp.read()), resp.headers.get("X-Feature-As-Of"),
                resp.headers.get("X-Feature-Generation"))


def same_value(a: object, b: object) -> bool:
    """Equal, with NaN/None alike and floats to 1e-9 relative."""
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if isinstance(a, float) or isinstance(b, float):
        return b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="check-stack-"))
    raw_fs, raw_root = fsspec.core.url_to_fs(RAW_URL)
    raw_fs.get(raw_root, str(work / "raw"), recursive=True)
    drops = sorted(p.name for p in (work / "raw").iterdir() if p.is_dir())
    if not drops:
        fail(f"no drops under {RAW_URL}: the seed job wrote nothing")
    print(f"ok: {len(drops)} drops copied from {RAW_URL} (last {drops[-1]})", flush=True)

    # The same pipeline, locally: own LocalCluster, local store, no retraining (as the stack's
    # daily job), and a fixed --today: nothing here depends on the weekday CI runs on (#31).
    for name in ("FEATURESTORE_SCHEDULER", "FEATURESTORE_STORE"):
        os.environ.pop(name, None)
    os.environ["FEATURESTORE_RETRAIN_MODELS"] = "[]"
    t0 = time.monotonic()
    rc = featurestore_main(["run-daily", "--store", str(work / "store"), "--raw",
                            str(work / "raw"), "--workers", "1", "--today", drops[-1]])
    if rc != 0:
        fail(f"local run-daily exited {rc}")
    print(f"ok: local run-daily in {time.monotonic() - t0:.1f} s", flush=True)

    local, stack = Store(str(work / "store")), Store(STORE_URL)
    names = tables_of(local)
    if tables_of(stack) != names:
        fail(f"tables differ: stack {tables_of(stack)} vs local {names}")
    for table in names:
        a, b = read_table(stack, table), read_table(local, table)
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
        except AssertionError as exc:
            fail(f"table {table} differs from the local run: {str(exc).splitlines()[0]}")
        print(f"ok: {table}: {len(a)} rows equal to the local run", flush=True)

    as_ofs = local.partitions("customer_features", "as_of")
    latest = as_ofs[-1]
    if latest != drops[-1]:
        fail(f"latest as_of {latest} is not the last drop {drops[-1]}")
    ready = get_json(f"{API_URL}/ready")
    if ready.get("snapshot", {}).get("customer_features") != latest:
        fail(f"API /ready serves {ready}, expected customer_features as of {latest}")
    expected = local.read_parquet("customer_features", f"as_of={latest}")
    for row in expected.head(SAMPLE_CUSTOMERS).to_dict("records"):
        got = get_json(f"{API_URL}/customers/{row['customer_id']}/features")
        if got["as_of"] != latest:
            fail(f"API answered as_of {got['as_of']} for {row['customer_id']}, expected {latest}")
        for name, value in got["features"].items():
            if name in row and not same_value(row[name], value):
                fail(f"API {row['customer_id']}.{name} = {value!r}, local run {row[name]!r}")
    print(f"ok: API serves as_of {latest}; {min(SAMPLE_CUSTOMERS, len(expected))} customers' "
          "features equal the local run", flush=True)
    if API_URL_2:
        check_replicas(expected, latest)


def check_replicas(expected: pd.DataFrame, latest: str) -> None:
    """Both API replicas answer the same values and versions from the one Redis."""
    ready = get_json(f"{API_URL_2}/ready")
    if ready.get("served") != get_json(f"{API_URL}/ready").get("served"):
        fail(f"the replicas serve different versions: {API_URL_2}/ready = {ready}")
    ids = list(expected["customer_id"].head(SAMPLE_CUSTOMERS))
    for cid in ids:
        one, two = (get_answer(f"{base}/customers/{cid}/features")
                    for base in (API_URL, API_URL_2))
        if one != two:
            fail(f"replicas differ for {cid}: {one} vs {two}")
        if one[1] != latest:
            fail(f"replica answered X-Feature-As-Of {one[1]} for {cid}, expected {latest}")
    print(f"ok: both API replicas answer the same {len(ids)} customers (as of {latest}, "
          "same generation) from the online store", flush=True)


if __name__ == "__main__":
    main()
