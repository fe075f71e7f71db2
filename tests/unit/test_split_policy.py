"""The split policies' bounds (issue #17 item 2), on the pure planning functions."""

from __future__ import annotations

import datetime as dt
import hashlib
import math

import pytest

from featurestore._exceptions import ConfigError, TrainingError
from featurestore.training.split_policy import (grouped_dates, holdout_customers,
                                                holdout_fraction, resolve_policy)
from featurestore.training.xgboost_export import split_dates

SPLIT = (0.7, 0.15, 0.15)


def _days(n: int) -> list[dt.date]:
    return [dt.date(2026, 1, 1) + dt.timedelta(days=k) for k in range(n)]


@pytest.mark.parametrize("n", [3, 5, 15, 60, 100, 365])
def test_grouped_keeps_60_percent_and_the_time_policys_test_dates(n):
    days = _days(n)
    parts, _ = split_dates(days, SPLIT, 30)
    period, test, gap = grouped_dates(days, len(parts["test"]), 30, 0.6)
    assert test == parts["test"]  # the same final dates: the policies compare on one test set
    assert len(period) >= math.ceil(0.6 * n) or gap == 0
    assert 0 <= gap <= 30 and period
    assert max(period) + dt.timedelta(days=gap) < min(test)  # exactly `gap` purged dates
    assert len(period) + gap + len(test) == n
    if 0 < gap < 30:  # capped by the floor: one more purged date would break it
        assert n - len(test) - (gap + 1) < math.ceil(0.6 * n)


def test_the_issues_60_dates_train_on_more_dates_and_purge_more_than_time():
    days = _days(60)
    parts, time_gap = split_dates(days, SPLIT, 30)
    period, _, gap = grouped_dates(days, len(parts["test"]), 30, 0.6)
    # one purge instead of two: more dates for training and a longer purge before test
    assert len(period) >= len(parts["train"]) and gap >= time_gap


@pytest.mark.parametrize("n", [2, 3, 10, 600, 4000])
def test_holdout_is_a_stable_share_of_customers_never_all(n):
    ids = [f"C{i:06d}" for i in range(n)]
    fraction = holdout_fraction(SPLIT)
    held = holdout_customers(ids * 3, fraction)  # repeated rows: one decision per customer
    assert held <= set(ids) and 1 <= len(held) <= n - 1
    assert len(held) == min(n - 1, max(1, math.ceil(fraction * n)))
    # independent: the ids with the smallest SHA-1 prefixes
    by_hash = sorted(ids, key=lambda c: hashlib.sha1(c.encode()).digest()[:8])
    assert held == set(by_hash[:len(held)])
    assert holdout_customers(list(reversed(ids)), fraction) == held  # order does not matter


def test_holdout_needs_two_customers():
    with pytest.raises(TrainingError, match="at least 2"):
        holdout_customers(["C1", "C1"], 0.2)


def test_resolve_policy():
    assert holdout_fraction(SPLIT) == pytest.approx(0.15 / 0.85)
    assert resolve_policy("auto", True) == "grouped"
    assert resolve_policy("auto", False) == "time"
    assert resolve_policy("time", True) == "time" and resolve_policy("grouped", False) == "grouped"
    with pytest.raises(ConfigError, match="time, grouped, auto"):
        resolve_policy("random", False)
