"""How many more days of data a young store needs before the purchase model can train (#31)."""

from __future__ import annotations

import datetime as dt

from featurestore.retrain.history import days_short

D = dt.date(2026, 3, 1)


def _days(n: int) -> list[dt.date]:
    return [D + dt.timedelta(days=i) for i in range(n)]


def test_three_days_need_thirty_more():
    # complete dates are D with D + 30 <= latest: 03-01..03-03 need data through 04-02
    assert days_short(_days(3), D + dt.timedelta(days=2), 30) == 30


def test_enough_history_needs_nothing():
    dates = _days(33)
    assert days_short(dates, dates[-1], 30) == 0
    assert days_short(_days(32), D + dt.timedelta(days=31), 30) == 1


def test_fewer_as_of_dates_than_a_split_counts_the_days_still_to_come():
    # one as-of date: two more daily as-ofs, then their 30-day windows
    assert days_short(_days(1), D, 30) == 32
    assert days_short([], D, 30) == 33


def test_an_empty_store_needs_the_whole_window():
    assert days_short([], None, 30) == 33


def test_gaps_in_the_as_of_dates_count_from_the_third_date():
    dates = [D, D + dt.timedelta(days=10), D + dt.timedelta(days=20)]
    assert days_short(dates, D + dt.timedelta(days=40), 30) == 10


def test_a_recommender_needs_its_holdout_windows_of_transactions(tmp_path):
    """A time holdout needs more than its own days (issue #29): test + validation + as long
    again to fit on, counted from the store's transaction partitions."""
    import pandas as pd

    from featurestore.retrain.history import history_shortfall
    from featurestore.retrain.models import MODELS
    from featurestore.storage import Store

    store = Store(str(tmp_path / "store"))
    als = MODELS["retail-als"]
    assert "no retail transactions yet" in history_shortfall(store, als).reason
    for day in (D, D + dt.timedelta(days=59)):  # spans 60 days
        store.write_parquet(pd.DataFrame({"x": [1]}), "transactions",
                            f"event_date={day.isoformat()}", "part-0.parquet")
    short = history_shortfall(store, als)
    assert short.need_days == 30 and short.reason.startswith("need 30 more days of history")
    assert history_shortfall(store, MODELS["retail-fm"]).need_days == 30
    assert history_shortfall(store, als, holdout_days=10, validation_days=10) is None
