"""A small slice of the real UCI Online Retail data (``shared/data/online_retail.csv.gz``) in
the ``transactions`` table's layout, for recommender tests that must stay fast: a seeded
sample of customers over the whole year (the full-data runs are the benchmark's)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from featurestore.storage import Store
from tests.conftest import ONLINE_RETAIL


@functools.lru_cache(maxsize=1)
def _clean() -> pd.DataFrame:
    raw = pd.read_csv(ONLINE_RETAIL, dtype={"InvoiceNo": str, "StockCode": str,
                                            "CustomerID": str, "Description": str})
    raw = raw[raw["CustomerID"].notna() & (raw["Quantity"] > 0)].reset_index(drop=True)  # §2
    # columns as read (no .to_numpy(): a string column to objects and back was half the time)
    return pd.DataFrame({
        "invoice_no": raw["InvoiceNo"], "stock_code": raw["StockCode"],
        "description": raw["Description"], "quantity": raw["Quantity"],
        "invoice_date": pd.to_datetime(raw["InvoiceDate"]), "unit_price": raw["UnitPrice"],
        "customer_id": raw["CustomerID"].str.replace(".0", "", regex=False),
        "country": raw["Country"]})


def retail_slice(customers: int = 400, seed: int = 0) -> pd.DataFrame:
    """Every cleaned line of ``customers`` customers drawn (seeded) among those with at least
    three invoices."""
    tx = _clean()
    invoices = tx.groupby("customer_id")["invoice_no"].nunique()
    pool = np.sort(invoices[invoices >= 3].index.to_numpy())
    chosen = np.random.default_rng(seed).choice(pool, size=customers, replace=False)
    out = tx[tx["customer_id"].isin(set(chosen))].reset_index(drop=True)
    return out.astype({"invoice_no": "string", "stock_code": "string",
                       "description": "string", "customer_id": "string", "country": "string"})


def write_transactions(store: Store, tx: pd.DataFrame) -> None:
    """``tx`` as ``transactions/event_date=D/part-0.parquet``, one part per day."""
    for day, g in tx.groupby(pd.to_datetime(tx["invoice_date"]).dt.date):
        store.write_parquet(g.reset_index(drop=True), "transactions",
                            f"event_date={day.isoformat()}", "part-0.parquet")
