"""The HTTP API against a real uvicorn server on 127.0.0.1 and a store built by ingest_weblog."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from api.main import create_app
from featurestore.materialization import materialize
from featurestore.settings import Settings
from featurestore.sources.weblog.ingest import ingest_weblog
from featurestore.storage import Store
from tests.serving_helpers import expected_row, serve, wait_ok


@pytest.fixture(scope="module")
def built_store(drops, client, tmp_path_factory):
    """A real store: events by ingest_weblog, feature tables by materialize."""
    raw, _ = drops
    store = Store(str(tmp_path_factory.mktemp("api") / "store"))
    ingest_weblog(str(raw), store, client=client, progress=False)
    materialize(store, client=client)
    return store


@pytest.fixture(scope="module", params=["memory", "redis"])
def served(request, built_store, client):
    """The API over a real store, its online store in memory or in a real redis-server (pushed
    by the facade). The expected answers are the parquet partitions as pandas reads them
    (feature values themselves are checked against plain pandas in
    tests/integration/test_features.py)."""
    store = built_store
    online = "memory"
    if request.param == "redis":
        from featurestore import FeatureStore

        online = request.getfixturevalue("redis_server").url
        FeatureStore(Settings(store=store.url, online_store=online)).push_online(client=client)
    dates = sorted(store.partitions("customer_features", "as_of"))
    latest, earlier = dt.date.fromisoformat(dates[-1]), dt.date.fromisoformat(dates[-2])
    frames = {
        d.isoformat(): tuple(
            pd.read_parquet(store.uri(table, f"as_of={d.isoformat()}"))
            for table in ("customer_features", "customer_product_features"))
        for d in (earlier, latest)
    }
    app = create_app(Settings(store=store.url, snapshot_poll_seconds=3600, online_store=online))
    with serve(app) as base, httpx.Client(base_url=base) as http:
        yield http, frames, latest.isoformat(), earlier.isoformat(), app


def test_health_ready_docs(served):
    http, frames, latest, _, _ = served
    assert http.get("/health").json() == {"status": "ok"}
    ready = http.get("/ready").json()
    assert ready["snapshot"] == {"customer_features": latest, "customer_product_features": latest}
    assert http.get("/docs").status_code == 200
    assert "/features/batch" in http.get("/openapi.json").json()["paths"]


def test_single_customer_latest_and_older(served):
    http, frames, latest, earlier, _ = served
    for as_of, query in ((latest, {}), (latest, {"as_of": latest}), (earlier, {"as_of": earlier})):
        cf = frames[as_of][0]
        for cid in cf["customer_id"].sample(15, random_state=1):
            body = http.get(f"/customers/{cid}/features", params=query).json()
            assert body == {"customer_id": cid, "as_of": as_of,
                            "features": expected_row(cf, cid)}
    # nulls come back as JSON null, ints as ints
    cf = frames[latest][0]
    nulls = cf[cf["days_since_last_purchase"].isna()]["customer_id"]
    assert len(nulls)
    body = http.get(f"/customers/{nulls.iloc[0]}/features").json()
    assert body["features"]["days_since_last_purchase"] is None
    assert isinstance(body["features"]["page_views_30d"], int)


def test_feature_selection_and_404s(served):
    http, frames, latest, _, _ = served
    cid = frames[latest][0]["customer_id"].iloc[0]
    body = http.get(f"/customers/{cid}/features",
                    params={"features": "page_views_7d,revenue_30d"}).json()
    full = expected_row(frames[latest][0], cid)
    assert body["features"] == {"page_views_7d": full["page_views_7d"],
                                "revenue_30d": full["revenue_30d"]}
    for path, params, needle in [
        ("/customers/NOPE/features", {}, "NOPE"),
        (f"/customers/{cid}/features", {"as_of": "1999-01-01"}, "1999-01-01"),
        (f"/customers/{cid}/features", {"features": "page_views_7d,bogus"}, "bogus"),
        ("/tables/nonexistent", {}, "GET /tables"),
    ]:
        r = http.get(path, params=params)
        assert r.status_code == 404, (path, params, r.text)
        assert needle in r.json()["detail"]


def test_malformed_as_of_is_422_an_unknown_date_404_and_input_is_quoted_short(served):
    # issue #30: ?as_of=2026-13-01 answered 404 like a date the store does not have
    http, frames, latest, _, _ = served
    cid = frames[latest][0]["customer_id"].iloc[0]
    for path in (f"/customers/{cid}/features", f"/customers/{cid}/products",
                 "/tables/customer_features/features"):
        for bad in ("2026-13-01", "not-a-date", "2026-02-30"):
            r = http.get(path, params={"as_of": bad, "customer_id": cid})
            assert r.status_code == 422, (path, bad, r.text)
            assert r.headers["content-type"] == "application/json"
            assert bad in r.json()["detail"] and "YYYY-MM-DD" in r.json()["detail"]
        r = http.get(path, params={"as_of": "1999-01-01", "customer_id": cid})
        assert r.status_code == 404 and "1999-01-01" in r.json()["detail"], r.text
    r = http.post("/features/batch", json={"customer_ids": [cid], "as_of": "2026-13-01"})
    assert r.status_code == 422, r.text
    # a long value is quoted cut to 100 characters, whatever the route
    long = "Z" * 5000
    for path, params in ((f"/customers/{long}/features", {}),
                         (f"/customers/{cid}/features", {"as_of": long}),
                         (f"/customers/{cid}/features", {"features": long}),
                         (f"/tables/{long[:120]}", {}), (f"/customers/{long}/products", {})):
        r = http.get(path, params=params)
        assert r.status_code in (404, 422), (path[:40], r.status_code)
        detail = r.json()["detail"]
        assert "Z" * 100 in detail and "Z" * 101 not in detail, (path[:40], detail[:300])


def test_batch(served):
    http, frames, latest, earlier, _ = served
    cf = frames[earlier][0]
    ids = list(cf["customer_id"].sample(40, random_state=2))
    ids[5:5] = ["unknown-1"]
    ids.append("unknown-2")
    r = http.post("/features/batch", json={"customer_ids": ids, "as_of": earlier,
                                           "features": ["purchases_30d", "page_views_1d"]})
    body = r.json()
    assert body["as_of"] == earlier
    assert [x["customer_id"] for x in body["results"]] == ids
    for res in body["results"]:
        if res["customer_id"].startswith("unknown"):
            assert res == {"customer_id": res["customer_id"], "found": False, "features": None}
        else:
            full = expected_row(cf, res["customer_id"])
            assert res["found"] is True
            assert res["features"] == {"purchases_30d": full["purchases_30d"],
                                       "page_views_1d": full["page_views_1d"]}
    # defaults: latest as_of, every feature
    body = http.post("/features/batch", json={"customer_ids": ids[:3]}).json()
    assert body["as_of"] == latest
    assert body["results"][0]["features"] == expected_row(frames[latest][0], ids[0])


def test_batch_limits(served):
    http, *_ = served
    r = http.post("/features/batch", json={"customer_ids": [f"c{i}" for i in range(1001)]})
    assert r.status_code == 422
    assert "1,000" in r.json()["detail"]
    ok = http.post("/features/batch", json={"customer_ids": [f"c{i}" for i in range(1000)]})
    assert ok.status_code == 200 and len(ok.json()["results"]) == 1000
    assert http.post("/features/batch", json={"customer_ids": "x"}).status_code == 422
    assert http.post("/features/batch", content=b"{not json").status_code == 422


def test_products_most_viewed_first(served):
    http, frames, latest, _, _ = served
    cp = frames[latest][1]
    order = cp.sort_values(["customer_id", "product_views_30d", "product_views_7d", "product_id"],
                           ascending=[True, False, False, True])
    cid = cp.groupby("customer_id").size().idxmax()
    want = order[order["customer_id"] == cid]
    body = http.get(f"/customers/{cid}/products", params={"top": 3}).json()
    assert body["as_of"] == latest
    assert body["products"] == [
        {"product_id": p, "product_views_7d": int(a), "product_views_30d": int(b)}
        for p, a, b in want[["product_id", "product_views_7d", "product_views_30d"]]
        .head(3).itertuples(index=False)]
    all_rows = http.get(f"/customers/{cid}/products", params={"top": 1000}).json()["products"]
    assert len(all_rows) == len(want)
    assert http.get("/customers/NOPE/products").status_code == 404
    assert http.get(f"/customers/{cid}/products", params={"top": 0}).status_code == 422


def test_tables(served):
    http, frames, latest, earlier, app = served
    dates = app.state.store.partitions("customer_features", "as_of")
    tables = {t["name"]: t for t in http.get("/tables").json()["tables"]}
    assert {"events", "customer_features", "customer_product_features"} <= set(tables)
    cf = http.get("/tables/customer_features").json()
    assert cf == tables["customer_features"]
    assert (cf["first"], cf["latest"], cf["partitions"]) == (dates[0], latest, len(dates))
    assert len(dates) >= 2 and earlier in dates
    assert cf["latest_rows"] == len(frames[latest][0])
    assert cf["served_as_of"] == latest
    assert [c["name"] for c in cf["columns"]] == list(frames[latest][0].columns)
    assert cf["days_since_latest"] == (dt.date.today() - dt.date.fromisoformat(latest)).days
    assert tables["events"]["partition_key"] == "event_date"


def test_metrics(served):
    http, frames, latest, _, _ = served
    cid = frames[latest][0]["customer_id"].iloc[0]
    for _ in range(3):
        http.get(f"/customers/{cid}/features")
    text = http.get("/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("featurestore_http_requests_total")
                and 'route="/customers/{customer_id}/features"' in x and 'status="200"' in x)
    assert float(line.rsplit(" ", 1)[1]) >= 3
    assert "featurestore_http_request_duration_seconds_bucket" in text
    as_of_line = next(x for x in text.splitlines() if x.startswith(
        'featurestore_snapshot_as_of_timestamp_seconds{table="customer_features"}'))
    stamp = float(as_of_line.rsplit(" ", 1)[1])
    assert dt.datetime.fromtimestamp(stamp, dt.timezone.utc).date().isoformat() == latest
    assert "featurestore_snapshot_age_seconds" in text


def test_request_stats_exposition_matches_a_plain_count():
    """The hand-rolled request collector must expose what prometheus_client's own Histogram
    would: cumulative ``le`` buckets (a value on a bound counts in it), count and sum."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from api.metrics import LATENCY_BUCKETS, Metrics

    metrics = Metrics()
    rng = np.random.default_rng(3)
    seconds = [*rng.exponential(0.004, 500).tolist(), 0.001, 0.005, 7.0]
    for i, s in enumerate(seconds):
        metrics.requests.observe("GET", "/r", 200 if i % 10 else 404, s)
    families = {f.name: f for f in text_string_to_metric_families(
        generate_latest(metrics.registry).decode())}
    counts = {s.labels["status"]: s.value for s in families["featurestore_http_requests"].samples
              if s.name.endswith("_total")}
    assert counts == {"200": sum(1 for i in range(len(seconds)) if i % 10),
                      "404": sum(1 for i in range(len(seconds)) if not i % 10)}
    hist = families["featurestore_http_request_duration_seconds"].samples
    buckets = {s.labels["le"]: s.value for s in hist if s.name.endswith("_bucket")}
    for bound in LATENCY_BUCKETS:
        assert buckets[str(float(bound))] == sum(1 for s in seconds if s <= bound), bound
    assert buckets["+Inf"] == len(seconds)
    assert next(s.value for s in hist if s.name.endswith("_count")) == len(seconds)
    assert next(s.value for s in hist if s.name.endswith("_sum")) == pytest.approx(sum(seconds))


