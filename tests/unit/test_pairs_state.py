"""The incremental building blocks against plain pandas on arbitrary small inputs (hypothesis):
pair window sums split as (earlier days, day D) and merged, distinct-product counts without
merging, the prior rolled from yesterday's stored sums, and the customer state's running totals
lined up with an older state by position."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from featurestore import Store
from featurestore.features.daily import DailyPlan, daily_plan
from featurestore.features.definitions import load_feature_repo
from featurestore.features.pairs import (
    PairWindow,
    aggregate,
    load_pairs,
    roll,
    rolls,
    write_pairs,
)
from featurestore.features.state import CustomerState, daily_columns

AS_OF = dt.date(2026, 3, 1).toordinal()
SPECS = [("pairs_a", 3), ("pairs_a", 7), ("sum_price_a", 7)]

# (day offset before D, customer, product, pair count, price, quantity) rows of a daily pair
# table; quantities may be negative, so a window's sum can be 0 while the pair has rows in it
rows_strategy = st.lists(
    st.tuples(st.integers(0, 8), st.sampled_from(["c1", "c2", "c10", "c3", "z"]),
              st.sampled_from(["p1", "p2", "p10"]), st.integers(0, 3),
              st.sampled_from([0.0, 0.1, 2.5, 1e9]), st.integers(-2, 2)),
    max_size=40)


def _daily_frame(rows) -> pd.DataFrame:
    """One row per (day, customer, product) as the daily aggregates have it, in day order."""
    df = pd.DataFrame(rows, columns=["offset", "customer_id", "product_id", "pairs_a",
                                     "sum_price_a", "sum_quantity_a"]).astype(
        {"offset": "int64", "customer_id": object, "product_id": object, "pairs_a": "int64",
         "sum_price_a": "float64", "sum_quantity_a": "int64"})
    df = df.groupby(["offset", "customer_id", "product_id"], as_index=False).sum()
    df["day"] = AS_OF - df["offset"]
    df = df.sort_values(["day", "customer_id", "product_id"], kind="stable")
    df["customer_id"] = df["customer_id"].astype("string")
    df["product_id"] = df["product_id"].astype("string")
    return df.drop(columns="offset").reset_index(drop=True)


def _arrow(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


def _expected(df: pd.DataFrame, column: str, window: int) -> pd.Series:
    inside = df[df["day"] > AS_OF - window]
    return inside.groupby(["customer_id", "product_id"])[column].sum()


@settings(max_examples=200, deadline=None)
@given(rows_strategy)
def test_prior_plus_day_equals_the_whole_window(rows):
    df = _daily_frame(rows)
    earlier, today = _arrow(df[df["day"] < AS_OF]), _arrow(df[df["day"] == AS_OF])
    window = PairWindow(aggregate(earlier, AS_OF, SPECS), today, AS_OF, SPECS)
    merged = window.merged()
    keys = pd.MultiIndex.from_arrays(
        [merged.customers.take(merged.cust).to_pylist(),
         merged.products.take(merged.prod).to_pylist()], names=["customer_id", "product_id"])
    assert keys.is_monotonic_increasing and keys.is_unique
    whole = set(zip(df["customer_id"], df["product_id"], strict=True))
    assert set(keys) == whole  # every pair of the widest window, once
    for column, w in SPECS:
        got = pd.Series(merged.values((column, w), df[column].dtype), index=keys)
        want = _expected(df, column, w).reindex(keys, fill_value=0)
        if column.startswith("sum_price"):
            np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12)
        else:
            assert got.to_numpy().tolist() == want.to_numpy().tolist()

    counted = PairWindow(window.prior, today, AS_OF, SPECS).count_prior([("pairs_a", 3)])
    for w, part in ((3, counted), (7, window), (3, window)):  # counted ahead or on demand
        ids, counts = part.distinct(("pairs_a", w))  # distinct products, parts unmerged
        got = pd.Series(counts, index=ids.to_pylist()).groupby(level=0).sum()
        got = got[got > 0]
        sums = _expected(df, "pairs_a", w)
        want = sums[sums > 0].groupby(level="customer_id").size()
        assert got.sort_index().to_dict() == want.sort_index().to_dict()


def _plan() -> DailyPlan:
    return daily_plan(load_feature_repo(None))


# per day: (customer, hits) of the customers active that day
days_strategy = st.lists(
    st.dictionaries(st.sampled_from(["b", "a", "d", "c", "aa"]), st.integers(0, 4),
                    max_size=5),
    min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(days_strategy)
def test_state_running_totals_and_lags_by_position(days):
    plan = _plan()
    columns = daily_columns(plan)
    start = dt.date(2026, 1, 1)
    states = [CustomerState.empty(plan)]
    for n, active in enumerate(days):
        frame = pd.DataFrame({"customer_id": pd.array(sorted(active), dtype="string")})
        for i, c in enumerate(columns):  # distinct made-up values per column
            frame[c] = [active[k] * (i + 1) for k in sorted(active)]
        states.append(states[-1].advance(plan, start + dt.timedelta(n), frame))
    last = states[-1]
    ids = last.ids.to_pylist()
    assert len(set(ids)) == len(ids)
    first_seen = [k for n, active in enumerate(days) for k in sorted(active)]
    assert ids == list(dict.fromkeys(first_seen))  # order of first appearance
    hits = f"hits_{plan.hit_filters[0].key}"
    for lag in range(len(days) + 1):
        older = states[len(days) - lag]
        window = last.columns[f"cum_{hits}"] - last.lagged(older, f"cum_{hits}")
        want = {k: 0 for k in ids}
        for active in days[len(days) - lag:]:
            for k, v in active.items():
                want[k] += v
        assert dict(zip(ids, window.tolist(), strict=True)) == want
        assert older.ids.to_pylist() == ids[:len(older)]  # an older state is a prefix


INT_SPECS = [("pairs_a", 3), ("pairs_a", 7), ("sum_quantity_a", 3)]


@settings(max_examples=200, deadline=None)
@given(rows_strategy)
def test_rolled_prior_equals_the_window_without_today(tmp_path_factory, rows):
    df = _daily_frame(rows).drop(columns="sum_price_a")
    yesterday = AS_OF - 1
    before = df[df["day"] <= yesterday]
    prev = aggregate(_arrow(before), yesterday, INT_SPECS)  # the sums at D-1
    store = Store(str(tmp_path_factory.mktemp("pairs")))  # through the stored form
    write_pairs(store, prev, dt.date.fromordinal(yesterday))
    prev = load_pairs(store, dt.date.fromordinal(yesterday))
    leaving = {w: _arrow(df[df["day"] == AS_OF - w]) for w in (3, 7)}
    prior = roll(prev, AS_OF, leaving, 7)
    kept = set(zip(prior.customers.take(prior.cust).to_pylist(),
                   prior.products.take(prior.prod).to_pylist(), strict=True))
    inside = df[(df["day"] > AS_OF - 7) & (df["day"] < AS_OF)]
    assert kept == set(zip(inside["customer_id"], inside["product_id"], strict=True))
    assert rolls(INT_SPECS) and not rolls(SPECS)
    for column, w in INT_SPECS:
        inside = df[(df["day"] > AS_OF - w) & (df["day"] < AS_OF)]
        want = inside.groupby(["customer_id", "product_id"])[column].sum()
        want = want[want != 0].to_dict()
        values = prior.values((column, w), "int64")
        got = {(c, p): int(v) for c, p, v in zip(prior.customers.take(prior.cust).to_pylist(),
                                                 prior.products.take(prior.prod).to_pylist(),
                                                 values, strict=True) if v != 0}
        assert got == want
