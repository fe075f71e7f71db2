"""SPEC §3a features everywhere a feature goes: the single, batch and generic table routes of a
real uvicorn server (top_k as JSON arrays, strings, floats, nulls), the parquet partitions'
types, the dashboard's profile and drift of list columns, and the training CSV's flattening."""

from __future__ import annotations

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from api.main import create_app
from featurestore.materialization import materialize
from featurestore.repository import apply_repo
from featurestore.settings import Settings
from featurestore.sources.weblog.ingest import ingest_weblog
from featurestore.storage import Store
from featurestore.training.xgboost_export import feature_columns, flatten_lists
from tests.reliability.test_kill9_aggs import aggs_repo
from tests.serving_helpers import serve

DECLARED = {"post_channel": "string", "visit_num": "int", "evar12": "float",
            "geo_country": "string"}
MORE = {
    "top_channels_7d": {"aggregation": "top_k", "field": "post_channel", "k": 2,
                        "window_days": 7},
    "visit_depth_mean": {"aggregation": "mean", "field": "visit_num"},
    "evar_max_3d": {"aggregation": "max", "field": "evar12", "window_days": 3},
    "last_country": {"aggregation": "last", "field": "geo_country"},
}


def _value(v):
    if isinstance(v, float) and pd.isna(v):
        return None
    if v is None or v is pd.NA:
        return None
    if hasattr(v, "tolist"):
        return v.tolist()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


@pytest.fixture(scope="module")
def served(drops, client, tmp_path_factory):
    raw, _ = drops
    work = tmp_path_factory.mktemp("aggs-api")
    aggs_repo(work / "repo.yaml")
    repo = yaml.safe_load((work / "repo.yaml").read_text())
    repo["sources"]["weblog"]["columns"] = DECLARED
    repo["tables"]["customer_features"]["features"].update(MORE)
    (work / "repo.yaml").write_text(yaml.safe_dump(repo, sort_keys=False))
    store = Store(str(work / "store"))
    apply_repo(store, str(work / "repo.yaml"))
    ingest_weblog(str(raw), store, client=client, progress=False)
    materialize(store, client=client)
    latest = max(store.partitions("customer_features", "as_of"))
    frame = pq.read_table(store.path("customer_features", f"as_of={latest}")).to_pandas()
    app = create_app(Settings(store=store.url, snapshot_poll_seconds=3600))
    with serve(app) as base, httpx.Client(base_url=base) as http:
        yield http, frame, latest, store


def test_partition_types(served):
    _, frame, latest, store = served
    schema = pq.read_schema(store.path("customer_features", f"as_of={latest}",
                                       "part-0.parquet"))
    types = {f.name: str(f.type) for f in schema}
    assert types["top_products_30d"].startswith("list<") and "string" in types[
        "top_products_30d"]
    assert types["qty_sum_life"] == "int64" and types["price_mean_7d"] == "double"
    assert types["first_product"] in ("string", "large_string")
    assert types["visit_depth_mean"] == "double" and types["evar_max_3d"] == "double"
    assert str(frame["days_since_cart_view"].dtype) == "Int64"
    lists = frame["top_channels_7d"].map(len)
    assert lists.max() >= 1 and lists.max() <= 2


def test_single_batch_and_table_routes_carry_lists(served):
    http, frame, latest, _ = served
    rows = frame.set_index("customer_id")
    ids = list(rows.index[:25])
    for cid in ids[:8]:
        body = http.get(f"/customers/{cid}/features").json()
        assert body["as_of"] == latest
        want = {k: _value(v) for k, v in rows.loc[cid].items()}
        got = body["features"]
        assert got["top_products_30d"] == want["top_products_30d"]
        assert isinstance(got["top_products_30d"], list)
        for k in ("first_product", "last_product_9d", "last_country", "qty_sum_life",
                  "products_life", "days_since_cart_view"):
            assert got[k] == want[k], k
        for k in ("price_mean_7d", "visit_depth_mean", "revenue_per_purchase"):
            assert got[k] == pytest.approx(want[k]) if want[k] is not None else got[k] is None
        generic = http.get("/tables/customer_features/features",
                           params={"customer_id": cid}).json()
        assert generic["features"]["top_channels_7d"] == want["top_channels_7d"]
    body = http.post("/features/batch", json={"customer_ids": ids,
                                               "features": ["top_channels_7d",
                                                            "approx_products_30d"]}).json()
    for res in body["results"]:
        want = rows.loc[res["customer_id"]]
        assert res["features"] == {"top_channels_7d": list(want["top_channels_7d"]),
                                   "approx_products_30d": int(want["approx_products_30d"])}


def test_dashboard_profile_and_drift_handle_lists(served):
    http = served[0]
    profile = http.get("/dashboard/api/features/customer_features").json()
    by_name = {f["name"]: f for f in profile["features"]}
    assert by_name["top_products_30d"]["counts"] == []
    assert by_name["top_products_30d"]["null_share"] == 0.0
    assert by_name["price_mean_7d"]["counts"]  # numeric: a histogram
    drift = http.get("/dashboard/api/drift/customer_features").json()
    assert "top_products_30d" not in {f["name"] for f in drift["features"]}


def test_training_csv_flattens_top_k():
    frame = pd.DataFrame({"customer_id": ["a", "b"], "as_of": ["2026-01-01"] * 2,
                          "n": [1, 2], "top": [["x", "y"], ["z"]]})
    flat = flatten_lists(frame)
    assert list(flat.columns) == ["customer_id", "as_of", "n", "top_1", "top_2"]
    assert flat["top_2"].isna().tolist() == [False, True]
    feats, dropped = feature_columns(flat)
    assert "n" in feats and {"top_1", "top_2"} <= set(dropped)