def test_ready_is_503_until_a_snapshot_exists(tmp_path):
    store = Store(str(tmp_path / "empty"))
    app = create_app(Settings(store=store.url, snapshot_poll_seconds=0.2))
    with serve(app, ready_path="/health") as base:
        r = httpx.get(base + "/ready")
        assert r.status_code == 503 and "not ready" in r.json()["detail"]
        r = httpx.get(base + "/customers/x/features")
        assert r.status_code == 404 and "featurestore ingest" in r.json()["detail"]
        cf = pd.DataFrame({"customer_id": pd.Series(["a"], dtype=object),
                           "page_views_7d": pd.Series([4], dtype="int64")})
        store.write_parquet(cf, "customer_features", "as_of=2026-01-01", "part-0.parquet")
        for _ in range(100):  # the background poller picks it up without a restart
            if httpx.get(base + "/ready").status_code == 200:
                break
            time.sleep(0.05)
        assert httpx.get(base + "/customers/a/features").json()["features"] == {
            "page_views_7d": 4}


@pytest.mark.parametrize("reads_need_token", [True, False])
def test_auth(served, reads_need_token):
    _, frames, latest, _, app = served
    store_url = app.state.store.url
    app2 = create_app(Settings(store=store_url, api_token="s3cret",
                               api_require_token_for_reads=reads_need_token))
    cid = frames[latest][0]["customer_id"].iloc[0]
    with serve(app2, ready_path="/health") as base:
        anon = httpx.get(f"{base}/customers/{cid}/features")
        wrong = httpx.get(f"{base}/customers/{cid}/features",
                          headers={"Authorization": "Bearer nope"})
        good = httpx.get(f"{base}/tables", headers={"Authorization": "Bearer s3cret"})
        assert good.status_code == 200
        if reads_need_token:
            assert anon.status_code == 401 and "bearer token" in anon.json()["detail"]
            assert wrong.status_code == 401
            assert httpx.post(f"{base}/features/batch", json={"customer_ids": [cid]}) \
                .status_code == 401
        else:
            wait_ok(base + "/ready", 10)  # the first snapshot, then read without a token
            anon = httpx.get(f"{base}/customers/{cid}/features")
            assert anon.status_code == 200
            assert anon.json()["features"] == expected_row(frames[latest][0], cid)
            assert httpx.get(f"{base}/tables").status_code == 200
        assert httpx.get(base + "/health").status_code == 200  # liveness never needs a token


