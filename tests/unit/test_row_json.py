"""The JSON rows a snapshot keeps (``TableSnapshot.row_json`` / ``rows_json``) are the rows'
values, compared with plain pandas, and the kept set is bounded."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

import featurestore.online.memory as online
from featurestore.online import load_table
from featurestore.storage import Store


def _table(tmp_path, n: int = 50):
    rng = np.random.default_rng(5)
    cf = pd.DataFrame({"customer_id": pd.Series([f"c{i}" for i in range(n)], dtype=object),
                       "views": rng.integers(0, 1000, n).astype("int64"),
                       "revenue": rng.gamma(1.0, 10.0, n),
                       "segment": pd.Series(rng.choice(["a", "bé", None], n), dtype=object)})
    cf.loc[2, "revenue"] = np.nan
    last = pd.array(rng.integers(0, 9, n), dtype="Int64")
    last[::3] = pd.NA
    cf["last"] = last
    store = Store(str(tmp_path / "s"))
    store.write_parquet(cf, "customer_features", "as_of=2026-01-01", "part-0.parquet")
    return load_table(store, "customer_features", "2026-01-01"), cf


def _expected(cf: pd.DataFrame, i: int) -> dict:
    row = cf.iloc[i]
    return {"views": int(row["views"]),
            "revenue": None if pd.isna(row["revenue"]) else float(row["revenue"]),
            "segment": None if row["segment"] is None else row["segment"],
            "last": None if pd.isna(row["last"]) else int(row["last"])}


def test_row_json_is_the_row(tmp_path):
    table, cf = _table(tmp_path)
    for cid, i in table.index.items():
        k = int(cid[1:])
        assert json.loads(table.row_json(i)) == _expected(cf, k)
        assert table.row_json(i) is table.row_json(i)  # kept, not re-encoded


def test_rows_json_gathers_the_missing_rows_like_row_json(tmp_path):
    table, cf = _table(tmp_path)
    rows = [table.index[f"c{k}"] for k in (7, 3, 7, 40, 2)]
    table.row_json(rows[1])  # one already kept
    assert [json.loads(b) for b in table.rows_json(rows)] == [
        _expected(cf, k) for k in (7, 3, 7, 40, 2)]
    assert table.rows_json(rows) == [table.row_json(i) for i in rows]


def test_kept_rows_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(online, "JSON_CACHE_ROWS", 10)
    table, cf = _table(tmp_path)
    table.rows_json(list(range(8)))
    for i in range(30):
        assert json.loads(table.row_json(i)) == json.loads(table.row_json(i))
    assert len(table._json) == 10
    assert [json.loads(b) for b in table.rows_json(list(range(50)))] == [
        json.loads(table.row_json(i)) for i in range(50)]
    assert len(table._json) == 10
