"""The per-customer running state behind ``customer_features``: one partition per as-of date.

``_state/customer/as_of=D/part-0.arrow`` (Arrow IPC) has a row for every customer with a
counted hit on or before D (the row set of the customer tables) and, per customer:

* ``last_<filter>``: the latest event date (proleptic ordinal) with a hit matching a recency
  filter, 0 when there is none;
* ``cum_<column>``: the running total, from the first event date to D, of every daily
  aggregate column (``hits_*``, ``pairs_*``, ``sum_*``);
* ``days_<filter>``: the running count of days with a hit matching each hit filter.

A window of w days ending on D is then ``cum(D) - cum(D - w)``: two state partitions instead of
w daily ones, so a new day costs the same however long the history and whatever the window.

Rows are in order of first appearance (ties by customer id), never reordered: the customers of
the state of D - w are the first rows of the state of D, so an older state lines up with a
newer one by position, without looking a single id up. The state of D is the state of D-1 plus
the daily aggregates of D, always computed in that order from the first event date (or from a
stored partition that was), so it is the same bits on every run: a resumed or repeated run
writes identical tables. Float totals (revenue) give window sums within a few ulps of the total
of the history; an empty window is exactly 0.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import layout
from ..storage import Store
from ._io import large_strings, read_ipc, write_ipc
from .daily import DailyPlan

__all__ = ["CUSTOMER_STATE", "STATE_FORMAT", "CustomerState", "daily_columns",
           "state_columns", "load_state", "state_exists", "write_state"]

CUSTOMER_STATE = layout.CUSTOMER_STATE
#: Bumped when the layout changes, so older stored states are rebuilt rather than misread
#: (2: rows in order of first appearance, ``last_*`` 0 for none; 3: Arrow IPC, not parquet).
STATE_FORMAT = 3


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
    return "float64" if column.startswith("cum_sum_price") else "int64"


@dataclasses.dataclass
class CustomerState:
    """Customer ids (Arrow strings, in order of first appearance) and one numpy column per
    state column, row-aligned with them."""

    ids: pa.Array
    columns: dict[str, np.ndarray]

    @classmethod
    def empty(cls, plan: DailyPlan) -> CustomerState:
        return cls(pa.array([], pa.large_string()),
                   {c: np.zeros(0, dtype=_dtype(c)) for c in state_columns(plan)})

    def __len__(self) -> int:
        return len(self.ids)

    def advance(self, plan: DailyPlan, day: dt.date, daily: pd.DataFrame) -> CustomerState:
        """The state after ``day`` from this one (before it) and the day's customer frame
        (one row per customer active that day, sorted by id)."""
        if not len(daily):
            return self
        day_ids = large_strings(daily["customer_id"].array)
        found = pc.index_in(day_ids, value_set=self.ids)
        new = found.is_null().to_numpy(zero_copy_only=False)
        positions = found.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64")
        ids = self.ids
        if new.any():  # customers never seen before: appended, in the day's (id) order
            positions[new] = len(ids) + np.arange(int(new.sum()))
            ids = pa.concat_arrays([ids, day_ids.filter(pa.array(new))])
        size = len(ids)
        columns = {}
        for name, values in self.columns.items():
            grown = np.zeros(size, dtype=values.dtype)
            grown[:len(values)] = values
            columns[name] = grown
        ordinal = day.toordinal()
        for f in plan.recency_filters:
            seen = daily[f"hits_{f.key}"].to_numpy() > 0
            columns[f"last_{f.key}"][positions[seen]] = ordinal
        for c in daily_columns(plan):
            total = columns[f"cum_{c}"]
            total[positions] += daily[c].to_numpy(dtype=total.dtype)
        for f in plan.hit_filters:
            columns[f"days_{f.key}"][positions] += daily[f"hits_{f.key}"].to_numpy() > 0
        return CustomerState(ids, columns)

    def lagged(self, older: CustomerState | None, column: str) -> np.ndarray:
        """``column`` of an older state lined up with this one's rows (later customers: 0)."""
        out = np.zeros(len(self.ids), dtype=_dtype(column))
        if older is not None:
            values = older.columns[column]
            out[:len(values)] = values
        return out

    def to_arrow(self) -> pa.Table:
        return pa.table({"customer_id": self.ids, **self.columns})


def _path(day: dt.date) -> tuple[str, str, str]:
    return CUSTOMER_STATE, f"as_of={day.isoformat()}", "part-0.arrow"


def state_exists(store: Store, day: dt.date) -> bool:
    return store.exists(*_path(day))


def write_state(store: Store, state: CustomerState, day: dt.date) -> None:
    write_ipc(store, state.to_arrow(), *_path(day))


def load_state(store: Store, plan: DailyPlan, day: dt.date, *,
               ids: bool = True) -> CustomerState:
    """The stored state of ``day``; ``ids=False`` skips the id column (enough for a state a
    window back, which lines up by position)."""
    columns = state_columns(plan)
    table = read_ipc(store, *_path(day), columns=(["customer_id"] if ids else []) + columns)
    # views, not copies: a state is never changed in place (advance builds new columns)
    values = {c: table.column(c).to_numpy().astype(_dtype(c), copy=False) for c in columns}
    ids_array = table.column("customer_id").combine_chunks().cast(pa.large_string()) if ids \
        else pa.nulls(table.num_rows, pa.large_string())
    return CustomerState(ids_array, values)
