"""The one planner of due as-of dates (featurestore/planning.py), shared by weblog and retail:
pure inputs, pure answers, checked against a hand-written rule."""

from __future__ import annotations

import datetime as dt
import itertools

from featurestore.planning import days_between, plan_as_of, requested_range, touched_dates

D = dt.date(2026, 1, 1)


def _d(n: int) -> dt.date:
    return D + dt.timedelta(n)


def test_days_between_and_requested_range():
    assert days_between(_d(0), _d(2)) == [_d(0), _d(1), _d(2)]
    assert days_between(_d(2), _d(1)) == []
    assert requested_range(_d(0), _d(9), None, None) == (_d(0), _d(9))
    assert requested_range(_d(3), _d(9), _d(1), _d(20)) == (_d(3), _d(9))  # clipped
    assert requested_range(_d(0), _d(9), _d(4), _d(6)) == (_d(4), _d(6))


def test_touched_dates_are_those_of_unseen_versions_and_notes():
    entries = {"a": ("v1", ["2026-01-02"]), "b": ("v2", ["2026-01-05", "2026-01-03"]),
               "c": ("v1", ["2026-01-09"])}
    seen = {"a": "v1", "b": "v1"}  # b changed, c is new
    assert touched_dates(entries, seen) == ["2026-01-03", "2026-01-05", "2026-01-09"]
    assert touched_dates(entries, {**seen, "b": "v2", "c": "v1"}, ["2026-01-01"]) == [
        "2026-01-01"]


def test_a_new_store_builds_every_day_of_every_table():
    plan = plan_as_of({"t": "f1", "u": "g1"}, {}, days_between(_d(0), _d(3)),
                      earliest=_d(0), lo=_d(0), hi=_d(3), force=False)
    assert plan.days == days_between(_d(0), _d(3))
    assert all(plan.due[d] == ("t", "u") for d in plan.days)  # table order kept
    assert plan.forget == {}
    assert plan.written("u") == [d.isoformat() for d in days_between(_d(0), _d(3))]


def test_nothing_new_and_current_builds_nothing():
    days = days_between(_d(0), _d(5))
    built = {"t": {d.isoformat(): "f1" for d in days}}
    plan = plan_as_of({"t": "f1"}, built, days, earliest=None, lo=_d(0), hi=_d(5), force=False)
    assert plan.due == {} and plan.forget == {}


def test_a_touched_date_rebuilds_from_it_on_and_a_new_day_is_built():
    days = days_between(_d(0), _d(6))
    built = {"t": {d.isoformat(): "f1" for d in days[:-1]}}  # the last day is new
    plan = plan_as_of({"t": "f1"}, built, days, earliest=_d(3), lo=_d(0), hi=_d(6),
                      force=False)
    assert plan.days == [_d(3), _d(4), _d(5), _d(6)]


def test_outside_the_range_stale_dates_are_forgotten_not_written():
    days = days_between(_d(0), _d(6))
    built = {"t": {d.isoformat(): "f1" for d in days}}
    plan = plan_as_of({"t": "f1"}, built, days, earliest=_d(2), lo=_d(0), hi=_d(4),
                      force=False)
    assert plan.days == [_d(2), _d(3), _d(4)]
    assert plan.forget == {"t": (_d(5).isoformat(), _d(6).isoformat())}


def test_force_rebuilds_the_range_only():
    days = days_between(_d(0), _d(6))
    built = {"t": {d.isoformat(): "f1" for d in days}}
    plan = plan_as_of({"t": "f1"}, built, days, earliest=None, lo=_d(2), hi=_d(3), force=True)
    assert plan.days == [_d(2), _d(3)] and plan.forget == {}


def test_a_redefined_table_is_rebuilt_whole_whatever_the_range():
    days = days_between(_d(0), _d(4))
    built = {"t": {d.isoformat(): "old" for d in days}, "u": {d.isoformat(): "g" for d in days}}
    plan = plan_as_of({"t": "new", "u": "g"}, built, days, earliest=None, lo=_d(1), hi=_d(2),
                      force=False)
    assert plan.written("t") == [d.isoformat() for d in days]
    assert plan.written("u") == []


def test_the_planner_agrees_with_the_rule_written_out():
    """Every combination of record state, touched date, range and force on a week."""
    days = days_between(_d(0), _d(6))
    records = [{}, {d.isoformat(): "f" for d in days},
               {d.isoformat(): "f" for d in days[:4]}, {days[0].isoformat(): "x"}]
    for done, earliest, (lo, hi), force in itertools.product(
            records, [None, _d(0), _d(4)], [(_d(0), _d(6)), (_d(2), _d(4))], [False, True]):
        plan = plan_as_of({"t": "f"}, {"t": done}, days, earliest=earliest, lo=lo, hi=hi,
                          force=force)
        redefined = any(v != "f" for v in done.values())
        want, forget = [], []
        for day in days:
            stale = done.get(day.isoformat()) != "f" or (earliest and day >= earliest) or (
                force and lo <= day <= hi)
            if stale and (lo <= day <= hi or redefined):
                want.append(day)
            elif stale and day.isoformat() in done:
                forget.append(day.isoformat())
        assert plan.days == want, (done, earliest, lo, hi, force)
        assert list(plan.forget.get("t", ())) == forget
