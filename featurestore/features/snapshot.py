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

from .definitions import Feature, FeatureRepo
from .state import Aligned

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


def _arrow_strings(values) -> pa.Array:
    """A pandas string array as one Arrow string array (zero-copy for Arrow-backed ones)."""
    arr = pa.array(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


def _in_window(days: pd.Series, as_of: dt.date, window: int) -> np.ndarray:
    return (days >= as_of.toordinal() - window + 1).to_numpy() & (
        days <= as_of.toordinal()).to_numpy()


def _distinct_products(cp: pd.DataFrame, index: pd.Index, as_of: dt.date, window: int,
                       column: str) -> np.ndarray:
    """Per customer of ``index``: distinct products with a ``column`` pair in the window."""
    if column not in cp or not len(cp):
        return np.zeros(len(index), dtype="int64")
    rows = cp[_in_window(cp["day"], as_of, window) & (cp[column].to_numpy() > 0)]
    customers = pc.index_in(_arrow_strings(rows["customer_id"].array),
                            value_set=_arrow_strings(index.array)).to_numpy(
        zero_copy_only=False).astype("int64")
    products, uniques = pd.factorize(rows["product_id"])
    width = max(len(uniques), 1)
    pairs, _ = _unique_sorted(customers * width + products)
    return np.bincount(pairs // width, minlength=len(index)).astype("int64")


def _unique_sorted(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` for integer keys by one argsort (numpy 2's
    hash-based unique is several times slower on 100k+ keys)."""
    if not len(keys):
        return keys, np.zeros(0, dtype="int64")
    order = np.argsort(keys)
    ordered = keys[order]
    first = np.empty(len(keys), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    inverse = np.empty(len(keys), dtype="int64")
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def _feature(f: Feature, as_of: dt.date, state: pd.DataFrame,
             lags: dict[int, Aligned], cp: pd.DataFrame | None) -> np.ndarray | pd.Series:
    """One customer feature at ``as_of``: windows are state(D) - state(D - w) (see state.py)."""
    key, index = f.filter.key, state.index

    def window(column: str) -> np.ndarray:
        return state[column].to_numpy() - lags[f.window_days].column(column)

    if f.aggregation == "count":
        return window(f"cum_{'pairs' if f.unit == 'product' else 'hits'}_{key}")
    if f.aggregation == "sum":
        return window(f"cum_sum_{f.field}_{key}")
    if f.aggregation == "distinct" and f.field == "event_date":
        return window(f"days_{key}")
    if f.aggregation == "distinct":
        return _distinct_products(cp, index, as_of, f.window_days, f"pairs_{key}")
    if f.aggregation == "recency":
        days = (as_of.toordinal() - state[f"last_{key}"]).astype("Int64")
        return days.astype("int64") if f.filter.is_empty else days
    raise ValueError(f"aggregation {f.aggregation!r} is not a weblog aggregation")


def customer_snapshot(repo: FeatureRepo, table: str, as_of: dt.date, state: pd.DataFrame,
                      lags: dict[int, pd.DataFrame], cp: pd.DataFrame | None) -> pd.DataFrame:
    """``customer_features``-like table at ``as_of``: one row per customer in ``state`` (every
    customer with a counted hit on or before the date), sorted by customer_id.

    ``state`` is the customer state at ``as_of``, ``lags[w]`` the one at ``as_of - w`` (empty
    before the first event date), ``cp`` the daily customer x product rows of the longest
    window (for distinct-product counts)."""
    state = state.sort_index()
    aligned = {w: Aligned(lagged, state.index) for w, lagged in lags.items()}
    out = pd.DataFrame(index=pd.Index(state.index.astype("string"), name="customer_id"))
    for name, f in repo.tables[table].features.items():
        value = _feature(f, as_of, state, aligned, cp)
        out[name] = value.to_numpy() if isinstance(value, pd.Series) else value
        if f.aggregation == "recency" and not f.filter.is_empty:
            out[name] = out[name].astype("Int64")
    out = out.reset_index()
    out["customer_id"] = out["customer_id"].astype("string")
    return out


def customer_product_snapshot(repo: FeatureRepo, table: str, as_of: dt.date,
                              cp: pd.DataFrame) -> pd.DataFrame:
    """Customer x product features at ``as_of``; rows where some feature is non-zero.

    Keys become sorted integer codes (``factorize(sort=True)``), so one sort gives the
    rows already in (customer_id, product_id) order and each feature is one ``bincount``."""
    feats = repo.tables[table].features
    keys = ["customer_id", "product_id"]
    window = max(f.window_days for f in feats.values())
    rows = cp[_in_window(cp["day"], as_of, window)]
    customers, cust_values = pd.factorize(rows["customer_id"], sort=True)
    products, prod_values = pd.factorize(rows["product_id"], sort=True)
    width = max(len(prod_values), 1)
    pairs, inverse = _unique_sorted(customers.astype("int64") * width + products)
    out = pd.DataFrame({  # Arrow takes: no Python string objects
        "customer_id": pd.array(cust_values, dtype="string").take(pairs // width),
        "product_id": pd.array(prod_values, dtype="string").take(pairs % width),
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
