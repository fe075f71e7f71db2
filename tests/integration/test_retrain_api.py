"""Retrain + models API through a real uvicorn server, and the CLI twins."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from featurestore.retrain import wait_for
from featurestore.storage import Store
from tests import _retrain_fixtures as fx
from tests.serving_helpers import serve_subprocess

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token-123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tmp_path_factory.mktemp("api") / "store"
    # exports built by the fixtures live outside the store: allow them as an input prefix
    prefixes = json.dumps([str(tmp_path_factory.getbasetemp())])
    with serve_subprocess({"FEATURESTORE_STORE": str(store), "FEATURESTORE_API_TOKEN": TOKEN,
                           "FEATURESTORE_EXPORT_INPUT_PREFIXES": prefixes}) as base:
        yield base, Store(str(store))


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return fx.make_xgb_export(tmp_path_factory.mktemp("exp") / "xgb", seed=7)


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_post_retrain_requires_token(server):
    base, _ = server
    body = {"model": "purchase-xgboost", "backend": "local"}
    assert httpx.post(f"{base}/retrain", json=body).status_code == 401
    r = httpx.post(f"{base}/retrain", json=body, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and "token" in r.json()["detail"]


def test_retrain_job_lifecycle_and_models(server, export):
    base, store = server
    r = httpx.post(f"{base}/retrain", headers=_auth(),
                   json={"model": "purchase-xgboost", "backend": "local", "tune": False,
                         "export_url": str(export)})
    assert r.status_code == 202
    accepted = r.json()
    assert accepted["status"] == "queued" and accepted["job_id"].startswith("purchase-xgboost-")
    job_id = accepted["job_id"]
    deadline = time.monotonic() + 120
    while True:
        job = httpx.get(f"{base}/retrain/{job_id}").json()
        if job["status"] in ("completed", "failed") or time.monotonic() > deadline:
            break
        assert job["status"] in ("queued", "running")
        time.sleep(0.3)
    assert job["status"] == "completed", job["error"]
    assert job["error"] is None and job["model"] == "purchase-xgboost"
    assert job["backend"] == "local"
    m = job["metrics"]
    assert {"pr_auc", "roc_auc", "positive_rate", "recall_at_top_1pct"} <= set(m)
    assert m["pr_auc"] >= 5 * m["positive_rate"]
    assert job["submitted_at"] <= job["started_at"] <= job["finished_at"]
    assert job["model_version"] == "v0001" and job["artifact"] is None  # anonymous: no paths
    job = httpx.get(f"{base}/retrain/{job_id}", headers=_auth()).json()
    assert job["artifact"].endswith("model.json")
    assert Path(job["artifact"]).is_file()
    # The record in the store is what the API serves (readable from this other process).
    assert wait_for(store, job_id, timeout=5)["metrics"] == m

    models = httpx.get(f"{base}/models").json()["models"]
    assert [x["name"] for x in models] == ["purchase-xgboost"]
    detail = httpx.get(f"{base}/models/purchase-xgboost").json()
    assert detail["production"] == "v0001"
    assert detail["versions"][0]["metrics"] == m and detail["versions"][0]["production"]


def test_retrain_errors_are_json(server):
    base, _ = server
    r = httpx.get(f"{base}/retrain/nope-123")
    assert r.status_code == 404 and "nope-123" in r.json()["detail"]
    r = httpx.get(f"{base}/models/unknown-model")
    assert r.status_code == 404 and "unknown-model" in r.json()["detail"]
    r = httpx.post(f"{base}/retrain", headers=_auth(), json={"model": "nope"})
    assert r.status_code == 422 and "model" in r.json()["detail"]
    r = httpx.post(f"{base}/retrain", headers=_auth(),
                   json={"model": "retail-fm", "as_of": "not-a-date"})
    assert r.status_code == 422


def test_failed_job_reports_error(server, tmp_path):
    base, _ = server
    r = httpx.post(f"{base}/retrain", headers=_auth(),
                   json={"model": "purchase-xgboost", "export_url": str(tmp_path / "missing")})
    job_id = r.json()["job_id"]
    for _ in range(100):
        job = httpx.get(f"{base}/retrain/{job_id}").json()
        if job["status"] == "failed":
            break
        time.sleep(0.2)
    assert job["status"] == "failed" and "metadata.json" in job["error"]


def _cli(*args: str, store: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "featurestore", *args, "--store", str(store)],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=240)


def _run(*args: str, store: Path) -> subprocess.CompletedProcess:
    """The same command in process (what it prints and returns; no interpreter start)."""
    from tests._generated_store import cli_in_process

    return cli_in_process(*args, "--store", str(store), check=False)


def test_cli_retrain_and_models(tmp_path, export):
    store = tmp_path / "store"
    r = _run("retrain", "--model", "purchase-xgboost", "--export-url", str(export), "--wait",
             "--json", store=store)
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    assert job["status"] == "completed" and job["model_version"] == "v0001"
    # Without --wait: returns at once with a queued job that a detached worker runs (a
    # process of its own, so the command runs in a subprocess)
    r = _cli("retrain", "--model", "purchase-xgboost", "--export-url", str(export), "--json",
             store=store)
    assert r.returncode == 0, r.stderr
    queued = json.loads(r.stdout)
    assert queued["status"] == "queued"
    final = wait_for(Store(str(store)), queued["job_id"], timeout=180)
    assert final["status"] == "completed" and final["model_version"] == "v0002"
    r = _run("models", "purchase-xgboost", "--json", store=store)
    summary = json.loads(r.stdout)
    assert [v["version"] for v in summary["versions"]] == ["v0001", "v0002"]
    assert summary["production"] == "v0001"  # identical metrics: not better, not promoted
    r = _run("models", store=store)
    assert r.returncode == 0 and "* v0001" in r.stdout and "pr_auc=" in r.stdout
    r = _run("models", "purchase-xgboost", "--promote", "v0002", store=store)
    assert r.returncode == 0, r.stderr
    assert json.loads(_run("models", "--json", store=store).stdout)["models"][0][
        "production"] == "v0002"
    r = _run("models", "nope", store=store)
    assert r.returncode == 2 and "nope" in r.stderr
