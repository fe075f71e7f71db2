"""One as-of date of the weblog feature tables, from daily aggregates and the recency state.

Pure functions of their inputs: the daily frames of D-W+1 .. D (W = the table's longest
window) and the recency state at D. Nothing here reads raw events.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

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


class _Windows:
    """Per window length, one filter and one groupby over all daily columns (cached), so the
    cost of a snapshot grows with the number of distinct windows, not features."""

    def __init__(self, cust: pd.DataFrame, cp: pd.DataFrame, as_of: dt.date,
                 index: pd.Index) -> None:
        self.cust, self.cp, self.as_of, self.index = cust, cp, as_of, index
        self._sums: dict[int, pd.DataFrame] = {}
        self._days: dict[int, pd.DataFrame] = {}
        self._distinct: dict[tuple[int, str], pd.Series] = {}

    def _rows(self, df: pd.DataFrame, window: int) -> pd.DataFrame:
        return df[_in_window(df["day"], self.as_of, window)]

    def sums(self, window: int) -> pd.DataFrame:
        if window not in self._sums:
            rows = self._rows(self.cust, window)
            cols = [c for c in rows.columns if c not in ("customer_id", "day")]
            self._sums[window] = rows.groupby("customer_id", sort=False)[cols].sum().reindex(
                self.index, fill_value=0)
        return self._sums[window]

    def active_days(self, window: int) -> pd.DataFrame:
        if window not in self._days:
            rows = self._rows(self.cust, window)
            cols = [c for c in rows.columns if c.startswith("hits_")]
            flags = (rows[cols] > 0).astype("int64")
            flags["customer_id"] = rows["customer_id"].to_numpy()
            self._days[window] = flags.groupby("customer_id", sort=False)[cols].sum().reindex(
                self.index, fill_value=0)
        return self._days[window]

    def distinct_products(self, window: int, column: str) -> pd.Series:
        if (window, column) not in self._distinct:
            rows = self._rows(self.cp, window)
            rows = rows[rows[column].to_numpy() > 0] if column in rows else rows.iloc[:0]
            self._distinct[(window, column)] = rows.groupby("customer_id", sort=False)[
                "product_id"].nunique().reindex(self.index, fill_value=0)
        return self._distinct[(window, column)]


def _column(frame: pd.DataFrame, column: str) -> pd.Series:
    if column in frame:
        return frame[column]
    return pd.Series(0, index=frame.index, dtype="int64")


def _feature(f: Feature, win: _Windows, state: pd.DataFrame) -> pd.Series:
    key, as_of, index = f.filter.key, win.as_of, win.index
    if f.aggregation == "count":
        col = f"{'pairs' if f.unit == 'product' else 'hits'}_{key}"
        return _column(win.sums(f.window_days), col).astype("int64")
    if f.aggregation == "sum":
        out = _column(win.sums(f.window_days), f"sum_{f.field}_{key}")
        return out.astype("float64" if f.field == "price" else "int64")
    if f.aggregation == "distinct":
        if f.field == "event_date":
            return _column(win.active_days(f.window_days), f"hits_{key}").astype("int64")
        return win.distinct_products(f.window_days, f"pairs_{key}").astype("int64")
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
        out[name] = _feature(f, win, state).to_numpy()
        if f.aggregation == "recency" and not f.filter.is_empty:
            out[name] = out[name].astype("Int64")
    out = out.reset_index()
    out["customer_id"] = out["customer_id"].astype("string")
    return out


def customer_product_snapshot(repo: FeatureRepo, table: str, as_of: dt.date,
                              cp: pd.DataFrame) -> pd.DataFrame:
    """Customer x product features at ``as_of``; rows where some feature is non-zero.

    One groupby: each feature's daily column is masked to its window first, then all are summed
    together over (customer_id, product_id)."""
    feats = repo.tables[table].features
    keys = ["customer_id", "product_id"]
    window = max(f.window_days for f in feats.values())
    rows = cp[_in_window(cp["day"], as_of, window)]
    masked = pd.DataFrame({k: rows[k].to_numpy() for k in keys})
    dtypes = {}
    for name, f in feats.items():
        col = f"pairs_{f.filter.key}" if f.aggregation == "count" else \
            f"sum_{f.field}_{f.filter.key}"
        dtypes[name] = "float64" if f.aggregation == "sum" and f.field == "price" else "int64"
        values = rows[col].to_numpy() if col in rows else np.zeros(len(rows), dtype="int64")
        masked[name] = np.where(_in_window(rows["day"], as_of, f.window_days), values, 0)
    out = masked.groupby(keys, sort=True).sum()
    if len(feats):
        out = out[(out.to_numpy() != 0).any(axis=1)]
    out = out.reset_index()
    for k in keys:
        out[k] = out[k].astype("string")
    for name, dtype in dtypes.items():
        out[name] = out[name].astype(dtype)
    return out
