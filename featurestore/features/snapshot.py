"""One as-of date of the weblog feature tables, from the customer state and the pair sums.

Pure functions of their inputs: the customer state at D and a window back (:mod:`.state`) and
the customer x product window sums at D (:mod:`.pairs`). Nothing here reads raw events.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from ._io import arrow_table, large_strings
from .daily import ALL
from .definitions import Feature, FeatureRepo, is_extended
from .pairs import DistinctCounts, PairSums, PairWindow, column_of
from .state import CustomerState, id_ranks

__all__ = ["customer_snapshot", "customer_product_snapshot", "max_window", "windows"]


def windows(repo: FeatureRepo, kind: str = "weblog") -> list[int]:
    """Every window length of the customer tables' windowed features (the lags a snapshot
    needs), sorted."""
    return sorted({f.window_days for name, t in repo.tables_for(kind).items()
                   if len(repo.keys(name)) == 1 for f in t.features.values()
                   if f.window_days and not is_extended(f)})


def max_window(repo: FeatureRepo, kind: str = "weblog") -> int:
    windows = [f.window_days for t in repo.tables_for(kind).values()
               for f in t.features.values() if f.window_days and not is_extended(f)]
    return max(windows, default=1)


def _distinct_products(f: Feature, state: CustomerState,
                       pairs: PairWindow | DistinctCounts) -> np.ndarray:
    """Per customer, in id order: distinct products with a matching pair in the window."""
    ids, counts = pairs.distinct((column_of(f), f.window_days))
    if not len(ids):
        return np.zeros(len(state), dtype="int64")
    # every customer with a pair has a counted hit, so is in the state: its rank in id order
    # by binary search (k log N), not a hash of every id
    ranks = id_ranks(state, large_strings(ids))
    return np.bincount(ranks, weights=counts, minlength=len(state)).astype("int64")


def _window_column(f: Feature) -> str:
    key = f.filter.key
    if f.aggregation == "count":
        return f"cum_{'pairs' if f.unit == 'product' else 'hits'}_{key}"
    if f.aggregation == "sum":
        return f"cum_sum_{f.field}_{key}"
    if f.aggregation == "distinct" and f.field == "event_date":
        return f"days_{key}"
    raise ValueError(f"aggregation {f.aggregation!r} is not a weblog aggregation")


def customer_snapshot(repo: FeatureRepo, table: str, as_of: dt.date, state: CustomerState,
                      lags: dict[int, CustomerState | None],
                      pairs: PairWindow | DistinctCounts | None) -> pa.Table:
    """``customer_features``-like table at ``as_of``: one row per customer in ``state`` (every
    customer with a counted hit on or before the date), sorted by customer_id.

    ``lags[w]`` is the state at ``as_of - w`` (None before the first event date), ``pairs``
    the customer x product window at ``as_of`` (for distinct-product counts; its
    :class:`.pairs.DistinctCounts` will do).

    Windows are state(D) minus state(D - w) (see state.py), computed only for the customers
    with a hit within the longest window (``last_all``): every other customer's windows are
    0 (its running totals did not move), so past the rows of the table itself, the cost
    follows the recent customers, not the history. Rows are put in id order with the
    state's kept id order (no sort)."""
    order = state.id_order()
    size = len(state)
    # SPEC §3a features are added by the aggs engine (materialize._customer_tables_task)
    feats = {n: f for n, f in repo.tables[table].features.items() if not is_extended(f)}
    longest = max((f.window_days for f in feats.values() if f.window_days), default=0)
    lasts: dict[str, np.ndarray] = {}

    def last(key: str) -> np.ndarray:  # a recency column in id order, built once
        if key not in lasts:
            lasts[key] = np.asarray(state.columns[f"last_{key}"])[order]
        return lasts[key]

    # output rows (in id order) whose windows can be non-zero, and their state positions
    recent = np.flatnonzero(last(ALL.key) > as_of.toordinal() - longest) if longest else None
    rows = order[recent] if longest else None
    columns: dict[str, object] = {"customer_id": state.ids.take(pa.array(order))}
    missing = {}
    for name, f in feats.items():
        if f.aggregation == "recency":
            columns[name] = as_of.toordinal() - last(f.filter.key)  # 0: never (masked)
            if not f.filter.is_empty:  # never: null
                missing[name] = last(f.filter.key) == 0
        elif f.aggregation == "distinct" and f.field != "event_date":
            columns[name] = _distinct_products(f, state, pairs)
        else:
            column = _window_column(f)
            lag = lags[f.window_days]
            values = state.take(column, rows)
            if lag is not None:
                values = values - lag.take(column, rows)
            out = np.zeros(size, dtype=values.dtype)
            out[recent] = values
            columns[name] = out
    return arrow_table(columns, missing)


def customer_product_snapshot(repo: FeatureRepo, table: str, pairs: PairSums) -> pa.Table:
    """Customer x product features from the pair sums; rows where some feature is non-zero,
    in (customer_id, product_id) order."""
    feats = repo.tables[table].features
    values = {}
    for name, f in feats.items():
        dtype = "float64" if f.aggregation == "sum" and f.field == "price" else "int64"
        values[name] = pairs.values((column_of(f), f.window_days), dtype).astype(dtype)
    keep = np.zeros(len(pairs), dtype=bool)
    for v in values.values():
        keep |= v != 0
    rows = np.flatnonzero(keep)
    columns: dict[str, object] = {  # codes into the sorted ids: written without decoding
        "customer_id": pa.DictionaryArray.from_arrays(pa.array(pairs.cust[rows], pa.int32()),
                                                      pairs.customers),
        "product_id": pa.DictionaryArray.from_arrays(pa.array(pairs.prod[rows], pa.int32()),
                                                     pairs.products),
    }
    columns.update({name: v[rows] for name, v in values.items()})
    return arrow_table(columns)
