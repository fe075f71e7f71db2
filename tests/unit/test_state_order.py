"""Issue #18: a day's cost follows its customers, not the history. The state keeps its id
order (no sort of every id per day), finds the day's customers by binary search, overlays the
changed rows instead of copying every column, and the snapshot computes windows only for the
customers with a hit within the longest window. Checked here against plain sorting and a plain
pandas computation of every feature, with ids that arrive out of id order (new customers land
between old ones), dormant customers, quiet days, compactions and a whole-state file of older
code (no id order stored)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from featurestore import Store
from featurestore.features._io import write_ipc
from featurestore.features.daily import daily_plan
from featurestore.features.definitions import DEFAULT_REPO, load_feature_repo
from featurestore.features.snapshot import customer_snapshot, windows
from featurestore.features.state import CustomerState, daily_columns, load_state, write_state

START = dt.date(2026, 1, 1)


def _repo(tmp_path: Path):
    """The shipped repository without distinct-product counts (they need pair windows, tested
    elsewhere): every other customer feature kind (counts, sums, active days, recencies)."""
    lines = [line for line in DEFAULT_REPO.read_text().splitlines()
             if "distinct_products_viewed_30d" not in line
             and "field: product_id, filter" not in line]
    path = tmp_path / "repo.yaml"
    path.write_text("\n".join(lines) + "\n")
    repo = load_feature_repo(str(path))
    assert "distinct_products_viewed_30d" not in repo.tables["customer_features"].features
    return repo


def _name(i: int) -> str:
    return f"K{(i * 7919) % 100_003:06d}"  # later customers sort between earlier ones


def _days(n_days: int, seed: int = 3) -> list[pd.DataFrame]:
    """Made-up daily customer frames (sorted by id): 300 customers on day 0, then ~25 a day
    drawn from a growing population, some days empty; values make some filters 0."""
    rng = np.random.default_rng(seed)
    plan_cols = None
    out = []
    for n in range(n_days):
        if n == 0:
            ids = np.arange(300)
        elif n % 9 == 4:
            ids = np.arange(0)
        else:  # recent customers and a few new ones; customers 0..99 go dormant after day 0
            ids = rng.choice(np.arange(100, 300 + 4 * n), size=25, replace=False)
        out.append(sorted(_name(int(i)) for i in ids))
    del plan_cols
    return out


def _frame(plan, names: list[str], rng: np.random.Generator) -> pd.DataFrame:
    frame = pd.DataFrame({"customer_id": pd.array(names, dtype="string")})
    for c in daily_columns(plan):
        if c.startswith("sum_price"):
            frame[c] = rng.choice([0.0, 0.1, 2.5, 19.99, 1e4], size=len(names))
        elif c == "hits_all":
            frame[c] = rng.integers(1, 4, size=len(names))  # every active customer has a hit
        else:
            frame[c] = rng.integers(0, 3, size=len(names))
    return frame


def _expected(repo, plan, frames: list[pd.DataFrame], as_of: dt.date) -> pd.DataFrame:
    """customer_features at ``as_of`` in plain pandas from the daily frames."""
    hist = pd.concat([f.assign(day=(START + dt.timedelta(n)).toordinal())
                      for n, f in enumerate(frames)], ignore_index=True)
    hist = hist[hist["day"] <= as_of.toordinal()]
    ids = sorted(set(hist["customer_id"]))
    out = pd.DataFrame({"customer_id": ids})
    for name, f in repo.tables["customer_features"].features.items():
        key = f.filter.key
        if f.aggregation == "recency":
            seen = hist[hist[f"hits_{key}"] > 0].groupby("customer_id")["day"].max()
            value = as_of.toordinal() - out["customer_id"].map(seen)
            out[name] = value.astype("Int64" if not f.filter.is_empty else "int64")
            continue
        inside = hist[hist["day"] > as_of.toordinal() - f.window_days]
        if f.aggregation == "distinct":  # event_date: days with a matching hit
            per = inside[inside[f"hits_{key}"] > 0].groupby("customer_id")["day"].nunique()
        else:
            column = (f"sum_{f.field}_{key}" if f.aggregation == "sum" else
                      f"{'pairs' if f.unit == 'product' else 'hits'}_{key}")
            per = inside.groupby("customer_id")[column].sum()
        out[name] = out["customer_id"].map(per).fillna(0).astype(per.dtype if len(per) else
                                                                  "int64")
    return out


def _assert_bitwise_as_full_columns(repo, as_of, state, lagged, got) -> None:
    """The same bits as the whole-column computation (every row: state(D) - state(D - w),
    rows sorted by id): computing only the recent customers changes no value."""
    order = pc.sort_indices(state.ids).to_numpy()
    assert got["customer_id"].tolist() == state.ids.take(pa.array(order)).to_pylist()
    for name, f in repo.tables["customer_features"].features.items():
        if f.aggregation == "recency":
            continue
        key = f.filter.key
        column = (f"days_{key}" if f.aggregation == "distinct" else
                  f"cum_sum_{f.field}_{key}" if f.aggregation == "sum" else
                  f"cum_{'pairs' if f.unit == 'product' else 'hits'}_{key}")
        whole = np.asarray(state.columns[column]) - state.lagged(lagged[f.window_days], column)
        np.testing.assert_array_equal(got[name].to_numpy(), whole[order])


def test_the_kept_id_order_and_the_snapshot_match_sorting_and_plain_pandas(tmp_path):
    repo = _repo(tmp_path)
    plan = daily_plan(repo)
    lags = windows(repo)
    store = Store(str(tmp_path / "store"))
    rng = np.random.default_rng(7)
    names = _days(75)
    frames = [_frame(plan, n, rng) for n in names]
    states, state = [], CustomerState.empty(plan)
    for n, frame in enumerate(frames):
        day = START + dt.timedelta(n)
        state = state.advance(plan, day, frame)
        if n == 0:  # the whole-state file of older code: no id order stored
            write_ipc(store, state.to_arrow(), "_state/customer", f"as_of={day}",
                      "part-0.arrow")
        else:
            write_state(store, state, day)
        states.append(state)
        # the kept order is the order a sort gives, in memory and read back
        want = pc.sort_indices(state.ids).to_numpy()
        np.testing.assert_array_equal(state.id_order(), want)
        np.testing.assert_array_equal(load_state(store, plan, day).id_order(), want)
    for n in (0, 3, 4, 29, 30, 31, 44, 61, 74):  # before, across and after compactions
        as_of = START + dt.timedelta(n)
        for source in ("memory", "store"):
            state = states[n] if source == "memory" else load_state(store, plan, as_of)
            lagged = {w: (load_state(store, plan, as_of - dt.timedelta(w), ids=False)
                          if n - w >= 0 else None) for w in lags}
            got = customer_snapshot(repo, "customer_features", as_of, state, lagged,
                                    None).to_pandas()
            want = _expected(repo, plan, frames[:n + 1], as_of)
            assert len(got) == len(want) == len(state)
            pd.testing.assert_frame_equal(
                got.reset_index(drop=True),
                want[got.columns].astype(got.dtypes.to_dict()).reset_index(drop=True),
                check_exact=False, rtol=1e-9, atol=1e-6)  # running totals: a few ulps
            _assert_bitwise_as_full_columns(repo, as_of, state, lagged, got)
    # dormant customers (only on day 0) are in the table of day 74 with all-zero windows
    dormant = got[got["customer_id"] == _name(5)].iloc[0]
    assert dormant["page_views_30d"] == 0 and dormant["days_since_last_visit"] == 74


def test_a_long_run_in_memory_stays_one_overlay_deep_and_exact(tmp_path):
    """Advancing an advanced state overlays the same base (never a chain of overlays) and
    gives the same columns as a state read back from the store."""
    repo = _repo(tmp_path)
    plan = daily_plan(repo)
    store = Store(str(tmp_path / "store"))
    rng = np.random.default_rng(11)
    state = CustomerState.empty(plan)
    for n, names in enumerate(_days(40)):
        state = state.advance(plan, START + dt.timedelta(n), _frame(plan, names, rng))
        write_state(store, state, START + dt.timedelta(n))
        below = getattr(state.columns, "below", None)
        assert getattr(below, "below", None) is None  # one level at most
    loaded = load_state(store, plan, START + dt.timedelta(39))
    assert loaded.ids.to_pylist() == state.ids.to_pylist()
    for c in state.columns:
        np.testing.assert_array_equal(np.asarray(state.columns[c]), loaded.columns[c])
        at = np.array([0, 5, len(state) - 1, len(state) + 3])  # past the end: 0
        np.testing.assert_array_equal(state.take(c, at),
                                      np.append(np.asarray(loaded.columns[c])[at[:3]], 0))
    assert isinstance(state.ids, pa.Array)
