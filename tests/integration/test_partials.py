"""Issue #18 item 1: ingest tasks write each file's partial daily aggregates; materialization
sums them instead of re-reading the day's events, and falls back to the events for files
ingested before partials existed or definitions the partials were not built for."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from featurestore import Store
from featurestore.events_compaction import live_events
from featurestore.features.daily import compute_daily, daily_plan
from featurestore.features.definitions import DEFAULT_REPO, load_feature_repo
from featurestore.features.partials import combine_partials, partials_fingerprint
from featurestore.materialization import materialize
from featurestore.sources.weblog.ingest import ingest_weblog
from tests.reliability.test_delivery import (
    DAY1,
    _corrected_version,
    _first_version,
    _ingest,
    _other_files,
    _write_drop,
    _write_manifest,
)

TABLES = ("customer_features", "customer_product_features")


def _dates(store: Store) -> list[dt.date]:
    return [dt.date.fromisoformat(d) for d in store.partitions("events", "event_date")]


def _table(store: Store, name: str) -> pd.DataFrame:
    df = pd.read_parquet(store.uri(name))
    df["as_of"] = df["as_of"].astype(str)
    keys = [c for c in ("as_of", "customer_id", "product_id") if c in df.columns]
    return df.sort_values(keys).reset_index(drop=True)


def _assert_frames_close(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Same keys, same ints; float sums within rounding (added per file, not per hit)."""
    assert list(ours.columns) == list(theirs.columns)
    pd.testing.assert_frame_equal(ours.reset_index(drop=True), theirs.reset_index(drop=True),
                                  check_exact=False, rtol=1e-12, atol=1e-9)


def test_partials_equal_a_recomputation_from_events(drops, tmp_path, client):
    root, _ = drops
    store = Store(str(tmp_path / "store"))
    report = ingest_weblog(str(root), store, client=client)
    plan = daily_plan(load_feature_repo())
    dates = _dates(store)
    late_parts = 0
    for day in dates:
        # the raw files behind the date's events (a merged file stands for its inputs)
        ids = [f for fids in live_events(store, day).file_ids.values() for f in fids]
        late_parts += sum(not fid.startswith(day.isoformat()) for fid in ids)  # later drops
        for kind in ("customer", "customer_product"):  # one partial per raw file of the date
            found = list(Path(store.path("_partials", kind, f"event_date={day}")).glob("*.arrow"))
            assert len(found) == len(ids) > 0
        combined = combine_partials(Store(store.root), plan, day)
        assert combined is not None
        expected = compute_daily(store, plan, day)
        for ours, theirs in zip(combined, expected, strict=True):
            _assert_frames_close(ours, theirs)
        # independently of our aggregation code: hits per customer straight from the events
        events = pd.read_parquet(store.path("events", f"event_date={day}"))
        counts = events.dropna(subset=["customer_id"]).groupby("customer_id").size()
        cust = combined[0].set_index("customer_id")["hits_all"]
        np.testing.assert_array_equal(cust.index.astype(str), counts.index.astype(str))
        np.testing.assert_array_equal(cust.to_numpy(), counts.to_numpy())
    assert late_parts  # the drops hold late hits: a date summed from files of several drops
    # the ledger record names what its partials were built for
    assert all(r.get("partials") == partials_fingerprint(plan) for r in
               _ledger_records(store)) and report.files_ingested == len(_ledger_records(store))
    # other definitions: the partials do not answer (materialization reads events)
    repo = yaml.safe_load(DEFAULT_REPO.read_text())
    features = repo["tables"]["customer_features"]["features"]
    features["cart_adds_30d"] = {  # a longer window of a filter already summed: covered
        "aggregation": "count", "filter": {"event_id": "12"}, "window_days": 30}
    longer = tmp_path / "longer.yaml"
    longer.write_text(yaml.safe_dump(repo))
    assert combine_partials(store, daily_plan(load_feature_repo(str(longer))), dates[0])
    features["sale_page_views_7d"] = {  # a new filter: not covered
        "aggregation": "count", "window_days": 7,
        "filter": {"page_event": "0", "url_path_prefix": "/sale/"}}
    other = tmp_path / "repo.yaml"
    other.write_text(yaml.safe_dump(repo))
    assert combine_partials(store, daily_plan(load_feature_repo(str(other))), dates[0]) is None


def _ledger_records(store: Store) -> list[dict]:
    from featurestore.sources.weblog.ingest import ledger_entries, ledger_keys

    keys = ledger_keys(store)
    return list(ledger_entries(store, keys).values())


def test_materialization_reads_partials_not_events_and_old_stores_still_work(
        drops, tmp_path, client):
    root, _ = drops
    new = Store(str(tmp_path / "new"))
    ingest_weblog(str(root), new, client=client)
    old = tmp_path / "old"  # a store ingested before partials existed: events only
    shutil.copytree(new.root, old)
    shutil.rmtree(old / "_partials")
    # every events part of the new store made unreadable: materializing it must not read them
    for part in Path(new.path("events")).rglob("part-*.parquet"):
        part.write_bytes(b"not parquet")
    materialize(new, client=client)
    materialize(Store(str(old)), client=client)
    for name in TABLES:
        _assert_frames_close(_table(new, name), _table(Store(str(old)), name))
        assert len(_table(new, name))


def test_replaced_file_replaces_its_partials(tmp_path, capsys, client):
    root, store = tmp_path / "raw", tmp_path / "store"
    first = _first_version()
    others = _other_files()
    day1 = _write_drop(root, DAY1, {"hit_data-0000.tsv.gz": first, **others["day1"]},
                       manifest={"hit_data-0000.tsv.gz": first, **others["day1"]})
    _write_drop(root, DAY1 + dt.timedelta(1), others["day2"], manifest=others["day2"])
    assert _ingest(capsys, root, store, client)[0] == 0
    late = store / "_partials" / "customer" / "event_date=2026-02-28"
    assert len(list(late.glob("*.arrow"))) == 1  # the old version's late hit

    corrected = _corrected_version(len(first))
    (day1 / "hit_data-0000.tsv.gz").write_bytes(corrected)
    _write_manifest(day1, {"hit_data-0000.tsv.gz": corrected, **others["day1"]})
    code, report, _ = _ingest(capsys, root, store, client, "--accept-changed")
    assert code == 0 and report["files_replaced"] == 1, report
    assert not list(late.glob("*.arrow"))  # only the old version touched that date
    plan = daily_plan(load_feature_repo())
    cust, _ = combine_partials(Store(str(store)), plan, DAY1)
    assert set(cust["customer_id"]) == {"C001", "C002", "C004", "C005"}  # not C003 (old)
    clean = tmp_path / "clean"
    assert _ingest(capsys, root, clean, client)[0] == 0
    for name in TABLES:
        ours, theirs = _table(Store(str(store)), name), _table(Store(str(clean)), name)
        _assert_frames_close(ours[ours["as_of"] >= DAY1.isoformat()], theirs)
