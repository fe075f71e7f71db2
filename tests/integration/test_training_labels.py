"""Training labels from the ingest's partial daily aggregates, from the events, and the
vectorized as-of lookup: each checked against an independent plain-pandas computation."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from featurestore.features.daily import daily_plan
from featurestore.features.definitions import load_feature_repo
from featurestore.features.partials import partials_fingerprint, write_partials
from featurestore.storage import Store
from featurestore.training import build_training_set
from featurestore.training.labels import (
    build_index,
    partials_token,
    purchasers_from_events,
    purchasers_from_partials,
)
from featurestore.training.pointintime import LABEL
from tests._training_data import expected_training_set, make_events, write_events, write_features

FEATURE_DTYPES = {"customer_id": "string", "days_since_last_purchase": "Int64"}


def _write_partials(store: Store, events: pd.DataFrame, file_id: str = "0") -> None:
    """Each day's partials as the ingest writes them (its writer, the built-in repository)."""
    plan = daily_plan(load_feature_repo())
    for day, hits in events.groupby("event_date"):
        write_partials(store, plan, day, file_id, hits.drop(columns="event_date")
                       .reset_index(drop=True))


@pytest.fixture(scope="module")
def with_partials(tmp_path_factory):
    """The training tests' store, plus partials for every events part (read-only)."""
    store = Store(str(tmp_path_factory.mktemp("labels") / "store"))
    events = make_events()
    write_events(store, events)
    _write_partials(store, events)
    days = write_features(store, events)
    expected, excluded = expected_training_set(store, events, days)
    return store, events, days, expected.astype(FEATURE_DTYPES), excluded


def _plain_buyers(events: pd.DataFrame, day: dt.date) -> set[str]:
    e = events[(events["event_date"] == day) & events["customer_id"].notna()]
    lists = e["post_event_list"].fillna("")
    return set(e.loc[lists.map(lambda s: "1" in s.split(",")), "customer_id"])


def test_partials_give_the_events_purchasers(with_partials):
    store, events, days, _, _ = with_partials
    token = partials_token(load_feature_repo())
    assert token == partials_fingerprint(daily_plan(load_feature_repo()))
    nonempty = 0
    for day in days:
        expected = _plain_buyers(events, day)
        from_partials = purchasers_from_partials(store, day, token)
        assert from_partials is not None
        assert set(from_partials.to_pylist()) == expected
        assert set(purchasers_from_events(store, day).to_pylist()) == expected
        nonempty += bool(expected)
    assert nonempty > 20


def test_training_set_from_partials_matches_plain_pandas(with_partials):
    store, events, days, expected, excluded = with_partials
    result = build_training_set(store)
    assert result.label_event_dates == {"partials": len(set(
        day + dt.timedelta(days=k) for day in result.frame["as_of"].unique()
        for k in range(1, 31)) & set(days))}
    assert 0 < expected[LABEL].mean() < 0.5
    pd.testing.assert_frame_equal(result.frame, expected)
    assert result.positives == int(expected[LABEL].sum())
    assert result.excluded_incomplete_label == excluded


def test_uncovered_dates_fall_back_to_events(with_partials, tmp_path):
    """A date where one events part has no partial (a file ingested before partials existed,
    or another repository's) reads that date's events; the set is the same."""
    store, events, days, expected, _ = with_partials
    shutil.copytree(store.url, tmp_path / "store")
    copy = Store(str(tmp_path / "store"))
    late, other = days[10], days[12]
    extra = make_events(days=1, customers=300, hits_per_day=400, start=late, seed=9)
    write_events(copy, extra, part="part-late")      # no partial for this file
    token = partials_token(load_feature_repo())
    copy.remove("_partials/customer", f"event_date={other.isoformat()}",
                f"part-0-{token}.arrow")             # this date's only partial gone
    assert purchasers_from_partials(copy, late, token) is None
    assert purchasers_from_partials(copy, other, token) is None
    result = build_training_set(copy)
    assert result.label_event_dates["events"] == 2
    both = pd.concat([events, extra], ignore_index=True)
    want, _ = expected_training_set(copy, both, days)
    pd.testing.assert_frame_equal(result.frame, want.astype(FEATURE_DTYPES))
    # the extra hits change some labels: the fallback really read them
    assert not result.frame[LABEL].equals(expected[LABEL])


def test_a_repository_without_purchase_counts_reads_events(with_partials):
    store, _, _, expected, _ = with_partials
    repo = load_feature_repo()
    weblog = {n: t for n, t in repo.tables_for("weblog").items()}
    assert weblog  # the built-in repository counts purchases by hit; a stripped one does not
    text = repo.model_dump()
    for table in text["tables"].values():
        table["features"] = {k: f for k, f in table["features"].items()
                             if (f.get("filter") or {}).get("event_id") != "1"}
    stripped = type(repo).model_validate(text)
    assert partials_token(stripped) is None
    result = build_training_set(store, repo=stripped)
    assert set(result.label_event_dates) == {"events"}
    pd.testing.assert_frame_equal(result.frame, expected)


def test_purchase_index_matches_a_plain_window_check():
    """Boundaries: a purchase on as_of itself or on as_of + 31 does not count, on as_of + 1
    and as_of + 30 it does; customers absent from the index get 0."""
    rng = np.random.default_rng(3)
    start = dt.date(2026, 3, 1)
    per_day = {start + dt.timedelta(days=k): pa.array(sorted({
        f"C{c}" for c in rng.integers(0, 200, rng.integers(0, 15))}), pa.string())
        for k in range(90)}
    per_day[start + dt.timedelta(days=91)] = pa.array([], pa.string())
    index = build_index(per_day)
    pairs = {(c, d) for d, ids in per_day.items() for c in ids.to_pylist()}
    ids = pa.array([f"C{c}" for c in range(210)] + [None], pa.string())
    for k in (-1, 0, 5, 30, 59, 60, 89):
        day = start + dt.timedelta(days=k)
        got = index.purchased(ids, day, 30)
        want = [int(c is not None and any((c, day + dt.timedelta(days=j)) in pairs
                                          for j in range(1, 31))) for c in ids.to_pylist()]
        assert got.tolist() == want, day
        assert got.dtype == np.int64
    empty = build_index({start: pa.array([], pa.string())})
    assert empty.purchased(ids, start, 30).tolist() == [0] * len(ids)


def test_on_cluster_from_partials_writes_the_same_set(with_partials, tmp_path, client):
    """A real 2-worker LocalCluster (the session's; runs of dates per task) writes the same
    rows."""
    store, _, days, expected, _ = with_partials
    result = build_training_set(store, client=client, output=str(tmp_path / "ts"))
    assert set(result.label_event_dates) == {"partials"}
    got = pd.read_parquet(tmp_path / "ts").astype(FEATURE_DTYPES)
    got["as_of"] = [v if isinstance(v, dt.date) else pd.Timestamp(v).date() for v in got["as_of"]]
    keys = ["as_of", "customer_id"]
    pd.testing.assert_frame_equal(got.sort_values(keys).reset_index(drop=True),
                                  expected.sort_values(keys).reset_index(drop=True),
                                  check_dtype=False)
    assert result.rows == len(expected) and result.positives == int(expected[LABEL].sum())
