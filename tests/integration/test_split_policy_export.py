"""The customer-grouped holdout in a real XGBoost export (issue #17 item 2): no customer in
both train and validation, the same final test dates as the time policy, the policy recorded.

The store is written by the plain-pandas helpers of ``tests/_training_data.py``; the expected
rows of each split are selected here with pandas and an independent SHA-1 of the ids.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math

import numpy as np
import pandas as pd
import pytest

from featurestore.storage import Store
from featurestore.training import build_training_set, export_xgboost
from featurestore.training.xgboost_export import feature_columns


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from tests._training_data import make_events, write_events, write_features

    store = Store(str(tmp_path_factory.mktemp("split") / "store"))
    events = make_events(days=95, customers=60, hits_per_day=30)
    write_events(store, events)
    write_features(store, events)
    return store


def _csv(out, name: str) -> pd.DataFrame:
    return pd.read_csv(out / name / f"{name}.csv", header=None)


def _rows(frame: pd.DataFrame, feats: list[str]) -> np.ndarray:
    """Rows as sortable tuples (label first, NaN as -1), so sets of rows compare."""
    cols = frame[["purchased_next_30d", *feats]].astype("float64").fillna(-1.0).to_numpy()
    return cols[np.lexsort(cols.T[::-1])]


def test_grouped_holdout_export(store, tmp_path):
    grouped = export_xgboost(store, str(tmp_path / "g"), split_policy="grouped").metadata
    timed = export_xgboost(store, str(tmp_path / "t"), split_policy="time").metadata
    policy = grouped["split_policy"]
    assert policy["policy"] == "grouped" and timed["split_policy"]["policy"] == "time"
    assert policy["requested"] == "grouped"

    # the same final time-ordered test dates and rows as the time policy
    assert grouped["as_of"]["test"] == timed["as_of"]["test"]
    assert ((tmp_path / "g/test/test.csv").read_bytes()
            == (tmp_path / "t/test/test.csv").read_bytes())

    # independent selection: the period before purge + test, the smallest-SHA-1 customers
    frame = build_training_set(store).frame
    feats, _ = feature_columns(frame)
    dates = sorted(set(frame["as_of"]))
    test_start = dt.date.fromisoformat(grouped["as_of"]["test"][0])
    period = [d for d in dates if d < test_start][:len(dates) - len(
        [d for d in dates if d >= test_start]) - grouped["gap_days"]]
    assert len(period) >= math.ceil(0.6 * len(dates))  # the 60% floor
    assert grouped["as_of"]["train"] == [period[0].isoformat(), period[-1].isoformat()]
    in_period = frame[frame["as_of"].isin(period)]
    ids = sorted(in_period["customer_id"].astype(str).unique())
    k = math.ceil(policy["holdout_fraction"] * len(ids))
    held = set(sorted(ids, key=lambda c: hashlib.sha1(c.encode()).digest()[:8])[:k])
    train_rows = in_period[~in_period["customer_id"].astype(str).isin(held)]
    val_rows = in_period[in_period["customer_id"].astype(str).isin(held)]
    assert set(train_rows["customer_id"]).isdisjoint(set(val_rows["customer_id"]))  # the bound
    assert policy["validation_customers"] == len(held) == k
    assert policy["train_customers"] == len(ids) - k
    for name, want in (("train", train_rows), ("validation", val_rows)):
        got = _csv(tmp_path / "g", name)
        assert len(got) == len(want) == grouped["rows"][name]
        np.testing.assert_array_equal(
            _rows(got.rename(columns={0: "purchased_next_30d", **{
                i + 1: f for i, f in enumerate(feats)}}), feats), _rows(want, feats))
    pos = int(train_rows["purchased_next_30d"].sum())
    assert grouped["scale_pos_weight"] == pytest.approx((len(train_rows) - pos) / pos)


def test_unknown_policy_is_a_config_error(store, tmp_path):
    from featurestore._exceptions import ConfigError

    with pytest.raises(ConfigError, match="split policy 'random'"):
        export_xgboost(store, str(tmp_path / "x"), split_policy="random")


def test_default_is_auto_grouped_for_a_short_history_and_the_cli_flag(store, tmp_path, client,
                                                                      capsys):
    """The default (measured best on short histories, docs/retraining.md) and
    ``featurestore training-set --split-policy``."""
    import json

    from featurestore.cli import main

    meta = export_xgboost(store, str(tmp_path / "d")).metadata
    assert meta["split_policy"]["requested"] == "auto"
    assert meta["split_policy"]["policy"] == "grouped"  # the time purge was capped here
    long_enough = export_xgboost(store, str(tmp_path / "n"), gap_days=0).metadata
    assert long_enough["split_policy"]["policy"] == "time"  # nothing capped: time order

    capsys.readouterr()
    assert main(["training-set", "--store", store.url, "--out", str(tmp_path / "cli"),
                 "--scheduler", client.scheduler.address, "--split-policy", "time", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metadata"]["split_policy"]["policy"] == "time"