def test_featurestore_serve_command(served):
    """``featurestore serve`` as a subprocess: the real CLI entry point, uvicorn, one worker."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.serving_helpers import free_port

    _, frames, latest, _, app = served
    root = Path(__file__).resolve().parents[2]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "featurestore", "serve", "--store", app.state.store.url,
         "--port", str(port), "--log-level", "warning"],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ok(base + "/ready", 30, proc)
        cid = frames[latest][0]["customer_id"].iloc[-1]
        body = httpx.get(f"{base}/customers/{cid}/features").json()
        assert body["features"] == expected_row(frames[latest][0], cid)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0].decode()
    assert f"127.0.0.1:{port}" in out


def test_demo_ends_by_serving(tmp_path):
    """``featurestore demo`` (tiny) ends with the serving step: URLs printed, API answering."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tests.serving_helpers import free_port

    root = Path(__file__).resolve().parents[2]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "featurestore", "demo", "--workdir", str(tmp_path / "demo"),
         "--days", "2", "--customers", "40", "--rows-per-day", "150", "--workers", "1",
         "--port", str(port)],
        cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ok(base + "/health", 90, proc)
        tables = {t["name"] for t in httpx.get(base + "/tables").json()["tables"]}
        assert "events" in tables
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0].decode()
    assert f"curl -s '{base}/customers/" in out
    assert "/features/batch" in out
