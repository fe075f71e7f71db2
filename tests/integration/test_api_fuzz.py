"""Property-based fuzzing of the OpenAPI schema (schemathesis) against a real uvicorn server:
no generated input may produce a 5xx, and every error is JSON with a ``detail`` message.

Every route is fuzzed anonymously and with the write token (so the write routes' bodies are
reached, not only their 401), with valid (positive) and schema-violating (negative) inputs."""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from api.main import create_app
from featurestore.settings import Settings
from featurestore.sources.weblog.ingest import ingest_weblog
from featurestore.storage import Store
from tests.serving_helpers import compute_features, serve, write_feature_tables

TOKEN = "fuzz-token"


@pytest.fixture(scope="module")
def api_schema(drops, client, tmp_path_factory):
    raw, _ = drops
    store = Store(str(tmp_path_factory.mktemp("fuzz") / "store"))
    ingest_weblog(str(raw), store, client=client, progress=False)
    day = dt.date.fromisoformat(store.partitions("events", "event_date")[-1])
    cf, cp = compute_features(store.read_parquet("events"), day)
    write_feature_tables(store, cf, cp, day.isoformat())
    # a small retrain queue: fuzzed POST /retrain bodies queue real jobs, bounded here
    app = create_app(Settings(store=store.url, snapshot_poll_seconds=3600, api_token=TOKEN,
                              retrain_queue_limit=1))
    with serve(app) as base:
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")


def _fuzz(operation, mode: GenerationMode, auth: dict[str, str], seen: list[int]) -> None:
    """One bounded hypothesis run of ``operation``: no 5xx, every error JSON with a detail."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=8, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        response = case.call(headers=auth, timeout=30)
        seen.append(response.status_code)
        # SPEC §7: recommendations answer 503 while no retail-fm version is in production (this
        # store has none); that documented state is the only 5xx a client may see
        unavailable = (response.status_code == 503 and "recommendation" in case.path
                       and "has no production version" in response.text)
        assert response.status_code < 500 or unavailable, (
            case.method, case.formatted_path, response.text)
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body.get("detail"), str) and body["detail"], body

    check()


def test_no_server_errors(api_schema):
    # schemathesis' pytest plugin (from_fixture) breaks on this pytest version ("Function has no
    # _nodeid"), so drive its hypothesis strategies directly: one bounded run per operation,
    # auth state and generation mode.
    operations = [r.ok() for r in api_schema.get_all_operations()]
    assert len(operations) >= 9
    calls: dict[tuple[str, str], list[int]] = {}
    for operation in operations:
        for auth in ({}, {"Authorization": f"Bearer {TOKEN}"}):
            seen = calls.setdefault((operation.label, "token" if auth else "anonymous"), [])
            _fuzz(operation, GenerationMode.POSITIVE, auth, seen)
            try:
                _fuzz(operation, GenerationMode.NEGATIVE, auth, seen)
            except Unsatisfiable:  # no parameter or body to get wrong (GET /health)
                pass
    # every route was called both ways, and the token reached past the 401 of write routes
    assert all(codes for codes in calls.values()), calls
    for (label, who), codes in calls.items():
        if who == "token":
            assert any(c != 401 for c in codes), (label, codes)
