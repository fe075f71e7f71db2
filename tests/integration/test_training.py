"""Point-in-time training sets and the XGBoost export, checked against plain pandas."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from featurestore.storage import Store
from featurestore.training import build_training_set, export_xgboost
from featurestore.training.pointintime import LABEL
from featurestore.training.xgboost_export import split_dates
from tests._training_data import expected_training_set, make_events, write_events, write_features
from tests.serving_helpers import serve_subprocess

FEATURE_DTYPES = {"customer_id": "string", "days_since_last_purchase": "Int64"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """45 days of events and SPEC-layout customer_features (read-only; copy to mutate)."""
    root = tmp_path_factory.mktemp("training") / "store"
    store = Store(str(root))
    events = make_events()
    write_events(store, events)
    days = write_features(store, events)
    expected, excluded = expected_training_set(store, events, days)
    return store, events, days, expected.astype(FEATURE_DTYPES), excluded


@pytest.fixture()
def store_copy(generated, tmp_path):
    store, events, days, expected, excluded = generated
    shutil.copytree(store.url, tmp_path / "store")
    return Store(str(tmp_path / "store")), events, days


def test_matches_plain_pandas(generated):
    store, events, days, expected, excluded = generated
    result = build_training_set(store)
    assert 0 < expected[LABEL].mean() < 0.5          # the data has both classes
    pd.testing.assert_frame_equal(result.frame, expected)
    assert result.rows == len(expected)
    assert result.positives == int(expected[LABEL].sum())
    assert result.excluded_incomplete_label == excluded > 0
    assert list(result.frame.columns[:2]) == ["customer_id", "as_of"]
    assert result.frame.columns[-1] == LABEL and result.frame[LABEL].dtype == "int64"


def test_incomplete_windows_excluded_and_counted(generated):
    store, events, days, expected, excluded = generated
    latest = max(days)
    result = build_training_set(store, start=latest - dt.timedelta(days=33))
    complete = [d for d in days if latest - dt.timedelta(days=33) <= d
                and d + dt.timedelta(days=30) <= latest]
    assert sorted(set(result.frame["as_of"])) == complete
    incomplete_rows = sum(len(pd.read_parquet(store.uri("customer_features", f"as_of={d}")))
                          for d in days if d >= latest - dt.timedelta(days=33)
                          and d + dt.timedelta(days=30) > latest)
    assert result.excluded_incomplete_label == incomplete_rows


def test_ledger_drop_date_extends_complete_windows(store_copy):
    """A drop ingested through a later date (no events that day) completes more windows."""
    store, events, days = store_copy
    before = build_training_set(store)
    later = max(days) + dt.timedelta(days=2)
    store.write_json({"event_dates": []}, "_ledger/weblog", later.isoformat(), "f.json")
    after = build_training_set(store)
    assert len(after.as_of_dates) == len(before.as_of_dates) + 2
    assert after.excluded_incomplete_label < before.excluded_incomplete_label


def test_no_leakage(store_copy):
    """A later feature partition and a purchase after D+30 never reach the row of D;
    a purchase on D itself is not a label. The same changes DO show up where they belong."""
    store, events, days = store_copy
    d = days[5]
    base = build_training_set(store, start=d, end=d).frame
    negatives = base.loc[base[LABEL] == 0, "customer_id"].tolist()
    assert len(negatives) >= 2
    late_buyer, same_day_buyer = negatives[0], negatives[1]

    # 1. change a feature in the NEXT as-of partition
    later = d + dt.timedelta(days=1)
    path = ("customer_features", f"as_of={later.isoformat()}", "part-0.parquet")
    feats = pd.read_parquet(store.uri(*path)).astype(FEATURE_DTYPES)
    feats.loc[feats["customer_id"] == late_buyer, "page_views_30d"] = 999_999
    store.write_parquet(feats, *path)
    # 2. purchases on D+31 and on D itself
    extra = []
    for cust, day in ((late_buyer, d + dt.timedelta(days=31)), (same_day_buyer, d)):
        extra.append(pd.DataFrame({
            "hit_time_gmt": [int(pd.Timestamp(day, tz="UTC").timestamp()) + 60],
            "customer_id": pd.array([cust], dtype="string"),
            "page_url": pd.array(["https://shop.example/checkout"], dtype="string"),
            "post_page_event": pd.array(["0"], dtype="string"),
            "post_event_list": pd.array(["1"], dtype="string"),
            "post_product_list": pd.array(["cat;P1;1;10.0"], dtype="string"),
            "event_date": day}))
    write_events(store, pd.concat(extra, ignore_index=True), part="part-extra")

    after = build_training_set(store, start=d, end=d).frame
    pd.testing.assert_frame_equal(after, base)
    assert (after["page_views_30d"] != 999_999).all()

    # the changes are real: they show up for the dates they belong to
    nxt = build_training_set(store, start=later, end=later).frame.set_index("customer_id")
    assert nxt.loc[late_buyer, "page_views_30d"] == 999_999
    assert nxt.loc[late_buyer, LABEL] == 1                    # D+31 is inside later+1..later+30
    prev = d - dt.timedelta(days=1)
    prv = build_training_set(store, start=prev, end=prev).frame.set_index("customer_id")
    assert prv.loc[same_day_buyer, LABEL] == 1                # D is inside prev+1..prev+30


def test_entity_frame_mode(generated):
    store, events, days, expected, excluded = generated
    picked = expected.sample(25, random_state=1)[["customer_id", "as_of"]]
    late = pd.DataFrame({"customer_id": ["C1"], "as_of": [max(days)]})       # window open
    unknown = pd.DataFrame({"customer_id": ["NOBODY"], "as_of": [days[3]]})  # no features
    entities = pd.concat([picked, late, unknown], ignore_index=True)
    entities["as_of"] = entities["as_of"].astype(str)                       # strings accepted
    result = build_training_set(store, entities=entities)
    assert result.excluded_incomplete_label == 1
    assert result.missing_features == 1
    assert result.rows == 25
    key = ["customer_id", "as_of"]
    want = expected.merge(picked, on=key).sort_values(key).reset_index(drop=True)
    got = result.frame.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    # start/end restrict the entity dates
    one = picked["as_of"].iloc[0]
    only = build_training_set(store, entities=entities, start=one, end=one)
    assert set(only.frame["as_of"]) == {one}
    assert only.rows == int((picked["as_of"] == one).sum())


def test_sampling_is_seeded_subset(generated):
    store, events, days, expected, excluded = generated
    a = build_training_set(store, sample="fraction", sample_fraction=0.5, seed=3).frame
    b = build_training_set(store, sample="fraction", sample_fraction=0.5, seed=3).frame
    c = build_training_set(store, sample="fraction", sample_fraction=0.5, seed=4).frame
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    per_date = expected.groupby("as_of").size()
    assert a.groupby("as_of").size().to_dict() == {
        d: int(round(n * 0.5)) for d, n in per_date.items()}
    merged = a.merge(expected, on=list(expected.columns), how="left", indicator=True)
    assert (merged["_merge"] == "both").all()


def test_on_cluster_writes_parquet(generated, client, tmp_path):
    store, events, days, expected, excluded = generated
    out = tmp_path / "ts"
    result = build_training_set(store, start=days[0], end=days[9], client=client,
                                output=str(out))
    assert result.output == str(out)
    assert sorted(p.name for p in out.glob("part-*.parquet")) == [
        f"part-{d.isoformat()}.parquet" for d in days[:10]]
    got = result.frame.compute().astype(FEATURE_DTYPES)
    got["as_of"] = [v if isinstance(v, dt.date) else pd.Timestamp(v).date() for v in got["as_of"]]
    want = expected[expected["as_of"] <= days[9]].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        got.sort_values(["as_of", "customer_id"]).reset_index(drop=True), want,
        check_dtype=False)
    assert pd.read_json(io.StringIO((out / "_training_set.json").read_text()), typ="series")[
        "rows"] == len(want)


def test_split_dates_no_overlap_and_gap():
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=k) for k in range(100)]
    # the purge rule alone (training floor off); the floor: tests/integration/test_model_quality.py
    parts, gap = split_dates(days, (0.7, 0.15, 0.15), 30, min_train_fraction=0.0)
    assert gap == 30
    assert max(parts["train"]) + dt.timedelta(days=30) < min(parts["validation"])
    assert max(parts["validation"]) + dt.timedelta(days=30) < min(parts["test"])
    short, gap2 = split_dates(days[:15], (0.7, 0.15, 0.15), 30, min_train_fraction=0.0)
    assert gap2 == 6 and all(short[k] for k in short)
    assert max(short["train"]) + dt.timedelta(days=6) < min(short["validation"])
    assert max(short["validation"]) + dt.timedelta(days=6) < min(short["test"])
    no_gap, gap3 = split_dates(days[:20], (0.7, 0.15, 0.15), 0)
    assert gap3 == 0 and [len(no_gap[k]) for k in ("train", "validation", "test")] == [14, 3, 3]
    assert sorted(no_gap["train"] + no_gap["validation"] + no_gap["test"]) == days[:20]


def _check_export(meta, read, expected):
    assert meta["format"] == "xgboost-csv" and meta["label"] == LABEL
    feats = meta["feature_names"]
    assert feats == [c for c in expected.columns if c not in ("customer_id", "as_of", LABEL)]
    ranges = meta["as_of"]
    # no as-of date in two splits; later splits later in time
    assert ranges["train"][1] < ranges["validation"][0] <= ranges["validation"][1] < \
        ranges["test"][0]
    for name in ("train", "validation", "test"):
        lo, hi = (dt.date.fromisoformat(x) for x in ranges[name])
        want = expected[(expected["as_of"] >= lo) & (expected["as_of"] <= hi)]
        got = read(name)
        assert meta["rows"][name] == len(want) == len(got)
        assert got.shape[1] == 1 + len(feats)
        np.testing.assert_array_equal(got[0].to_numpy(), want[LABEL].to_numpy())
        np.testing.assert_allclose(
            got.iloc[:, 1:].to_numpy(float),
            want[feats].astype("float64").to_numpy(), equal_nan=True)
        assert meta["positive_rate"][name] == pytest.approx(want[LABEL].mean())
    train = read("train")
    pos = (train[0] == 1).sum()
    assert meta["scale_pos_weight"] == pytest.approx((len(train) - pos) / pos)


def test_xgboost_export_local(generated, tmp_path):
    store, events, days, expected, excluded = generated
    out = tmp_path / "xgb"
    res = export_xgboost(store, str(out), split_policy="time")  # the date layout checked below
    meta = res.metadata
    assert meta["excluded_incomplete_label"] == excluded
    for name in ("train", "validation", "test"):
        text = (out / name / f"{name}.csv").read_text()
        assert not text.startswith(LABEL)                              # no header
    # nulls are empty fields
    assert any(line.endswith(",") or ",," in line
               for line in (out / "train" / "train.csv").read_text().splitlines())
    # 15 dates: the 30-day purge capped so training keeps >= 60% of them (9 dates)
    assert meta["gap_days"] == 1 and meta["split_policy"]["train_fraction"] >= 0.6
    _check_export(meta, lambda n: pd.read_csv(out / n / f"{n}.csv", header=None), expected)


def test_xgboost_export_s3(generated, s3_bucket):
    import s3fs

    store, events, days, expected, excluded = generated
    url = f"s3://{s3_bucket}/exports/xgb"
    res = export_xgboost(store, url, gap_days=0)
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": __import__("os").environ[
        "AWS_ENDPOINT_URL"]})
    assert sorted(fs.ls(f"{s3_bucket}/exports/xgb")) == sorted(
        f"{s3_bucket}/exports/xgb/{p}" for p in ("metadata.json", "test", "train", "validation"))
    meta = __import__("json").loads(fs.cat(f"{s3_bucket}/exports/xgb/metadata.json"))
    assert meta == res.metadata and meta["gap_days"] == 0

    def read(name):
        return pd.read_csv(io.BytesIO(fs.cat(f"{s3_bucket}/exports/xgb/{name}/{name}.csv")),
                           header=None)

    _check_export(meta, read, expected)


def test_cli_training_set_csv_and_parquet(generated, client, tmp_path, capsys):
    from featurestore.cli import main

    store, events, days, expected, excluded = generated
    sched = client.scheduler.address
    out = tmp_path / "csv"
    assert main(["training-set", "--store", store.url, "--from", days[0].isoformat(), "--to",
                 days[-1].isoformat(), "--out", str(out), "--gap-days", "0",
                 "--scheduler", sched, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    meta = json.loads((out / "metadata.json").read_text())
    assert printed["metadata"] == meta and meta["gap_days"] == 0
    assert sum(meta["rows"].values()) == len(expected)
    out2 = tmp_path / "pq"
    assert main(["training-set", "--store", store.url, "--out", str(out2), "--format",
                 "parquet", "--scheduler", sched, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["rows"] == len(expected) and printed["excluded_incomplete_label"] == excluded
    assert len(pd.read_parquet(out2)) == len(expected)
    # an empty range is a clear error, exit code 2
    assert main(["training-set", "--store", store.url, "--from", "2030-01-01", "--out",
                 str(tmp_path / "x"), "--scheduler", sched]) == 2
    assert "no customer_features partitions" in capsys.readouterr().err


@pytest.fixture()
def api_server(generated, tmp_path):
    """A real uvicorn serving the API over the generated store (module copy per test)."""


    store, *_ = generated
    dest = tmp_path / "store"
    shutil.copytree(store.url, dest)
    with serve_subprocess({"FEATURESTORE_STORE": str(dest),
                           "FEATURESTORE_API_TOKEN": "secret-token"}) as url:
        yield url, Store(str(dest))


def test_api_training_sets(api_server, generated):
    import time

    import httpx

    url, store = api_server
    _, _, days, expected, excluded = generated
    auth = {"Authorization": "Bearer secret-token"}
    body = {"from": days[0].isoformat(), "to": days[-1].isoformat(), "format": "csv",
            "gap_days": 0}
    assert httpx.post(f"{url}/training-sets", json=body, timeout=60).status_code == 401
    r = httpx.post(f"{url}/training-sets", json=body, headers=auth, timeout=120)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["status"] == "completed"
    assert answer["out"] == store.uri("_exports", answer["id"])
    assert sum(answer["rows"].values()) == len(expected)
    assert answer["excluded_incomplete_label"] == excluded
    meta = store.read_json("_exports", answer["id"], "metadata.json")
    assert meta == answer["metadata"]
    # outside the store: refused with an actionable JSON error
    r = httpx.post(f"{url}/training-sets", json={**body, "out": "/tmp/elsewhere"},
                   headers=auth, timeout=30)
    assert r.status_code == 400 and "outside the store" in r.json()["detail"]
    # background parquet export: 202 now, completed later
    r = httpx.post(f"{url}/training-sets", json={"format": "parquet", "wait": False},
                   headers=auth, timeout=30)
    assert r.status_code == 202 and r.json()["status"] == "running"
    export_id = r.json()["id"]
    for _ in range(150):
        state = httpx.get(f"{url}/training-sets/{export_id}", headers=auth, timeout=10).json()
        if state["status"] != "running":
            break
        time.sleep(0.2)
    assert state["status"] == "completed", state
    assert state["rows"] == len(expected)
    assert len(pd.read_parquet(state["out"])) == len(expected)
    r = httpx.get(f"{url}/training-sets/nope123", headers=auth, timeout=10)
    assert r.status_code == 404 and "detail" in r.json()


def test_api_training_sets_split_policy(api_server, generated):
    """``split_policy`` reaches the export through the API and is recorded; an unknown name
    is refused before anything runs."""
    import httpx

    url, store = api_server
    _, _, days, expected, _ = generated
    auth = {"Authorization": "Bearer secret-token"}
    body = {"from": days[0].isoformat(), "to": days[-1].isoformat(), "format": "csv",
            "gap_days": 0}
    policies = {}
    for policy in ("time", "grouped"):
        r = httpx.post(f"{url}/training-sets", json={**body, "split_policy": policy},
                       headers=auth, timeout=120)
        assert r.status_code == 200, r.text
        meta = store.read_json("_exports", r.json()["id"], "metadata.json")
        assert meta["split_policy"]["policy"] == policy
        policies[policy] = r.json()["rows"]
    # grouped holds customers out instead of later dates: other split sizes, same rows
    assert policies["time"] != policies["grouped"]
    assert sum(policies["grouped"].values()) <= len(expected)
    r = httpx.post(f"{url}/training-sets", json={**body, "split_policy": "random"},
                   headers=auth, timeout=30)
    assert r.status_code == 422 and "split_policy" in r.text
