"""Issue #18 item 2: the customer state is stored as a delta chain, so a day writes only the
customers active that day; reading state(D) gives back exactly the state computed in memory,
and an older store's whole-state files are read as they are."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from featurestore import Store
from featurestore.features._io import write_ipc
from featurestore.features.daily import daily_plan
from featurestore.features.definitions import load_feature_repo
from featurestore.features.state import (
    MAX_CHAIN_DAYS,
    CustomerState,
    daily_columns,
    load_state,
    stored_rows,
    write_state,
)

START = dt.date(2026, 1, 1)


def _frame(plan, active: dict[str, int]) -> pd.DataFrame:
    """A day's customer frame: made-up values per column, ids sorted."""
    keys = sorted(active)
    frame = pd.DataFrame({"customer_id": pd.array(keys, dtype="string")})
    for i, c in enumerate(daily_columns(plan)):
        frame[c] = np.array([active[k] * (i + 1) for k in keys],
                            dtype="float64" if c.startswith("sum_price") else "int64")
    return frame


def _days(history: int, active: int, days: int, seed: int = 1) -> list[dict[str, int]]:
    """Day 0: ``history`` customers; then ``active`` a day (a few new ones each day, some
    days idle)."""
    rng = np.random.default_rng(seed)
    out = [{f"C{i:06d}": int(rng.integers(1, 5)) for i in range(history)}]
    for n in range(1, days):
        if n % 11 == 5:
            out.append({})  # nobody active: an empty delta
            continue
        ids = rng.choice(history + 10 * n, size=active, replace=False)
        out.append({f"C{i:06d}": int(rng.integers(0, 5)) for i in ids})
    return out


def _assert_same(got: CustomerState, want: CustomerState, ids: bool = True) -> None:
    if ids:
        assert got.ids.to_pylist() == want.ids.to_pylist()
    assert len(got) == len(want)
    assert list(got.columns) == list(want.columns)
    for c in want.columns:
        np.testing.assert_array_equal(np.asarray(got.columns[c]), np.asarray(want.columns[c]))


def test_a_day_writes_only_its_active_customers_and_reads_back_exactly(tmp_path):
    plan = daily_plan(load_feature_repo())
    store = Store(str(tmp_path / "store"))
    days = _days(history=3000, active=40, days=70)
    states, state = [], CustomerState.empty(plan)
    for n, active in enumerate(days):
        state = state.advance(plan, START + dt.timedelta(n), _frame(plan, active))
        write_state(store, state, START + dt.timedelta(n))
        states.append(state)
    kinds = [stored_rows(store, START + dt.timedelta(n)) for n in range(len(days))]
    assert kinds[0] == ("full", 3000)
    fulls = [n for n, (kind, _) in enumerate(kinds) if kind == "full"]
    assert fulls == [0, MAX_CHAIN_DAYS, 2 * MAX_CHAIN_DAYS]  # compacted on schedule
    for n, (kind, rows) in enumerate(kinds):
        if kind == "delta":  # bounded by the day's active customers, not the history
            assert rows == len(days[n]) <= 40
    for n, want in enumerate(states):  # every state, whole or a chain, reads back exactly
        day = START + dt.timedelta(n)
        _assert_same(load_state(store, plan, day), want)
        _assert_same(load_state(store, plan, day, ids=False), want, ids=False)
    # a run resumed from a stored state continues the same chain: identical files
    resumed = load_state(store, plan, START + dt.timedelta(40))
    for n in range(41, 45):
        resumed = resumed.advance(plan, START + dt.timedelta(n), _frame(plan, days[n]))
        assert (resumed.full, resumed.base, resumed.chain_rows) == (
            states[n].full, states[n].base, states[n].chain_rows)
        _assert_same(resumed, states[n])


def test_a_day_touching_most_customers_is_stored_whole(tmp_path):
    plan = daily_plan(load_feature_repo())
    store = Store(str(tmp_path / "store"))
    state = CustomerState.empty(plan)
    everyone = {f"C{i:03d}": 1 for i in range(100)}
    for n, active in enumerate([everyone, {"C001": 1}, everyone]):
        state = state.advance(plan, START + dt.timedelta(n), _frame(plan, active))
        write_state(store, state, START + dt.timedelta(n))
    assert [stored_rows(store, START + dt.timedelta(n)) for n in range(3)] == [
        ("full", 100), ("delta", 1), ("full", 100)]


def test_an_older_stores_whole_state_is_read_and_chained_on(tmp_path):
    plan = daily_plan(load_feature_repo())
    store = Store(str(tmp_path / "store"))
    first = CustomerState.empty(plan).advance(plan, START,
                                              _frame(plan, {f"c{i}": i for i in range(10)}))
    # the format-3 file of older code: the whole state, no metadata
    write_ipc(store, first.to_arrow(), "_state/customer", f"as_of={START}", "part-0.arrow")
    loaded = load_state(store, plan, START)
    _assert_same(loaded, first)
    second = loaded.advance(plan, START + dt.timedelta(1), _frame(plan, {"new": 3, "c1": 1}))
    write_state(store, second, START + dt.timedelta(1))
    assert stored_rows(store, START + dt.timedelta(1)) == ("delta", 2)
    _assert_same(load_state(store, plan, START + dt.timedelta(1)), second)


def test_a_broken_chain_is_refused(tmp_path):
    plan = daily_plan(load_feature_repo())
    store = Store(str(tmp_path / "store"))
    state = CustomerState.empty(plan)
    for n, active in enumerate([{f"C{i}": 1 for i in range(50)}, {"C1": 1}, {"C2": 1}]):
        state = state.advance(plan, START + dt.timedelta(n), _frame(plan, active))
        write_state(store, state, START + dt.timedelta(n))
    other = CustomerState.empty(plan).advance(plan, START + dt.timedelta(1),
                                              _frame(plan, {"x": 1}))
    write_state(store, other, START + dt.timedelta(1))  # a full state in the middle
    with pytest.raises(ValueError, match="not in the chain"):
        load_state(store, plan, START + dt.timedelta(2))


def test_quiet_days_chain_empty_deltas_and_read_the_base(tmp_path):
    plan = daily_plan(load_feature_repo())
    store = Store(str(tmp_path / "store"))
    state = CustomerState.empty(plan)
    states = []
    for n, active in enumerate([{f"C{i}": i for i in range(20)}, {}, {}, {"C3": 2}]):
        state = state.advance(plan, START + dt.timedelta(n), _frame(plan, active))
        write_state(store, state, START + dt.timedelta(n))
        states.append(state)
    assert [stored_rows(store, START + dt.timedelta(n))[1] for n in range(4)] == [20, 0, 0, 1]
    for n, want in enumerate(states):
        _assert_same(load_state(store, plan, START + dt.timedelta(n), ids=False), want,
                     ids=False)
