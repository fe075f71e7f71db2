"""Batch predictions (issue #17 item 1): ``featurestore predict`` scores every customer of the
as-of snapshot once with the production version, equal to the model's own predict, exactly
once per (version, as-of); ``GET /customers/{id}/predictions`` serves the latest scores and
swaps in a rewrite; ``run-daily`` scores on its schedule.

Real pieces: generated drops ingested by ``FeatureStore.ingest`` on the session LocalCluster, a
local retrain job registering a real XGBoost model (trained on a synthetic export with the
store's feature names), the CLI in process (``featurestore.cli.main``) and as a subprocess,
and a real uvicorn server.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from featurestore import FeatureStore, Settings
from featurestore.cli import main as cli
from featurestore.generations import read_generations
from featurestore.retrain import new_job, registry, run_job
from featurestore.retrain.daily import predict_due
from featurestore.storage import Store
from tests._retrain_fixtures import FEATURES, make_xgb_export
from tests.serving_helpers import serve

ROOT = Path(__file__).resolve().parents[2]
MODEL = "purchase-xgboost"


def _train(store: Store, export: Path, seed: int = 0) -> str:
    """A real local retrain job on a synthetic export; returns the registered version."""
    if not export.exists():
        make_xgb_export(export, seed=seed, rows=(3000, 1000, 1000))
    record = run_job(store, new_job(store, MODEL, "local", export_url=str(export))["job_id"],
                     Settings(store=store.url))
    assert record["status"] == "completed", record["error"]
    return record["model_version"]


@pytest.fixture(scope="module")
def ingested(ingested_drops):
    """A store with the generated drops ingested and materialized (read-only: copy to mutate;
    shared with the SageMaker predictions module)."""
    return ingested_drops


@pytest.fixture()
def store(ingested, tmp_path):
    import shutil

    shutil.copytree(ingested.url, tmp_path / "store")
    return Store(str(tmp_path / "store"))


def _cli(store: Store, client, *args: str) -> int:
    return cli(["predict", "--store", store.url, "--scheduler", client.scheduler.address,
                *args])


def _own_predict(store: Store, version: str, as_of: str) -> pd.Series:
    """The registered model's own predict on the snapshot's rows, read independently."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(registry.load_model_bytes(store, MODEL, version)))
    rows = pd.read_parquet(store.path("customer_features", f"as_of={as_of}"))
    x = rows[FEATURES].astype("float64").to_numpy()
    best = int(registry.get_version(store, MODEL, version)["metrics"]["best_iteration"])
    scores = booster.predict(xgb.DMatrix(x, missing=np.nan, feature_names=FEATURES),
                             iteration_range=(0, best + 1))
    return pd.Series(scores, index=rows["customer_id"].astype(str))


def _predictions(store: Store, as_of: str) -> pd.DataFrame:
    return pd.read_parquet(store.path("predictions", f"model={MODEL}", f"as_of={as_of}"))


def test_every_customer_scored_once_equal_to_the_models_predict(store, client, tmp_path,
                                                                capsys):
    version = _train(store, tmp_path / "export")
    assert _cli(store, client) == 0
    as_of = store.partitions("customer_features", "as_of")[-1]
    assert f"as_of={as_of}" in capsys.readouterr().out

    got = _predictions(store, as_of)
    expected = _own_predict(store, version, as_of)
    assert list(got.columns) == ["customer_id", "score", "rank", "model_version"]
    assert got["customer_id"].is_unique and set(got["customer_id"]) == set(expected.index)
    assert sorted(got["rank"]) == list(range(1, len(expected) + 1))
    assert (got["model_version"] == version).all()
    np.testing.assert_allclose(got.set_index("customer_id")["score"].loc[expected.index],
                               expected.to_numpy(), rtol=1e-6)
    best = got.sort_values("rank")["score"].to_numpy()
    assert (np.diff(best) <= 0).all()  # rank 1 = the most likely
    # readable like every table of the store (hive partitions)
    assert set(pd.read_parquet(store.path("predictions"))["model"]) == {MODEL}


