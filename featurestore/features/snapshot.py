"""One as-of date of the weblog feature tables, from daily aggregates and the recency state.

Pure functions of their inputs: the daily frames of D-W+1 .. D (W = the table's longest
window) and the recency state at D. Nothing here reads raw events.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .daily import DailyPlan
from .definitions import Feature, FeatureRepo

__all__ = ["customer_snapshot", "customer_product_snapshot", "max_window", "state_columns"]


def max_window(repo: FeatureRepo, kind: str = "weblog") -> int:
    windows = [f.window_days for t in repo.tables_for(kind).values()
               for f in t.features.values() if f.window_days]
    return max(windows, default=1)


def state_columns(plan: DailyPlan) -> list[str]:
    return [f"last_{f.key}" for f in plan.recency_filters]


def _in_window(days: pd.Series, as_of: dt.date, window: int) -> np.ndarray:
    return (days >= as_of.toordinal() - window + 1).to_numpy() & (
        days <= as_of.toordinal()).to_numpy()


def _arrow_strings(values) -> pa.Array:
    """A pandas string array as one Arrow string array (zero-copy for Arrow-backed ones)."""
    arr = pa.array(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


class _Windows:
    """Windowed sums over the daily frames with integer codes and ``np.bincount``: the
    customer ids are hashed once per snapshot, then every (window, column) is one vectorised
    pass, so a snapshot's cost is a few passes over the 30 days of daily rows."""

    def __init__(self, cust: pd.DataFrame, cp: pd.DataFrame, as_of: dt.date,
                 index: pd.Index) -> None:
        self.cust, self.cp, self.as_of, self.index = cust, cp, as_of, index
        self.n = len(index)
        self._value_set = _arrow_strings(index.array)
        self.codes = self._lookup(cust["customer_id"])
        self.days = cust["day"].to_numpy()
        self._cp_codes: tuple[np.ndarray, np.ndarray, int] | None = None

    def _lookup(self, ids: pd.Series) -> np.ndarray:
        """Position of each id in the index (Arrow's hash lookup: no Python objects)."""
        return pc.index_in(_arrow_strings(ids.array), value_set=self._value_set).to_numpy(
            zero_copy_only=False).astype("int64")

    def _mask(self, days: np.ndarray, window: int) -> np.ndarray:
        day = self.as_of.toordinal()
        return (days > day - window) & (days <= day)

    def _count(self, codes: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(codes, weights=weights, minlength=self.n)

    def sum(self, window: int, column: str, dtype: str) -> np.ndarray:
        if column not in self.cust:
            return np.zeros(self.n, dtype=dtype)
        mask = self._mask(self.days, window)
        values = self.cust[column].to_numpy()[mask]
        if dtype == "int64":  # exact integer sums (bincount weights would go through float)
            out = np.zeros(self.n, dtype="int64")
            np.add.at(out, self.codes[mask], values.astype("int64"))
            return out
        return self._count(self.codes[mask], values.astype("float64"))

    def active_days(self, window: int, column: str) -> np.ndarray:
        if column not in self.cust:
            return np.zeros(self.n, dtype="int64")
        mask = self._mask(self.days, window) & (self.cust[column].to_numpy() > 0)
        return self._count(self.codes[mask]).astype("int64")

    def distinct_products(self, window: int, column: str) -> np.ndarray:
        if column not in self.cp or not len(self.cp):
            return np.zeros(self.n, dtype="int64")
        if self._cp_codes is None:
            products, uniques = pd.factorize(self.cp["product_id"])
            self._cp_codes = (self._lookup(self.cp["customer_id"]), products,
                              max(len(uniques), 1))
        customers, products, width = self._cp_codes
        mask = self._mask(self.cp["day"].to_numpy(), window) & (
            self.cp[column].to_numpy() > 0)
        pairs = np.unique(customers[mask].astype("int64") * width + products[mask])
        return self._count(pairs // width).astype("int64")


def _feature(f: Feature, win: _Windows, state: pd.DataFrame) -> np.ndarray | pd.Series:
    key, as_of, index = f.filter.key, win.as_of, win.index
    if f.aggregation == "count":
        col = f"{'pairs' if f.unit == 'product' else 'hits'}_{key}"
        return win.sum(f.window_days, col, "int64")
    if f.aggregation == "sum":
        return win.sum(f.window_days, f"sum_{f.field}_{key}",
                       "float64" if f.field == "price" else "int64")
    if f.aggregation == "distinct":
        if f.field == "event_date":
            return win.active_days(f.window_days, f"hits_{key}")
        return win.distinct_products(f.window_days, f"pairs_{key}")
    if f.aggregation == "recency":
        last = state[f"last_{key}"].reindex(index)
        days = (as_of.toordinal() - last).astype("Int64")
        return days.astype("int64") if f.filter.is_empty else days
    raise ValueError(f"aggregation {f.aggregation!r} is not a weblog aggregation")


def customer_snapshot(repo: FeatureRepo, table: str, as_of: dt.date, cust: pd.DataFrame,
                      cp: pd.DataFrame, state: pd.DataFrame) -> pd.DataFrame:
    """``customer_features``-like table at ``as_of``: one row per customer in ``state`` (every
    customer with a counted hit on or before the date), sorted by customer_id."""
    index = pd.Index(state.index.astype("string"), name="customer_id").sort_values()
    win = _Windows(cust, cp, as_of, index)
    out = pd.DataFrame(index=index)
    for name, f in repo.tables[table].features.items():
        value = _feature(f, win, state)
        out[name] = value.to_numpy() if isinstance(value, pd.Series) else value
        if f.aggregation == "recency" and not f.filter.is_empty:
            out[name] = out[name].astype("Int64")
    out = out.reset_index()
    out["customer_id"] = out["customer_id"].astype("string")
    return out


def customer_product_snapshot(repo: FeatureRepo, table: str, as_of: dt.date,
                              cp: pd.DataFrame) -> pd.DataFrame:
    """Customer x product features at ``as_of``; rows where some feature is non-zero.

    Keys become sorted integer codes (``factorize(sort=True)``), so one ``np.unique`` gives the
    rows already in (customer_id, product_id) order and each feature is one ``bincount``."""
    feats = repo.tables[table].features
    keys = ["customer_id", "product_id"]
    window = max(f.window_days for f in feats.values())
    rows = cp[_in_window(cp["day"], as_of, window)]
    customers, cust_values = pd.factorize(rows["customer_id"], sort=True)
    products, prod_values = pd.factorize(rows["product_id"], sort=True)
    width = max(len(prod_values), 1)
    pairs, inverse = np.unique(customers.astype("int64") * width + products,
                               return_inverse=True)
    out = pd.DataFrame({
        "customer_id": pd.array(np.asarray(cust_values, dtype=object)[pairs // width],
                                dtype="string"),
        "product_id": pd.array(np.asarray(prod_values, dtype=object)[pairs % width],
                               dtype="string"),
    })
    day = rows["day"].to_numpy()
    for name, f in feats.items():
        col = f"pairs_{f.filter.key}" if f.aggregation == "count" else \
            f"sum_{f.field}_{f.filter.key}"
        mask = (day > as_of.toordinal() - f.window_days) & (day <= as_of.toordinal())
        values = rows[col].to_numpy() if col in rows else np.zeros(len(rows), dtype="int64")
        if f.aggregation == "sum" and f.field == "price":
            out[name] = np.bincount(inverse[mask], weights=values[mask].astype("float64"),
                                    minlength=len(pairs))
        else:
            summed = np.zeros(len(pairs), dtype="int64")
            np.add.at(summed, inverse[mask], values[mask].astype("int64"))
            out[name] = summed
    names = list(feats)
    if names:
        out = out[(out[names].to_numpy() != 0).any(axis=1)]
    return out[keys + names].reset_index(drop=True)
