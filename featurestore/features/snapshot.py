"""One as-of date of the weblog feature tables, from the customer state and the pair sums.

Pure functions of their inputs: the customer state at D and a window back (:mod:`.state`) and
the customer x product window sums at D (:mod:`.pairs`). Nothing here reads raw events.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._io import arrow_table
from .definitions import Feature, FeatureRepo
from .pairs import PairSums, PairWindow, column_of
from .state import CustomerState

__all__ = ["customer_snapshot", "customer_product_snapshot", "max_window", "windows"]


def windows(repo: FeatureRepo, kind: str = "weblog") -> list[int]:
    """Every window length of the customer tables' windowed features (the lags a snapshot
    needs), sorted."""
    return sorted({f.window_days for name, t in repo.tables_for(kind).items()
                   if len(repo.keys(name)) == 1 for f in t.features.values() if f.window_days})


def max_window(repo: FeatureRepo, kind: str = "weblog") -> int:
    windows = [f.window_days for t in repo.tables_for(kind).values()
               for f in t.features.values() if f.window_days]
    return max(windows, default=1)


def _distinct_products(f: Feature, state: CustomerState, pairs: PairWindow) -> np.ndarray:
    """Per state customer: distinct products with a matching pair in the window."""
    ids, counts = pairs.distinct((column_of(f), f.window_days))
    if not len(ids):
        return np.zeros(len(state), dtype="int64")
    # every customer with a pair has a counted hit, so is in the state
    where = pc.index_in(ids, value_set=state.ids).to_numpy()
    return np.bincount(where, weights=counts, minlength=len(state)).astype("int64")


def _feature(f: Feature, as_of: dt.date, state: CustomerState,
             lags: dict[int, CustomerState | None], pairs: PairWindow | None) -> np.ndarray:
    """One customer feature at ``as_of`` in state row order: windows are state(D) minus
    state(D - w) (see state.py); a filtered recency is float with NaN for "never"."""
    key = f.filter.key

    def window(column: str) -> np.ndarray:
        return state.columns[column] - state.lagged(lags[f.window_days], column)

    if f.aggregation == "count":
        return window(f"cum_{'pairs' if f.unit == 'product' else 'hits'}_{key}")
    if f.aggregation == "sum":
        return window(f"cum_sum_{f.field}_{key}")
    if f.aggregation == "distinct" and f.field == "event_date":
        return window(f"days_{key}")
    if f.aggregation == "distinct":
        return _distinct_products(f, state, pairs)
    if f.aggregation == "recency":
        last = state.columns[f"last_{key}"]
        return as_of.toordinal() - last  # last == 0: never (masked by the caller)
    raise ValueError(f"aggregation {f.aggregation!r} is not a weblog aggregation")


def customer_snapshot(repo: FeatureRepo, table: str, as_of: dt.date, state: CustomerState,
                      lags: dict[int, CustomerState | None],
                      pairs: PairWindow | None) -> pa.Table:
    """``customer_features``-like table at ``as_of``: one row per customer in ``state`` (every
    customer with a counted hit on or before the date), sorted by customer_id.

    ``lags[w]`` is the state at ``as_of - w`` (None before the first event date), ``pairs``
    the customer x product window at ``as_of`` (for distinct-product counts)."""
    order = pc.sort_indices(state.ids).to_numpy()
    columns: dict[str, object] = {"customer_id": state.ids.take(pa.array(order))}
    missing = {}
    for name, f in repo.tables[table].features.items():
        columns[name] = _feature(f, as_of, state, lags, pairs)[order]
        if f.aggregation == "recency" and not f.filter.is_empty:  # never: null
            missing[name] = state.columns[f"last_{f.filter.key}"][order] == 0
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