def test_rerun_writes_nothing_new_and_a_new_version_rewrites(store, client, tmp_path, capsys):
    _train(store, tmp_path / "export")
    assert _cli(store, client) == 0
    as_of = store.partitions("customer_features", "as_of")[-1]
    part = Path(store.path("predictions", f"model={MODEL}", f"as_of={as_of}",
                           "part-0.parquet"))
    before = (part.read_bytes(), part.stat().st_mtime_ns, read_generations(store))
    record = store.read_json("_state", "predictions", f"{MODEL}.json")
    capsys.readouterr()

    assert _cli(store, client, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "skipped" and out["model_version"] == "v0001"
    assert (part.read_bytes(), part.stat().st_mtime_ns, read_generations(store)) == before
    assert store.read_json("_state", "predictions", f"{MODEL}.json") == record

    # a new production version scores the same as-of again, once, with a new generation
    v2 = _train(store, tmp_path / "export2", seed=1)
    registry.promote(store, MODEL, v2)
    assert _cli(store, client, "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "written" and out["model_version"] == v2
    assert set(_predictions(store, as_of)["model_version"]) == {v2}
    gen = read_generations(store)[f"predictions/model={MODEL}"][as_of]
    assert gen > before[2][f"predictions/model={MODEL}"][as_of]


def test_a_crashed_run_is_redone_not_skipped(store, client, tmp_path):
    """Crash between the publish and the commit record: a partition without its record (here
    a torn file, as a crash on a store without atomic rename could leave) is scored again."""
    version = _train(store, tmp_path / "export")
    as_of = store.partitions("customer_features", "as_of")[0]
    folder = store.path("predictions", f"model={MODEL}", f"as_of={as_of}")
    os.makedirs(folder)
    Path(folder, "part-0.parquet").write_bytes(b"PAR1 torn")
    assert _cli(store, client, "--as-of", as_of) == 0
    got = _predictions(store, as_of)
    assert len(got) == len(_own_predict(store, version, as_of))
    assert store.read_json("_state", "predictions", f"{MODEL}.json")["runs"][as_of][
        "model_version"] == version


def test_no_production_version_is_one_line_and_exit_1(store):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "featurestore", "predict", "--store",
                           store.url, "--workers", "1"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr
    assert lines[-1].startswith("featurestore predict: error: model 'purchase-xgboost' has "
                                "no production version"), proc.stderr
    assert not store.exists("predictions")


def test_api_serves_latest_scores_and_swaps_a_rewrite(store, client, tmp_path):
    from api.main import create_app

    _train(store, tmp_path / "export")
    app = create_app(Settings(store=store.url, snapshot_poll_seconds=0.0))
    with serve(app, ready_path="/health") as base:
        assert httpx.get(f"{base}/customers/C1/predictions").status_code == 404  # none yet
        assert _cli(store, client) == 0
        as_of = store.partitions("customer_features", "as_of")[-1]
        got = _predictions(store, as_of).iloc[3]
        r = httpx.get(f"{base}/customers/{got['customer_id']}/predictions")
        assert r.status_code == 200
        assert r.json() == {"customer_id": got["customer_id"], "model": MODEL,
                            "model_version": "v0001", "as_of": as_of,
                            "score": pytest.approx(float(got["score"])),
                            "rank": int(got["rank"])}
        missing = httpx.get(f"{base}/customers/nobody/predictions")
        assert missing.status_code == 404 and "nobody" in missing.json()["detail"]
        assert httpx.get(f"{base}/customers/C1/predictions?model=../x").status_code == 404

        v2 = _train(store, tmp_path / "export2", seed=1)
        registry.promote(store, MODEL, v2)
        assert _cli(store, client) == 0
        r = httpx.get(f"{base}/customers/{got['customer_id']}/predictions")
        assert r.json()["model_version"] == v2  # the rewrite is swapped in


def test_scores_are_served_right_after_predict_and_the_export_url_is_absolute(
        store, client, tmp_path, monkeypatch):
    """issue #30: after ``featurestore predict`` the API kept answering "no predictions yet"
    for up to a poll interval; and the registry recorded a relative export URL."""
    from api.main import create_app

    make_xgb_export(tmp_path / "export", seed=0, rows=(3000, 1000, 1000))
    monkeypatch.chdir(tmp_path)
    record = run_job(store, new_job(store, MODEL, "local", export_url="export")["job_id"],
                     Settings(store=store.url))
    assert record["status"] == "completed", record["error"]
    version = registry.get_version(store, MODEL, record["model_version"])
    assert version["training_set"]["url"] == str(tmp_path / "export")  # not "export"
    registry.promote(store, MODEL, record["model_version"])
    app = create_app(Settings(store=store.url, snapshot_poll_seconds=3600))  # one poll an hour
    with serve(app, ready_path="/health") as base:
        missing = httpx.get(f"{base}/customers/C000001/predictions")
        assert missing.status_code == 404 and "no predictions" in missing.json()["detail"]
        assert _cli(store, client) == 0
        as_of = store.partitions("customer_features", "as_of")[-1]
        got = _predictions(store, as_of).iloc[0]
        r = httpx.get(f"{base}/customers/{got['customer_id']}/predictions")
        assert r.status_code == 200, r.text  # at once, not an hour later
        assert r.json()["score"] == pytest.approx(float(got["score"]))


@pytest.mark.parametrize(("schedule", "today", "due"), [
    ("daily", dt.date(2026, 3, 4), True), ("never", dt.date(2026, 3, 2), False),
    ("weekly", dt.date(2026, 3, 2), True), ("weekly", dt.date(2026, 3, 3), False),
    ("monthly", dt.date(2026, 3, 1), True), ("monthly", dt.date(2026, 3, 2), False)])
def test_predict_schedule(schedule, today, due):
    assert predict_due(schedule, today, weekday=0) is due  # 2026-03-02 is a Monday


def test_run_daily_scores_after_ingest(tmp_path, drops_copy, client):
    """run-daily with a production model: ingest, then the latest snapshot is scored."""
    raw, _ = drops_copy
    store = Store(str(tmp_path / "store"))
    _train(store, tmp_path / "export")
    fs = FeatureStore(Settings(store=store.url, predict_schedule="daily"), client=client)
    report = fs.run_daily(str(raw), today=dt.date(2026, 3, 3))
    assert report["ok"], report
    [scored] = report["predict"]
    as_of = store.partitions("customer_features", "as_of")[-1]
    assert scored["status"] == "written" and scored["as_of"] == as_of
    assert len(_predictions(store, as_of)) == scored["rows"] > 0
