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


def _windowed(daily: pd.DataFrame, keys: list[str], column: str, as_of: dt.date,
              window: int, index: pd.Index) -> pd.Series:
    rows = daily[_in_window(daily["day"], as_of, window)]
    if column not in rows:
        return pd.Series(0, index=index, dtype="int64")
    sums = rows.groupby(keys, sort=False)[column].sum()
    return sums.reindex(index, fill_value=0)


def _feature(f: Feature, cust: pd.DataFrame, cp: pd.DataFrame, state: pd.DataFrame,
             as_of: dt.date, index: pd.Index) -> pd.Series:
    key = f.filter.key
    if f.aggregation == "count":
        col = f"{'pairs' if f.unit == 'product' else 'hits'}_{key}"
        return _windowed(cust, ["customer_id"], col, as_of, f.window_days, index).astype("int64")
    if f.aggregation == "sum":
        out = _windowed(cust, ["customer_id"], f"sum_{f.field}_{key}", as_of, f.window_days,
                        index)
        return out.astype("float64" if f.field == "price" else "int64")
    if f.aggregation == "distinct":
        if f.field == "event_date":
            rows = cust[_in_window(cust["day"], as_of, f.window_days)]
            rows = rows[rows[f"hits_{key}"].to_numpy() > 0]
            return rows.groupby("customer_id").size().reindex(index, fill_value=0).astype(
                "int64")
        rows = cp[_in_window(cp["day"], as_of, f.window_days)]
        rows = rows[rows[f"pairs_{key}"].to_numpy() > 0]
        return rows.groupby("customer_id")["product_id"].nunique().reindex(
            index, fill_value=0).astype("int64")
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
    out = pd.DataFrame(index=index)
    for name, f in repo.tables[table].features.items():
        out[name] = _feature(f, cust, cp, state, as_of, index).to_numpy()
        if f.aggregation == "recency" and not f.filter.is_empty:
            out[name] = out[name].astype("Int64")
    out = out.reset_index()
    out["customer_id"] = out["customer_id"].astype("string")
    return out


def customer_product_snapshot(repo: FeatureRepo, table: str, as_of: dt.date,
                              cp: pd.DataFrame) -> pd.DataFrame:
    """Customer x product features at ``as_of``; rows where some feature is non-zero."""
    feats = repo.tables[table].features
    keys = ["customer_id", "product_id"]
    window = max(f.window_days for f in feats.values())
    rows = cp[_in_window(cp["day"], as_of, window)]
    index = pd.MultiIndex.from_frame(rows[keys].drop_duplicates()) if len(rows) else \
        pd.MultiIndex.from_arrays([pd.array([], dtype="string")] * 2, names=keys)
    out = pd.DataFrame(index=index)
    for name, f in feats.items():
        col = f"pairs_{f.filter.key}" if f.aggregation == "count" else \
            f"sum_{f.field}_{f.filter.key}"
        dtype = "float64" if f.aggregation == "sum" and f.field == "price" else "int64"
        out[name] = _windowed(rows, keys, col, as_of, f.window_days, index).astype(
            dtype).to_numpy()
    if len(feats):
        out = out[(out.to_numpy() != 0).any(axis=1)]
    out = out.sort_index().reset_index()
    for k in keys:
        out[k] = out[k].astype("string")
    return out
