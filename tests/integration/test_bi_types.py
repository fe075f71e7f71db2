"""Issue 14, item 2: the same table read by pandas, dask, pyarrow, DuckDB and our own reader
gives the same types and the same rows, on a local store and on the same store in moto S3.

The store is built as an operator builds it (generated web-log drops and an Online Retail
subset through ``featurestore ingest``, a parquet training set through ``featurestore
training-set``). Row counts and partition values are checked against the parquet footers and
folder names read file by file, independently of the readers under test.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import duckdb
import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.feature_store import FeatureStore
from featurestore.generate import generate_weblog
from featurestore.schema import partitioning
from featurestore.settings import Settings
from tests.conftest import ONLINE_RETAIL
from tests.integration.test_dashboard import run_cli

#: table folder -> its partition key ("" for the training set: one folder of parts, no keys)
TABLES = {"events": "event_date", "transactions": "event_date",
          "customer_features": "as_of", "customer_product_features": "as_of",
          "customer_retail_features": "as_of", "training_set": ""}
#: integer columns that are null by definition somewhere: pandas Int64 in every reader
NULLABLE = {"customer_features": {"days_since_last_purchase"},
            "training_set": {"days_since_last_purchase"}, "events": {"visit_num"}}
#: declared columns (SPEC §3a) the store keeps in events, one of each type; ``cookies`` holds
#: filler that is never a bool (all null, every value counted bad): still one type everywhere
DECLARED = {"post_channel": "string", "visit_num": "int", "evar12": "float",
            "cookies": "bool"}
#: the logical type each declared column must read as in every reader
DECLARED_LOGICAL = {"post_channel": "string", "visit_num": "integer", "evar12": "double",
                    "cookies": "boolean"}
ID_COLUMNS = ("customer_id", "product_id", "invoice_no", "stock_code")


@pytest.fixture(scope="module")
def local_store(tmp_path_factory, client) -> Path:
    base = tmp_path_factory.mktemp("bi-types")
    raw, store = base / "raw", base / "store"
    # 33 days: the training set needs dates whose 30-day label window is complete
    generate_weblog(str(raw), days=33, customers=150, products=20, rows_per_day=150, parts=2,
                    seed=7, bad_rows=0.01, late_fraction=0.05)
    sched = client.scheduler.address
    from featurestore.features.definitions import DEFAULT_REPO

    anchor = "    kind: weblog\n    table: events\n"
    decl = ", ".join(f"{k}: {v}" for k, v in DECLARED.items())
    repo = base / "repo.yaml"
    repo.write_text(DEFAULT_REPO.read_text().replace(anchor,
                                                     anchor + f"    columns: {{{decl}}}\n"))
    run_cli("apply", "--repo", str(repo), "--store", str(store))
    run_cli("ingest", str(raw), "--store", str(store), "--scheduler", sched, "--json")
    lines = gzip.decompress(ONLINE_RETAIL.read_bytes()).split(b"\n")[:8001]
    retail = base / "retail.csv.gz"
    retail.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    run_cli("ingest", str(retail), "--source", "retail", "--store", str(store), "--scheduler",
            sched, "--json")
    out = json.loads(run_cli("training-set", "--store", str(store), "--scheduler", sched,
                             "--format", "parquet", "--out", str(store / "training_set"), "--json")
                     .stdout.strip().splitlines()[-1])
    assert out["rows"] > 0
    return store


@pytest.fixture(scope="module")
def s3_store(local_store, moto_server) -> tuple[str, dict[str, Any]]:
    import uuid

    import boto3

    bucket = f"fs-bi-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    options = {"endpoint_url": moto_server, "key": "testing", "secret": "testing"}
    # What the readers open: the tables, and the ledger (the events reader resolves merged
    # files through its compaction records). Not the state, partials and daily folders no
    # reader opens (more than half the store's files, each one PUT).
    files = [p for folder in [*TABLES, "_ledger"] for p in (local_store / folder).rglob("*")
             if p.is_file()]
    fsspec.filesystem("s3", **options).put(
        [str(p) for p in files], [f"{bucket}/store/{p.relative_to(local_store)}" for p in files])
    return f"s3://{bucket}/store", options


# -- what each reader gives, reduced to one logical type per column ---------------------------
def _logical_pandas(series: pd.Series) -> str:
    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype):
        return "string" if dtype.na_value is pd.NA else "str (NaN for missing)"
    if isinstance(dtype, pd.ArrowDtype):
        return _logical_arrow(dtype.pyarrow_dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        return f"category of {dtype.categories.dtype}"
    if str(dtype) in ("int64", "Int64"):
        return "integer"
    if str(dtype) == "float64":
        return "double"
    if str(dtype) == "boolean":
        return "boolean"
    if str(dtype).startswith("datetime64"):
        return "timestamp"
    if dtype == object:
        values = {type(v) for v in series.dropna().head(100)}
        return "date" if values == {dt.date} else f"object of {values}"
    return str(dtype)


def _logical_arrow(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return f"dictionary of {_logical_arrow(t.value_type)}"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "double"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_timestamp(t):
        return "timestamp"
    return str(t)


_DUCKDB = {"VARCHAR": "string", "BIGINT": "integer", "DOUBLE": "double", "DATE": "date",
           "TIMESTAMP": "timestamp", "TIMESTAMP_MS": "timestamp", "INTEGER": "integer",
           "BOOLEAN": "boolean"}


def _canonical(df: pd.DataFrame, dates: set[str]) -> pd.DataFrame:
    """Values only (types are compared separately), in one row order. DuckDB's ``.df()``
    hands a DATE to pandas as midnight datetime64: back to the date for the comparison."""
    out = pd.DataFrame({c: [None if pd.isna(v) else v for v in df[c].astype(object)]
                        for c in df.columns})
    for c in out.columns:
        if len(out[c].dropna()) and isinstance(out[c].dropna().iloc[0], pd.Timestamp):
            out[c] = [None if v is None else v.date() if c in dates else v.to_pydatetime()
                      for v in out[c]]
    keys = [c for c in out.columns if c not in ("page_url",)]
    return out.sort_values(keys, na_position="first", kind="mergesort").reset_index(drop=True)


def _read_all(url: str, table: str, options: dict[str, Any]) -> dict[str, tuple[dict, Any]]:
    """{reader: ({column: logical type}, DataFrame)} for one table."""
    key = TABLES[table]
    path = f"{url}/{table}"
    so = options or None
    part = {"partitioning": partitioning(key)} if key else {}
    fs, root = fsspec.core.url_to_fs(path, **options)
    out: dict[str, tuple[dict, Any]] = {}

    df = pd.read_parquet(path, storage_options=so, **part)
    out["pandas"] = ({c: _logical_pandas(df[c]) for c in df.columns}, df)
    ddf = dd.read_parquet(path, storage_options=so,
                          **({"dataset": part} if key else {})).compute()
    out["dask"] = ({c: _logical_pandas(ddf[c]) for c in ddf.columns}, ddf)
    arrow = pq.read_table(root, filesystem=fs, **part)
    out["pyarrow"] = ({f.name: _logical_arrow(f.type) for f in arrow.schema}, arrow.to_pandas())

    con = duckdb.connect()
    if url.startswith("s3://"):
        con.register_filesystem(fsspec.filesystem("s3", **options))
    glob = f"{path}/*/*.parquet" if key else f"{path}/*.parquet"
    rel = con.sql(f"SELECT * FROM read_parquet('{glob}', hive_partitioning = {bool(key)})")
    out["duckdb"] = ({c: _DUCKDB.get(str(t), str(t)) for c, t in zip(rel.columns, rel.types,
                                                                     strict=True)}, rel.df())
    if key:  # ours: the facade's reader
        fstore = FeatureStore(Settings(store=url, storage_options=options))
        mine = fstore.read_dataset(table)
        out["featurestore"] = ({c: _logical_pandas(mine[c]) for c in mine.columns}, mine)
    return out


def _footer_rows_and_keys(url: str, table: str, options: dict[str, Any]) -> tuple[int, set]:
    """Rows from the parquet footers, file by file; the partition values from folder names."""
    fs, root = fsspec.core.url_to_fs(f"{url}/{table}", **options)
    key = TABLES[table]
    files = [f for f in fs.find(root) if f.endswith(".parquet")
             and not any(p.startswith(("_", ".")) for p in f[len(root):].split("/"))]
    rows = 0
    for f in files:
        with fs.open(f, "rb") as fh:
            rows += pq.ParquetFile(fh).metadata.num_rows
    keys = {dt.date.fromisoformat(f.split(f"{key}=")[1].split("/")[0]) for f in files} \
        if key else set()
    return rows, keys


def _check_table(url: str, table: str, options: dict[str, Any]) -> dict[str, str]:
    readers = _read_all(url, table, options)
    types = {name: t for name, (t, _) in readers.items()}
    reference = types["pyarrow"]
    for name, got in types.items():
        assert got == reference, (table, name, {c: (got.get(c), reference.get(c))
                                                for c in reference if got.get(c) != reference[c]})
    key = TABLES[table]
    if table == "events":  # the declared columns, each under its own name and type
        assert {c: reference.get(c) for c in DECLARED} == DECLARED_LOGICAL
    if key:
        assert reference[key] == "date", (table, reference)
    date_column = key or "as_of"
    assert reference[date_column] == "date"
    for c in ID_COLUMNS:
        if c in reference:
            assert reference[c] == "string", (table, c)
    pandas_like = ("pandas", "dask", "featurestore")
    for c in NULLABLE.get(table, ()):
        for name in pandas_like:
            if name in readers:
                assert str(readers[name][1][c].dtype) == "Int64", (table, name, c)
    for name in pandas_like:  # every integer column stays an integer in pandas readers
        if name in readers:
            frame = readers[name][1]
            for c, logical in reference.items():
                if logical == "integer":
                    assert str(frame[c].dtype) in ("int64", "Int64"), (table, name, c)
    rows, keys = _footer_rows_and_keys(url, table, options)
    dates = {c for c, logical in reference.items() if logical == "date"}
    first = _canonical(readers["pyarrow"][1], dates)
    assert len(first) == rows > 0, table
    if key:
        assert set(first[key]) == keys, table
    for name, (_, frame) in readers.items():
        pd.testing.assert_frame_equal(_canonical(frame[list(first.columns)], dates), first,
                                      check_dtype=False, obj=f"{table} by {name}")
    return reference


@pytest.fixture(scope="module")
def local_types(local_store) -> Callable[[str], dict[str, str]]:
    """``table -> its column types`` on the local store, from :func:`_check_table`, which
    runs once per table: the S3 test compares with the local test's result rather than
    reading the local table with every reader again."""
    checked: dict[str, dict[str, str]] = {}

    def check(table: str) -> dict[str, str]:
        if table not in checked:
            checked[table] = _check_table(str(local_store), table, {})
        return checked[table]

    return check


@pytest.mark.parametrize("table", list(TABLES))
def test_same_types_and_rows_locally(local_types, table):
    assert local_types(table)


@pytest.mark.parametrize("table", list(TABLES))
def test_same_types_and_rows_on_s3(s3_store, local_types, table):
    url, options = s3_store
    assert _check_table(url, table, options) == local_types(table)


def test_training_set_nullable_int_reads_back_as_Int64(local_store):
    """SPEC §7 / §4: a day count that can be null is Int64 in the parquet training set, in
    plain pandas (it read back float64: the writer missed that the feature table's column is
    nullable)."""
    df = pd.read_parquet(local_store / "training_set")
    table = pq.read_table(local_store / "training_set")
    assert table["days_since_last_purchase"].null_count > 0
    assert str(df["days_since_last_purchase"].dtype) == "Int64"
    assert str(df["page_views_7d"].dtype) == "int64"
    assert df["as_of"].map(type).eq(dt.date).all()


def test_plain_calls_as_documented(local_store):
    """docs/dashboards.md, "How the types read": without the one argument, pandas, dask and
    pyarrow give the folder value as a categorical string; DuckDB gives a DATE by itself."""
    path = local_store / "customer_features"
    assert isinstance(pd.read_parquet(path)["as_of"].dtype, pd.CategoricalDtype)
    assert isinstance(dd.read_parquet(path)["as_of"].dtype, pd.CategoricalDtype)
    assert pa.types.is_dictionary(pq.read_table(path).schema.field("as_of").type)
    rel = duckdb.sql(f"SELECT as_of FROM read_parquet('{path}/*/*.parquet', "
                     "hive_partitioning = true)")
    assert str(rel.types[0]) == "DATE"
    latest = max(p.name for p in path.iterdir())[len("as_of="):]
    day = dt.date.fromisoformat(latest)
    df = pd.read_parquet(path, partitioning=partitioning(), filters=[("as_of", "==", day)])
    assert len(df) == pq.ParquetFile(next((path / f"as_of={latest}").glob("*.parquet"))
                                     ).metadata.num_rows
    assert (df["as_of"] == day).all()


def test_a_store_written_before_still_reads(local_store, tmp_path):
    """Parts written by the old writers (fastparquet events with `str` strings, feature tables
    whose file says int64 for a nullable column) next to new ones: one read, one type."""
    import shutil

    store = tmp_path / "store"
    shutil.copytree(local_store / "events", store / "events")
    # with the records of its merged files (a merged file without one is a crash's orphan)
    shutil.copytree(local_store / "_ledger" / "weblog" / "_compaction",
                    store / "_ledger" / "weblog" / "_compaction")
    day = sorted((store / "events").iterdir())[0]
    old = pd.read_parquet(next(day.glob("*.parquet"))).astype(object)
    import fastparquet  # the events writer before this change

    fastparquet.write(str(day / "part-old.parquet"), old, write_index=False,
                      compression="SNAPPY")
    fs = FeatureStore(Settings(store=str(store)))
    df = fs.read_dataset("events")
    assert str(df["customer_id"].dtype) == "string"
    both = pd.read_parquet(store / "events", partitioning=partitioning("event_date"))
    assert len(both) == len(df)
