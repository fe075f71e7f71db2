"""The hot path of the feature lookups (``api/hot.py``) answers exactly what the declared FastAPI
routes answer: same status, bytes and version headers, for plain lookups and for every request
it hands to the route. Two real uvicorn servers on the same store: the app as built, and the same
app without the hot path. A spy inside the hot path records which requests reach FastAPI."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest
from starlette.middleware import Middleware

from api.hot import HotPathMiddleware
from api.main import create_app
from featurestore.settings import Settings
from featurestore.storage import Store
from tests.serving_helpers import expected_row, serve

AS_OF, OLDER = "2026-03-02", "2026-03-01"


def _tables(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = [f"C{i:04d}" for i in range(n - 1)] + ["Zoë-ü"]  # a non-ASCII id
    cf = pd.DataFrame({"customer_id": pd.Series(ids, dtype=object),
                       "page_views_7d": rng.poisson(5, n).astype("int64"),
                       "revenue_30d": rng.gamma(1.0, 30.0, n).round(2)})
    cf.loc[3, "revenue_30d"] = np.nan  # NaN is served as null
    last = pd.array(rng.integers(0, 90, n), dtype="Int64")
    last[rng.random(n) < 0.5] = pd.NA
    cf["days_since_last_purchase"] = last
    cp = pd.DataFrame({"customer_id": pd.Series([ids[i % n] for i in range(3 * n)], dtype=object),
                       "product_id": pd.Series([f"P{i}" for i in range(3 * n)], dtype=object),
                       "product_views_7d": rng.integers(0, 5, 3 * n).astype("int64"),
                       "product_views_30d": rng.integers(5, 20, 3 * n).astype("int64")})
    return cf, cp


class _Spy:
    """Innermost middleware: records the (method, path) of every request that reaches FastAPI."""

    seen: list[tuple[str, str]] = []

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            _Spy.seen.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


@pytest.fixture(scope="module", params=["memory", "redis"])
def pair(request, tmp_path_factory):
    rng = np.random.default_rng(7)
    store = Store(str(tmp_path_factory.mktemp("hot") / "store"))
    frames = {}
    for as_of in (OLDER, AS_OF):
        cf, cp = _tables(rng, 300)
        store.write_parquet(cf, "customer_features", f"as_of={as_of}", "part-0.parquet")
        store.write_parquet(cp, "customer_product_features", f"as_of={as_of}", "part-0.parquet")
        frames[as_of] = cf
    settings = Settings(store=store.url, snapshot_poll_seconds=3600)
    if request.param == "redis":  # both apps serve from one real redis-server
        from featurestore import FeatureStore

        settings = Settings(store=store.url, snapshot_poll_seconds=3600,
                            online_store=request.getfixturevalue("redis_server").url)
        FeatureStore(settings).push_online(client=request.getfixturevalue("client"))
    hot, plain = create_app(settings), create_app(settings)
    hot.user_middleware.append(Middleware(_Spy))  # last in the list: innermost
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not HotPathMiddleware]
    with serve(hot) as hot_base, serve(plain) as plain_base, \
            httpx.Client(base_url=hot_base) as a, httpx.Client(base_url=plain_base) as b:
        yield a, b, frames


def _same(a: httpx.Client, b: httpx.Client, method: str, path: str, **kw) -> httpx.Response:
    ra, rb = a.request(method, path, **kw), b.request(method, path, **kw)
    assert (ra.status_code, ra.content) == (rb.status_code, rb.content), (method, path, kw)
    for name in ("x-feature-as-of", "x-feature-generation", "content-type"):
        assert ra.headers.get(name) == rb.headers.get(name), name
    return ra


def test_plain_lookups_skip_fastapi_and_match_the_routes(pair):
    a, b, frames = pair
    cf = frames[AS_OF]
    ids = list(cf["customer_id"])
    _Spy.seen.clear()
    for cid in ids[:20] + ["Zoë-ü"]:
        r = _same(a, b, "GET", f"/customers/{cid}/features")
        assert r.json() == {"customer_id": cid, "as_of": AS_OF,
                            "features": expected_row(cf, cid)}
        assert r.headers["x-feature-as-of"] == AS_OF
    r = _same(a, b, "GET", f"/customers/{ids[3]}/features",
              params={"features": "revenue_30d,page_views_7d", "as_of": AS_OF})
    want = expected_row(cf, ids[3])
    assert r.json()["features"] == {"revenue_30d": None, "page_views_7d": want["page_views_7d"]}
    batch = ids[:50] + ["nobody"] + ids[:2]
    r = _same(a, b, "POST", "/features/batch", json={"customer_ids": batch})
    assert r.json() == {"as_of": AS_OF, "results": [
        {"customer_id": c, "found": c != "nobody",
         "features": None if c == "nobody" else expected_row(cf, c)} for c in batch]}
    r = _same(a, b, "POST", "/features/batch",
              json={"customer_ids": ids[5:9], "features": ["days_since_last_purchase"]})
    assert [x["features"] for x in r.json()["results"]] == [
        {"days_since_last_purchase": expected_row(cf, c)["days_since_last_purchase"]}
        for c in ids[5:9]]
    _same(a, b, "POST", "/features/batch", json={"customer_ids": [], "features": []})
    r = _same(a, b, "GET", "/tables/customer_features/features", params={"customer_id": ids[7]})
    assert r.json()["features"] == expected_row(cf, ids[7])
    _same(a, b, "POST", "/tables/customer_product_features/batch", json={"entities": [
        {"customer_id": ids[1], "product_id": "P1"}, {"customer_id": ids[1], "product_id": "x"}]})
    _same(a, b, "GET", "/tables/customer_product_features/features",
          params={"customer_id": ids[2], "product_id": "P2", "features": "product_views_7d"})
    assert _Spy.seen == [], _Spy.seen  # all of the above answered before FastAPI


@pytest.mark.parametrize("method,path,kw", [
    ("GET", "/customers/nobody/features", {}),
    ("GET", "/customers/C0001/features", {"params": {"as_of": OLDER}}),
    ("GET", "/customers/C0001/features", {"params": {"as_of": "1999-01-01"}}),
    ("GET", "/customers/C0001/features", {"params": {"as_of": ""}}),
    ("GET", "/customers/C0001/features", {"params": {"features": "bogus,page_views_7d"}}),
    ("GET", "/customers/Zoë%2Fü/features", {}),
    ("POST", "/features/batch", {"json": {"customer_ids": ["C0001"], "as_of": OLDER}}),
    ("POST", "/features/batch", {"json": {"customer_ids": [f"c{i}" for i in range(1001)]}}),
    ("POST", "/features/batch", {"json": {"customer_ids": "C0001"}}),
    ("POST", "/features/batch", {"json": {"customer_ids": [1, 2]}}),
    ("POST", "/features/batch", {"json": {"customer_ids": ["C0001"], "features": ""}}),
    ("POST", "/features/batch", {"json": {"customer_ids": ["C0001"], "features": ["customer_id"]}}),
    ("POST", "/features/batch", {"json": {"customer_ids": ["C0001"], "as_of": 5}}),
    ("POST", "/features/batch", {"json": {"ids": ["C0001"]}}),
    ("POST", "/features/batch", {"content": b"{not json"}),
    ("POST", "/features/batch", {"content": b'{"customer_ids": ["\\ud800"]}'}),
    ("POST", "/features/batch", {"content": b'{"customer_ids": ["C0001"]}',
                                 "headers": {"content-type": "text/plain"}}),
    ("GET", "/tables/nope/features", {"params": {"customer_id": "C0001"}}),
    ("GET", "/tables/customer_product_features/features", {"params": {"customer_id": "C0001"}}),
    ("GET", "/tables/customer_product_features/features",
     {"params": {"customer_id": "C0001", "product_id": "P1", "features": "product_id"}}),
    ("POST", "/tables/customer_product_features/batch",
     {"json": {"entities": [{"customer_id": "C0001"}]}}),
    ("POST", "/tables/customer_product_features/batch",
     {"json": {"entities": [{"customer_id": "C0001", "product_id": "P1", "n": 3}]}}),
    ("POST", "/tables/.bad/batch", {"json": {"entities": []}}),
])
def test_everything_else_reaches_the_route_unchanged(pair, method, path, kw):
    a, b, _ = pair
    _Spy.seen.clear()
    _same(a, b, method, path, **kw)
    assert len(_Spy.seen) == 1  # the declared route answered (a read body was handed back)


def test_metrics_count_hot_answers_under_their_templates(pair):
    a, _, frames = pair
    cid = frames[AS_OF]["customer_id"].iloc[0]
    a.post("/features/batch", content=json.dumps({"customer_ids": [cid]}))
    text = a.get("/metrics").text
    lines = [x for x in text.splitlines() if x.startswith("featurestore_http_requests_total")
             and 'route="/features/batch"' in x and 'status="200"' in x]
    assert lines and float(lines[0].rsplit(" ", 1)[1]) >= 1
