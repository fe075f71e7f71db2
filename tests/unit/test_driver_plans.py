"""The planning steps of the five drivers (plan, execute, commit): pure functions returning
frozen dataclasses, tested without a cluster. Store I/O only through readers passed in or a
plain local tmp dir (the commit records)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest

from featurestore import ConfigError, NotFoundError
from featurestore.features.definitions import load_feature_repo
from featurestore.features.materialize import _read_record, commit_weblog, plan_weblog
from featurestore.layout import RETAIL_RECORD as RETAIL_RECORD_NAME
from featurestore.online import PRODUCT_ORDER, plan_load, plan_refresh
from featurestore.planning import days_between
from featurestore.retrain.jobs import plan_job
from featurestore.sources.retail import commit_retail, plan_retail
from featurestore.storage import Store
from featurestore.training.pointintime import HORIZON_DAYS, plan_training_set

D = dt.date(2026, 1, 1)


def _iso(n: int) -> str:
    return (D + dt.timedelta(n)).isoformat()


def _frozen(obj) -> None:
    field = dataclasses.fields(obj)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, field, None)


# -- retail ------------------------------------------------------------------------------------
def _retail_ledger(md5: str = "m1", dates=(0, 1, 2, 3, 4)) -> dict:
    return {f"online_retail.csv-{md5}": {"md5": md5, "file_id": md5,
                                         "event_dates": [_iso(n) for n in dates]}}


def test_retail_plan_builds_every_day_then_nothing(tmp_path):
    fps = {"customer_retail_features": "fp1"}
    ledger = _retail_ledger()
    plan = plan_retail({}, ledger, fps, chunk_days=2)
    _frozen(plan)
    assert plan.as_of.written("customer_retail_features") == [_iso(n) for n in range(5)]
    assert plan.read_until == D + dt.timedelta(4)
    assert [len(days) for days, _ in plan.tasks] == [2, 2, 1]
    assert all(names == ("customer_retail_features",) for _, names in plan.tasks)
    assert dict(plan.files) == {"online_retail.csv-m1": "m1"}

    store = Store(str(tmp_path))
    record: dict = {}
    commit_retail(store, record, plan, fps)
    again = plan_retail(store.read_json(RETAIL_RECORD_NAME), ledger, fps)
    assert again.as_of.due == {} and again.tasks == () and again.read_until is None


def test_retail_plan_rebuilds_from_the_earliest_date_a_replacement_touched(tmp_path):
    fps = {"customer_retail_features": "fp1"}
    store = Store(str(tmp_path))
    commit_retail(store, {}, plan_retail({}, _retail_ledger(), fps), fps)
    replaced = {"online_retail.csv-m2": {"md5": "m2", "file_id": "m2",
                                         "event_dates": [_iso(3), _iso(4)],
                                         "replaced_event_dates": [_iso(2), _iso(3)],
                                         "replaces": ["online_retail.csv-m1"]}}
    plan = plan_retail(store.read_json(RETAIL_RECORD_NAME), replaced, fps)
    assert plan.as_of.written("customer_retail_features") == [_iso(2), _iso(3), _iso(4)]


def test_retail_plan_without_tables_or_ledger_records_nothing():
    assert plan_retail({}, {}, {"t": "f"}) is None
    assert plan_retail({}, _retail_ledger(), {}) is None


# -- weblog ------------------------------------------------------------------------------------
def _weblog_entries(days: range, stamp: str = "t1") -> dict:
    return {f"{_iso(n)}/hit_data.tsv.gz": {"ingested_at": stamp, "event_dates": [_iso(n)],
                                           "lines": 10, "bad": {}} for n in days}


def test_weblog_plan_first_run_then_incremental_day(tmp_path):
    repo = load_feature_repo()
    store = Store(str(tmp_path))
    entries = _weblog_entries(range(10))
    record = _read_record(store)
    plan = plan_weblog(repo, record, entries, list(entries), {}, {}, start=None, end=None,
                       force=False, state_stored=lambda day: pytest.fail("nothing stored"))
    _frozen(plan)
    tables = list(repo.tables_for("weblog"))
    assert (plan.first, plan.last) == (D, D + dt.timedelta(9))
    assert plan.chain == tuple(days_between(D, D + dt.timedelta(9)))
    assert plan.daily_dirty == tuple(_iso(n) for n in range(10))
    assert all(plan.as_of.written(t) == [_iso(n) for n in range(10)] for t in tables)

    commit_weblog(store, repo, record, plan, list(plan.chain))
    record = _read_record(store)
    assert plan_weblog(repo, record, {}, list(entries), {}, {}, start=None, end=None,
                       force=False, state_stored=lambda day: True).as_of.due == {}

    new = _weblog_entries(range(10, 11))
    keys = list(entries) + list(new)
    asked: list[dt.date] = []
    plan = plan_weblog(repo, record, new, keys, {}, {}, start=None, end=None, force=False,
                       state_stored=lambda day: asked.append(day) or True)
    assert plan.as_of.days == [D + dt.timedelta(10)]
    assert plan.chain == (D + dt.timedelta(10),)  # from the stored state of the day before
    assert plan.daily_dirty == (_iso(10),)
    assert D + dt.timedelta(9) in asked
    # the same, with the stored states gone: the chain starts again at the first day
    plan = plan_weblog(repo, record, new, keys, {}, {}, start=None, end=None, force=False,
                       state_stored=lambda day: False)
    assert plan.chain[0] == D and plan.as_of.days == [D + dt.timedelta(10)]


def test_weblog_plan_replacement_note_rebuilds_from_its_dates(tmp_path):
    repo = load_feature_repo()
    store = Store(str(tmp_path))
    entries = _weblog_entries(range(8))
    record = _read_record(store)
    plan = plan_weblog(repo, record, entries, list(entries), {}, {}, start=None, end=None,
                       force=False, state_stored=lambda day: True)
    commit_weblog(store, repo, record, plan, list(plan.chain))
    record = _read_record(store)
    notes = {f"{_iso(5)}/hit_data.tsv.gz": {"event_dates": [_iso(5)]}}
    plan = plan_weblog(repo, record, {}, list(entries), {}, notes, start=None, end=None,
                       force=False, state_stored=lambda day: True)
    assert plan.as_of.days == [D + dt.timedelta(n) for n in (5, 6, 7)]
    assert _iso(5) in plan.daily_dirty and plan.notes == tuple(notes)
    assert all(d < _iso(5) for d in plan.state_kept)


def test_weblog_plan_of_an_empty_ledger_is_none():
    repo = load_feature_repo()
    record = {"files": {}, "daily": {}, "as_of": {}, "state": {}, "pairs": {}}
    assert plan_weblog(repo, record, {}, [], {}, {}, start=None, end=None, force=False,
                       state_stored=lambda day: False) is None


# -- training sets -----------------------------------------------------------------------------
def test_training_set_plan_date_range_and_label_window():
    available = [D + dt.timedelta(n) for n in range(40)]
    latest = D + dt.timedelta(45)
    plan = plan_training_set(latest, available, lambda t: True)
    _frozen(plan)
    complete = [d for d in available if d + dt.timedelta(HORIZON_DAYS) <= latest]
    assert list(plan.groups) == complete and all(v is None for v in plan.groups.values())
    assert list(plan.incomplete_days) == [d for d in available if d not in complete]
    # each purchasers' date once, every label window covered
    assert len(plan.event_dates) == len(set(plan.event_dates))
    assert set(plan.event_dates) == {d + dt.timedelta(k) for d in complete
                                     for k in range(1, HORIZON_DAYS + 1)}
    narrow = plan_training_set(latest, available, lambda t: True, start=D + dt.timedelta(2),
                               end=D + dt.timedelta(3))
    assert list(narrow.groups) == [D + dt.timedelta(2), D + dt.timedelta(3)]


def test_training_set_plan_entity_mode_counts_incomplete_rows():
    available = [D + dt.timedelta(n) for n in range(40)]
    entities = pd.DataFrame({"customer_id": ["a", "b", "c", "d"],
                             "as_of": [_iso(1), _iso(1), _iso(2), _iso(39)]})
    plan = plan_training_set(D + dt.timedelta(40), available, lambda t: True,
                             entities=entities)
    assert plan.excluded == 1 and plan.incomplete_days == ()
    assert {d: list(v) for d, v in plan.groups.items()} == {
        D + dt.timedelta(1): ["a", "b"], D + dt.timedelta(2): ["c"]}


def test_training_set_plan_errors():
    available = [D]
    with pytest.raises(ConfigError, match="sample"):
        plan_training_set(D, available, lambda t: True, sample="some")
    with pytest.raises(NotFoundError, match="no events"):
        plan_training_set(None, available, lambda t: True)
    with pytest.raises(NotFoundError, match="no feature table extra"):
        plan_training_set(D + dt.timedelta(60), available, lambda t: False, tables=["extra"])
    with pytest.raises(NotFoundError, match="no customer_features partitions"):
        plan_training_set(D + dt.timedelta(60), [], lambda t: True)


# -- online store ------------------------------------------------------------------------------
def test_load_plan_keeps_published_files_and_the_product_order():
    plan = plan_load("customer_product_features", _iso(0), "/s/t/as_of=x",
                     ["part-0.parquet", ".part-1.parquet", "_SUCCESS", "part-2.parquet"])
    _frozen(plan)
    assert plan.files == ("/s/t/as_of=x/part-0.parquet", "/s/t/as_of=x/part-2.parquet")
    assert plan.keys == ("customer_id", "product_id") and plan.order == PRODUCT_ORDER
    plain = plan_load("customer_features", _iso(0), "/s", ["part-0.parquet"])
    assert plain.keys == ("customer_id",) and plain.order == ()
    other = plan_load("visits", _iso(0), "/s", ["part-0.parquet"], ["customer_id", "page"])
    assert other.order == (("page", True),)
    with pytest.raises(NotFoundError, match="no partition"):
        plan_load("customer_features", _iso(0), "/s", [".tmp.parquet"])


def test_refresh_plan_reloads_newer_dates_and_rewrites_only():
    served = {"a": (_iso(1), 3), "b": (_iso(1), 1)}
    latest = {"a": _iso(1), "b": _iso(2), "c": _iso(0), "d": None}
    loads = plan_refresh(served, latest, {"a": {_iso(1): 3}, "b": {_iso(2): 7}})
    assert loads == [("b", _iso(2), 7), ("c", _iso(0), 0)]
    assert plan_refresh(served, latest, {"a": {_iso(1): 4}, "b": {_iso(2): 7}})[0] == (
        "a", _iso(1), 4)  # the same date rewritten: reloaded


# -- retrain jobs ------------------------------------------------------------------------------
def test_job_plan():
    record = {"job_id": "j1", "model": "purchase-xgboost", "backend": "local", "tune": False,
              "as_of": _iso(3), "runner": "other"}
    plan = plan_job(record, "me", "/s/_exports")
    _frozen(plan)
    assert plan.adopt and plan.export_url is None and plan.as_of == D + dt.timedelta(3)
    assert plan.export_out == "/s/_exports/purchase-xgboost/j1"
    assert plan.export == "export_xgboost"
    mine = plan_job({**record, "runner": "me", "as_of": None, "export_url": "s3://b/x"},
                    "me", "/s/_exports")
    assert not mine.adopt and mine.export_url == "s3://b/x" and mine.as_of is None
    with pytest.raises(NotFoundError, match="unknown model"):
        plan_job({**record, "model": "nope"}, "me", "/s")
