"""Retail source on the shared UCI Online Retail file, against plain pandas."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from featurestore import Store
from featurestore.materialization import materialize
from featurestore.sources.retail import ingest_retail
from tests._generated_store import cli_in_process
from tests.conftest import ONLINE_RETAIL

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ["invoices_90d", "items_90d", "revenue_90d", "distinct_items_90d",
            "days_since_last_invoice", "country"]


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """The file as the reference notebook cleans it, read independently with pandas."""
    df = pd.read_csv(ONLINE_RETAIL, dtype={"InvoiceNo": str, "StockCode": str,
                                           "CustomerID": str})
    df = df[df["CustomerID"].notna() & (df["Quantity"] > 0)].copy()
    df["cid"] = df["CustomerID"].str.replace(r"\.0$", "", regex=True)
    df["ts"] = pd.to_datetime(df["InvoiceDate"])
    df["date"] = df["ts"].dt.date
    return df


@pytest.fixture(scope="module")
def retail_store(tmp_path_factory, client):
    store = Store(str(tmp_path_factory.mktemp("retail") / "store"))
    report = ingest_retail(str(ONLINE_RETAIL), store, client=client)
    mat = materialize(store, client=client)
    return store, report, mat


def reference(df: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    upto = df[df["date"] <= as_of]
    win = upto[upto["date"] > as_of - dt.timedelta(90)]
    g = win.groupby("cid")
    out = pd.DataFrame(index=pd.Index(sorted(upto["cid"].unique()), name="customer_id"))
    out["invoices_90d"] = g["InvoiceNo"].nunique()
    out["items_90d"] = g["Quantity"].sum()
    out["revenue_90d"] = (win["Quantity"] * win["UnitPrice"]).groupby(win["cid"]).sum()
    out["distinct_items_90d"] = g["StockCode"].nunique()
    out = out.fillna(0)
    for c in ("invoices_90d", "items_90d", "distinct_items_90d"):
        out[c] = out[c].astype("int64")
    out["days_since_last_invoice"] = upto.groupby("cid")["date"].max().map(
        lambda d: (as_of - d).days).astype("int64")
    latest = upto.sort_values(["ts", "InvoiceNo", "Country"]).groupby("cid")["Country"].last()
    out["country"] = latest
    return out.reset_index()


def test_transactions_are_the_cleaned_file(raw, retail_store):
    store, report, _ = retail_store
    tx = pd.read_parquet(store.uri("transactions"))
    assert report.rows_ingested == len(tx) == len(raw)
    assert report.rows_read == 541_909
    assert tx["quantity"].dtype == "int64" and tx["unit_price"].dtype == "float64"
    assert pd.api.types.is_datetime64_any_dtype(tx["invoice_date"])
    assert int(tx["quantity"].sum()) == int(raw["Quantity"].sum())
    assert sorted(tx["customer_id"].astype(str).unique()) == sorted(raw["cid"].unique())
    assert tx["event_date"].astype(str).nunique() == raw["date"].nunique()


def test_retail_features_match_pandas(raw, retail_store):
    store, _, mat = retail_store
    first, last = min(raw["date"]), max(raw["date"])
    assert mat.as_of_written["customer_retail_features"][0] == first.isoformat()
    assert mat.as_of_written["customer_retail_features"][-1] == last.isoformat()
    assert len(mat.as_of_written["customer_retail_features"]) == (last - first).days + 1
    for as_of in (first, first + dt.timedelta(89), first + dt.timedelta(90),
                  dt.date(2011, 6, 30), dt.date(2011, 7, 3), last):  # 07-03 is a Sunday
        ours = pd.read_parquet(store.uri("customer_retail_features",
                                         f"as_of={as_of.isoformat()}"))
        theirs = reference(raw, as_of)
        assert ours["customer_id"].astype(str).tolist() == theirs["customer_id"].tolist()
        for c in FEATURES:
            if c == "revenue_90d":
                np.testing.assert_allclose(ours[c], theirs[c], rtol=1e-9, atol=1e-6)
                assert ours[c].dtype == "float64"
            elif c == "country":
                assert ours[c].astype(str).tolist() == theirs[c].tolist()
            else:
                assert ours[c].dtype == "int64", c
                assert ours[c].tolist() == theirs[c].tolist(), c
        assert (ours["invoices_90d"] == 0).any() or as_of < first + dt.timedelta(90)


def test_retail_readers_and_reingest(retail_store, client):
    import dask.dataframe as ddf
    import duckdb
    import pyarrow.dataset as ds

    store, _, _ = retail_store
    uri = store.uri("customer_retail_features")
    frames = {
        "pandas": pd.read_parquet(uri),
        "dask": ddf.read_parquet(uri).compute(),
        "pyarrow": ds.dataset(uri, partitioning="hive").to_table().to_pandas(),
        "duckdb": duckdb.sql(f"SELECT * FROM read_parquet('{uri}/*/*.parquet', "
                             "hive_partitioning=1)").df(),
    }
    for reader, df in frames.items():
        assert len(df) == len(frames["pandas"]) > 0, reader
        for c in ("customer_id", "country"):
            assert pd.api.types.is_string_dtype(df[c].dtype), (reader, c)
        for c in ("invoices_90d", "items_90d", "distinct_items_90d", "days_since_last_invoice"):
            assert df[c].dtype == "int64", (reader, c)
        assert df["revenue_90d"].dtype == "float64", reader
    again = ingest_retail(str(ONLINE_RETAIL), store, client=client)
    assert again.files_skipped == 1 and again.files_ingested == 0
    assert materialize(store, client=client).as_of_written == {}


def test_cli_ingest_retail_subset(raw, tmp_path, client):
    lines = gzip.decompress(ONLINE_RETAIL.read_bytes()).split(b"\n")[:30_001]
    path = tmp_path / "retail.csv.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    store = tmp_path / "store"
    # in process on the session cluster (what the command reports and writes)
    out = cli_in_process("ingest", str(path), "--source", "retail", "--store", str(store),
                         "--scheduler", client.scheduler.address, "--json", check=False)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    sub = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": str})
    kept = sub[sub["CustomerID"].notna() & (sub["Quantity"] > 0)]
    assert report["rows_ingested"] == len(kept)
    days = pd.to_datetime(kept["InvoiceDate"]).dt.date
    written = report["materialize"]["as_of_written"]["customer_retail_features"]
    assert written[0] == min(days).isoformat() and written[-1] == max(days).isoformat()
    df = pd.read_parquet(store / "customer_retail_features" / f"as_of={written[-1]}")
    full = kept.assign(cid=kept["CustomerID"].str.replace(r"\.0$", "", regex=True),
                       ts=pd.to_datetime(kept["InvoiceDate"]), date=days)
    theirs = reference(full, max(days))
    assert df["items_90d"].tolist() == theirs["items_90d"].tolist()
