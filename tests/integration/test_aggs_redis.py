"""SPEC §3a features served from the Redis online store (a real ``redis-server``): top_k lists,
first/last strings, approx_distinct, min/max/mean over declared columns and expressions answer
exactly as the memory store does on the single, batch and generic table routes of a real
uvicorn server, after a full push and after a second ingest's difference push (lists compared
between the served and the new partition), and equal to the committed parquet rows."""

from __future__ import annotations

import math
import shutil

import httpx
import pandas as pd
import pytest
import yaml

from api.main import create_app
from featurestore.feature_store import FeatureStore
from featurestore.settings import Settings
from tests.reliability.test_kill9_aggs import aggs_repo
from tests.serving_helpers import serve

DECLARED = {"post_channel": "string", "visit_num": "int", "evar12": "float",
            "geo_country": "string"}
MORE = {
    "top_channels_7d": {"aggregation": "top_k", "field": "post_channel", "k": 2,
                        "window_days": 7},
    "top_countries_life": {"aggregation": "top_k", "field": "geo_country", "k": 3},
    "first_channel": {"aggregation": "first", "field": "post_channel"},
    "last_country_2d": {"aggregation": "last", "field": "geo_country", "window_days": 2},
    "approx_channels_life": {"aggregation": "approx_distinct", "field": "post_channel"},
    "visit_depth_mean": {"aggregation": "mean", "field": "visit_num"},
    "visit_max_3d": {"aggregation": "max", "field": "visit_num", "window_days": 3},
    "evar_min_life": {"aggregation": "min", "field": "evar12"},
    "evar_sd_7d": {"aggregation": "stddev", "field": "evar12", "window_days": 7},
    "search_visits_7d": {"aggregation": "count", "window_days": 7, "filter": {"where": [
        {"column": "post_channel", "op": "eq", "value": "search"}]}},
    "evar_per_visit": {"expression": "(evar_min_life + 1) / visit_depth_mean"},
}


def _same(a, b) -> bool:
    """JSON values equal; floats to 1e-12 relative (both stores serve the same doubles)."""
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12)
    return a == b


def _value(v):
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "tolist"):
        return v.tolist()
    return v


def _compare(redis_http: httpx.Client, memory_http: httpx.Client, frame: pd.DataFrame,
             as_of: str) -> None:
    """Every route answers the same from both stores, and equal to the partition's rows."""
    rows = frame.set_index("customer_id")
    ids = sorted(rows.index)
    lists = [c for c in MORE if c.startswith("top_")]
    assert any(len(v) >= 2 for v in rows["top_channels_7d"]), "lists worth comparing"
    for cid in ids[:40]:
        got = redis_http.get(f"/customers/{cid}/features").json()
        want = memory_http.get(f"/customers/{cid}/features").json()
        assert got["as_of"] == want["as_of"] == as_of
        assert set(got["features"]) == set(want["features"])
        for k, v in want["features"].items():
            assert _same(got["features"][k], v), (cid, k, got["features"][k], v)
        for k in MORE:  # and the committed parquet row
            assert _same(got["features"][k], _value(rows.loc[cid, k])), (cid, k)
        for k in lists:
            assert isinstance(got["features"][k], list)
        generic = redis_http.get("/tables/customer_features/features",
                                 params={"customer_id": cid}).json()
        assert generic["features"] == got["features"]
    names = list(MORE)
    for start in range(0, len(ids), 500):  # every customer, in batches
        chunk = ids[start:start + 500] + ["nobody"]
        body = {"customer_ids": chunk, "features": names}
        got = redis_http.post("/features/batch", json=body).json()
        want = memory_http.post("/features/batch", json=body).json()
        assert got["as_of"] == want["as_of"] == as_of
        for g, w in zip(got["results"], want["results"], strict=True):
            assert g["customer_id"] == w["customer_id"]
            assert (g["features"] is None) == (w["features"] is None)
            if w["features"] is not None:
                assert all(_same(g["features"][k], w["features"][k]) for k in names), g
        entities = [{"customer_id": c} for c in chunk]
        tb = {"entities": entities, "features": names}
        got = redis_http.post("/tables/customer_features/batch", json=tb).json()
        want = memory_http.post("/tables/customer_features/batch", json=tb).json()
        assert [r["found"] for r in got["results"]] == [r["found"] for r in want["results"]]
        assert got["results"][-1]["found"] is False
        for g, w in zip(got["results"], want["results"], strict=True):
            if w["found"]:
                assert all(_same(g["features"][k], w["features"][k]) for k in names), g


@pytest.fixture(scope="module")
def repo_store(tmp_path_factory):
    from featurestore.generate import generate_weblog

    work = tmp_path_factory.mktemp("aggs-redis")
    raw = work / "drops"
    # no late hits: an older as-of keeps its generation, so the third push is a difference
    generate_weblog(str(raw), days=4, customers=300, products=30, rows_per_day=1500, parts=2,
                    seed=12, bad_rows=0.01, late_fraction=0.0)
    aggs_repo(work / "repo.yaml")
    repo = yaml.safe_load((work / "repo.yaml").read_text())
    repo["sources"]["weblog"]["columns"] = DECLARED
    repo["tables"]["customer_features"]["features"].update(MORE)
    (work / "repo.yaml").write_text(yaml.safe_dump(repo, sort_keys=False))
    days = sorted(p.name for p in raw.iterdir() if p.is_dir())
    return work, raw, days


def test_aggs_features_from_redis_equal_the_memory_store(repo_store, client, redis_server):
    work, raw, days = repo_store
    assert len(days) >= 4
    redis_server.flush()
    store = str(work / "store")
    offline = FeatureStore(Settings(store=store), client=client)  # ingest without a push
    online = FeatureStore(Settings(store=store, online_store=redis_server.url), client=client)
    offline.apply(str(work / "repo.yaml"))
    partial = work / "raw"
    for day in days[:2]:
        shutil.copytree(raw / day, partial / day)
    modes = []
    # base a full, then each day's difference against the served as-of (overlays x, y)
    for new_day in days[2:4] + [None]:
        offline.ingest(str(partial))
        report = online.push_online(client=client)
        modes.append(report.tables["customer_features"]["mode"])
        as_of = max(offline.offline_store.partitions("customer_features", "as_of"))
        frame = offline.read_table("customer_features")
        redis_app = create_app(Settings(store=store, online_store=redis_server.url,
                                        snapshot_poll_seconds=3600))
        memory_app = create_app(Settings(store=store, snapshot_poll_seconds=3600))
        with serve(redis_app) as rb, serve(memory_app) as mb, \
                httpx.Client(base_url=rb) as rh, httpx.Client(base_url=mb) as mh:
            _compare(rh, mh, frame, as_of)
        if new_day is not None:
            shutil.copytree(raw / new_day, partial / new_day)
    assert modes == ["full", "diff", "diff"]
