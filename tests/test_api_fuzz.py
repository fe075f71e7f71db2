"""Property-based fuzzing of the OpenAPI schema (schemathesis) against a real uvicorn server:
no generated input may produce a 5xx, and every error is JSON with a ``detail`` message."""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from api.main import create_app
from featurestore.ingest import ingest_weblog
from featurestore.settings import Settings
from featurestore.storage import Store

from .serving_helpers import compute_features, serve, write_feature_tables


@pytest.fixture(scope="module")
def api_schema(drops, client, tmp_path_factory):
    raw, _ = drops
    store = Store(str(tmp_path_factory.mktemp("fuzz") / "store"))
    ingest_weblog(str(raw), store, client=client, progress=False)
    day = dt.date.fromisoformat(store.partitions("events", "event_date")[-1])
    cf, cp = compute_features(store.read_parquet("events"), day)
    write_feature_tables(store, cf, cp, day.isoformat())
    app = create_app(Settings(store=store.url, snapshot_poll_seconds=3600))
    with serve(app) as base:
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")


def test_no_server_errors(api_schema):
    # schemathesis' pytest plugin (from_fixture) breaks on this pytest version ("Function has no
    # _nodeid"), so drive its hypothesis strategies directly: one bounded run per operation.
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) >= 8
    calls = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            response = case.call(timeout=10)
            calls.append(response.status_code)
            assert response.status_code < 500, (case.method, case.formatted_path, response.text)
            if response.status_code >= 400:
                body = response.json()
                assert isinstance(body.get("detail"), str) and body["detail"], body

        check()
    assert len(calls) >= 8 * 10
