"""The per-customer running state behind ``customer_features``: one partition per as-of date.

``_state/customer/as_of=D/part-0.parquet`` has a row for every customer with a counted hit on
or before D (the row set of the customer tables) and, per customer:

* ``last_<filter>``: the latest event date (proleptic ordinal) with a hit matching a recency
  filter (nullable);
* ``cum_<column>``: the running total, from the first event date to D, of every daily
  aggregate column (``hits_*``, ``pairs_*``, ``sum_*``);
* ``days_<filter>``: the running count of days with a hit matching each hit filter.

A window of w days ending on D is then ``cum(D) - cum(D - w)``: two state partitions instead of
w daily ones, so a new day costs the same however long the history and whatever the window.
The state of D is the state of D-1 plus the daily aggregates of D, always computed in that
order from the first event date (or from a stored partition that was), so it is the same bits
on every run: a resumed or repeated run writes identical tables. Float totals (revenue) give
window sums within a few ulps of the total of the history; an empty window is exactly 0.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ..storage import Store
from .daily import DailyPlan

__all__ = ["CUSTOMER_STATE", "daily_columns", "state_columns", "empty_state", "advance",
           "load_state", "Aligned"]

CUSTOMER_STATE = "_state/customer"


def daily_columns(plan: DailyPlan) -> list[str]:
    """The daily customer aggregate columns the plan produces, in a fixed order."""
    return ([f"hits_{f.key}" for f in plan.hit_filters]
            + [f"pairs_{f.key}" for f in plan.pair_filters]
            + [f"sum_{fld}_{f.key}" for fld, f in plan.sums])


def state_columns(plan: DailyPlan) -> list[str]:
    return ([f"last_{f.key}" for f in plan.recency_filters]
            + [f"cum_{c}" for c in daily_columns(plan)]
            + [f"days_{f.key}" for f in plan.hit_filters])


def _dtype(column: str) -> str:
    if column.startswith("last_"):
        return "Int64"
    return "float64" if column.startswith("cum_sum_price") else "int64"


def empty_state(plan: DailyPlan) -> pd.DataFrame:
    cols = {c: pd.Series([], dtype=_dtype(c)) for c in state_columns(plan)}
    return pd.DataFrame(cols, index=pd.Index([], dtype="string", name="customer_id"))


def advance(state: pd.DataFrame, plan: DailyPlan, day: dt.date,
            daily: pd.DataFrame) -> pd.DataFrame:
    """The state after ``day`` from the state before it and the day's customer aggregates."""
    if not len(daily):
        return state
    daily = daily.set_index("customer_id")
    index = state.index.union(daily.index).astype("string")
    new = state.reindex(index)
    positions = index.get_indexer(daily.index)
    ordinal = day.toordinal()
    for f in plan.recency_filters:
        col = new[f"last_{f.key}"].to_numpy(dtype="float64", na_value=np.nan)
        col[positions[daily[f"hits_{f.key}"].to_numpy() > 0]] = ordinal
        new[f"last_{f.key}"] = pd.array(np.where(np.isnan(col), pd.NA, col), dtype="Int64")
    for c in daily_columns(plan):
        total = new[f"cum_{c}"].fillna(0).to_numpy(dtype=_dtype(f"cum_{c}"), copy=True)
        total[positions] += daily[c].to_numpy(dtype=total.dtype)
        new[f"cum_{c}"] = total
    for f in plan.hit_filters:
        days = new[f"days_{f.key}"].fillna(0).to_numpy(dtype="int64", copy=True)
        days[positions] += (daily[f"hits_{f.key}"].to_numpy() > 0).astype("int64")
        new[f"days_{f.key}"] = days
    new.index.name = "customer_id"
    return new


def load_state(store: Store, plan: DailyPlan, day: dt.date) -> pd.DataFrame:
    df = store.read_parquet(CUSTOMER_STATE, f"as_of={day.isoformat()}", "part-0.parquet")
    df["customer_id"] = df["customer_id"].astype("string")
    out = df.set_index("customer_id")[state_columns(plan)]
    return out.astype({c: _dtype(c) for c in out.columns})


class Aligned:
    """An older state's columns looked up at a newer state's customers (absent ones: 0); the
    string lookup is done once for all columns."""

    def __init__(self, lagged: pd.DataFrame, index: pd.Index) -> None:
        self.lagged = lagged
        self.positions = lagged.index.get_indexer(index)
        self.missing = self.positions < 0

    def column(self, name: str) -> np.ndarray:
        values = self.lagged[name].to_numpy(dtype=_dtype(name))
        if not len(values):
            return np.zeros(len(self.positions), dtype=_dtype(name))
        out = values[np.where(self.missing, 0, self.positions)]
        out[self.missing] = 0
        return out
