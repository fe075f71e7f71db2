"""FM export on the shared Online Retail sample: matrix shape, sparsity, target, recordIO files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.sparse

from featurestore.storage import Store
from featurestore.training import export_fm, read_recordio_protobuf
from featurestore.training.fm import build_fm_matrix, read_transactions
from tests.conftest import ONLINE_RETAIL


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    """``transactions`` in the SPEC layout from a minimal pandas cleaning of the shared CSV.

    REPLACE with ``featurestore ingest <csv> --source retail`` once the `features` branch
    (retail ingestion) is merged.
    """
    raw = pd.read_csv(ONLINE_RETAIL, dtype={"InvoiceNo": str, "StockCode": str,
                                            "Description": str, "Country": str})
    clean = raw[raw["CustomerID"].notna() & (raw["Quantity"] > 0)].copy()
    tx = pd.DataFrame({
        "invoice_no": clean["InvoiceNo"].astype("string"),
        "stock_code": clean["StockCode"].astype("string"),
        "description": clean["Description"].astype("string"),
        "quantity": clean["Quantity"].astype("int64"),
        "invoice_date": pd.to_datetime(clean["InvoiceDate"]),
        "unit_price": clean["UnitPrice"].astype("float64"),
        "customer_id": clean["CustomerID"].astype("int64").astype(str).astype("string"),
        "country": clean["Country"].astype("string"),
    })
    store = Store(str(tmp_path_factory.mktemp("retail") / "store"))
    for day, g in tx.groupby(tx["invoice_date"].dt.date):
        store.write_parquet(g.reset_index(drop=True), "transactions",
                            f"event_date={day.isoformat()}", "part-0.parquet")
    return store, clean


def test_transactions_fixture_round_trips(retail):
    store, clean = retail
    tx = read_transactions(store)
    assert len(tx) == len(clean)
    assert tx["quantity"].sum() == clean["Quantity"].sum()


def test_fm_matrix_against_pandas(retail):
    from sklearn.feature_extraction.text import TfidfVectorizer

    store, clean = retail
    m = build_fm_matrix(read_transactions(store))
    cust = clean["CustomerID"].astype("int64").astype(str)
    pairs = pd.DataFrame({"c": cust, "i": clean["StockCode"], "q": clean["Quantity"]})
    n_pairs = pairs.drop_duplicates(["c", "i"]).shape[0]
    n_cust, n_items = cust.nunique(), clean["StockCode"].nunique()
    # the customer's country on its latest invoice
    last_country = (clean.assign(c=cust, t=pd.to_datetime(clean["InvoiceDate"]))
                    .sort_values(["t", "InvoiceNo"], kind="stable").groupby("c")["Country"].last())
    n_countries = last_country.nunique()
    item_desc = (clean.dropna(subset=["Description"])
                 .groupby("StockCode")["Description"]
                 .agg(lambda s: s.value_counts().sort_index().sort_values(
                     ascending=False, kind="stable").index[0]))
    vocab = TfidfVectorizer(stop_words="english").fit(item_desc.to_numpy()).vocabulary_

    assert m.X.shape == (n_pairs, n_cust + n_items + n_countries + len(vocab))
    assert m.blocks == {"customer": [0, n_cust], "item": [n_cust, n_cust + n_items],
                        "country": [n_cust + n_items, n_cust + n_items + n_countries],
                        "tfidf": [n_cust + n_items + n_countries, m.X.shape[1]]}
    assert m.X.dtype == np.float32 and scipy.sparse.isspmatrix_csr(m.X)
    # each one-hot block has exactly one 1 per row
    for block in ("customer", "item", "country"):
        lo, hi = m.blocks[block]
        sub = m.X[:, lo:hi]
        np.testing.assert_array_equal(sub.getnnz(axis=1), 1)
        assert (sub.data == 1).all()
    # tf-idf rows are l2-normalised (or empty for a description of stop words only)
    lo, hi = m.blocks["tfidf"]
    norms = np.sqrt(np.asarray(m.X[:, lo:hi].multiply(m.X[:, lo:hi]).sum(axis=1))).ravel()
    assert np.all((np.abs(norms - 1) < 1e-4) | (norms == 0))
    # target = per customer x item sum of quantity, in (customer, item) sorted order
    want = pairs.groupby(["c", "i"], sort=True)["q"].sum()
    np.testing.assert_array_equal(m.y, want.to_numpy(np.float32))
    # sparsity from the pandas counts: 3 one-hots + the item's tf-idf terms per row
    terms = {code: len(set(vocab) & set(
        TfidfVectorizer(stop_words="english").build_analyzer()(d)))
        for code, d in item_desc.items()}
    nnz = 3 * n_pairs + sum(terms.get(i, 0) for i in want.index.get_level_values("i"))
    assert m.X.nnz == nnz
    assert m.sparsity == pytest.approx(1 - nnz / (m.X.shape[0] * m.X.shape[1]))
    assert m.sparsity > 0.99


def test_export_fm_files(retail, tmp_path):
    store, clean = retail
    out = tmp_path / "fm"
    res = export_fm(store, str(out), test_fraction=0.2, seed=1)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta == res.metadata
    assert meta["format"] == "fm-recordio" and meta["target"] == "quantity_sum"
    m = build_fm_matrix(read_transactions(store))
    assert meta["feature_dim"] == m.X.shape[1] == meta["blocks"]["tfidf"][1]
    assert meta["rows"]["train"] + meta["rows"]["test"] == m.X.shape[0]
    assert meta["rows"]["test"] == round(0.2 * m.X.shape[0])
    assert meta["nnz"] == m.X.nnz and meta["sparsity"] == pytest.approx(m.sparsity)
    with open(out / "test" / "test.protobuf", "rb") as f:
        X_test, y_test = read_recordio_protobuf(f)
    perm = np.random.default_rng(1).permutation(m.X.shape[0])
    idx = np.sort(perm[:meta["rows"]["test"]])
    assert X_test.shape == (len(idx), meta["feature_dim"])
    assert (X_test != m.X[idx]).nnz == 0
    np.testing.assert_array_equal(y_test, m.y[idx])
    assert (out / "train" / "train.protobuf").stat().st_size > (out / "test" / "test.protobuf"
                                                                 ).stat().st_size


def test_cli_export_fm(retail, tmp_path, capsys):
    from featurestore.cli import main

    store, clean = retail
    out = tmp_path / "cli-fm"
    assert main(["export-fm", "--store", store.url, "--out", str(out),
                 "--test-fraction", "0.1", "--seed", "2", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    meta = json.loads((out / "metadata.json").read_text())
    assert printed["metadata"] == meta
    assert meta["rows"]["test"] == round(0.1 * (meta["rows"]["train"] + meta["rows"]["test"]))
    assert (out / "train" / "train.protobuf").read_bytes()[:4] == bytes.fromhex("0a23d7ce")


def test_export_fm_to_s3(retail, s3_bucket, tmp_path):
    """A few days of transactions (fast), exported straight to S3 (moto) and read back."""
    import os

    import s3fs

    store, clean = retail
    small = Store(str(tmp_path / "small"))
    for day in store.partitions("transactions", "event_date")[:5]:
        shutil.copytree(store.path("transactions", f"event_date={day}"),
                        small.path("transactions", f"event_date={day}"))
    url = f"s3://{s3_bucket}/fm"
    res = export_fm(small, url, test_fraction=0.25, seed=0)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": os.environ["AWS_ENDPOINT_URL"]})
    meta = json.loads(fs.cat(f"{s3_bucket}/fm/metadata.json"))
    assert meta == res.metadata
    m = build_fm_matrix(read_transactions(small))
    X_parts, y_parts = [], []
    for name in ("train", "test"):
        with fs.open(f"{s3_bucket}/fm/{name}/{name}.protobuf", "rb") as f:
            X, y = read_recordio_protobuf(f)
        assert X.shape == (meta["rows"][name], meta["feature_dim"])
        X_parts.append(X)
        y_parts.append(y)
    assert scipy.sparse.vstack(X_parts).nnz == m.X.nnz == meta["nnz"]
    assert float(np.concatenate(y_parts).sum()) == pytest.approx(float(m.y.sum()))
