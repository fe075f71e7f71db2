"""End to end: generate -> ingest -> materialize -> training set -> local retrain -> registry
-> alert on a planted quality drop (and none for an unchanged model).
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

import featurestore.training as training
from featurestore.generate import generate_weblog
from featurestore.materialization import materialize
from featurestore.retrain import new_job, registry, run_job
from featurestore.settings import Settings
from featurestore.sources.weblog.ingest import ingest_weblog
from featurestore.storage import Store
from tests._receivers import WebhookReceiver

pytestmark = pytest.mark.slow


def _planted_drop_copy(src, dest) -> None:
    """The planted drop: the same export with every training feature value shuffled across
    rows (labels kept), so the model can learn nothing and scores like the base rate."""
    import shutil

    shutil.copytree(src, dest)
    train = pd.read_csv(dest / "train" / "train.csv", header=None)
    rng = np.random.default_rng(0)
    for col in train.columns[1:]:
        train[col] = rng.permutation(train[col].to_numpy())
    train.to_csv(dest / "train" / "train.csv", header=False, index=False)


def test_generate_to_alert(tmp_path, client):
    raw = tmp_path / "raw"
    # 75 days: as-of dates from day 30 (full 30-day windows) with 30 days of labels after.
    generate_weblog(str(raw), days=75, customers=4000, products=40, rows_per_day=4000,
                    parts=1, seed=21, columns=60)
    store = Store(str(tmp_path / "store"))
    report = ingest_weblog(str(raw), store, client=client)
    assert report.ok and report.files_ingested == 75
    materialize(store, client=client)
    assert store.partitions("customer_features", "as_of")

    export_url = str(tmp_path / "export")
    # Short purge gap so this small run keeps several as-of dates per split.
    # The time policy: the 7.5x figure of docs/retraining.md was measured with it.
    result = training.export_xgboost(store, export_url, client=client, gap_days=7,
                                     split=(0.6, 0.2, 0.2), start=dt.date(2026, 1, 30),
                                     split_policy="time")
    meta = json.loads((tmp_path / "export" / "metadata.json").read_text())
    assert meta["format"] == "xgboost-csv" and meta["rows"]["test"] > 0
    assert result.metadata == meta

    with WebhookReceiver() as hook:
        settings = Settings(store=store.url, alert_webhook_url=hook.url, alert_threshold=0.1)
        first = run_job(store, new_job(store, "purchase-xgboost", "local",
                                       export_url=export_url)["job_id"], settings)
        assert first["status"] == "completed", first["error"]
        m = first["metrics"]
        # The generator plants a purchase signal; the issue asks PR-AUC >= 5x the base rate
        # on generated data (measured ~7.5x at this size and seed).
        assert m["pr_auc"] >= 5 * m["positive_rate"], m
        assert registry.production_version(store, "purchase-xgboost") == "v0001"

        same = run_job(store, new_job(store, "purchase-xgboost", "local",
                                      export_url=export_url)["job_id"], settings)
        assert same["alert"]["alert"] is False and hook.received == []

        bad_dir = tmp_path / "export-dropped"
        _planted_drop_copy(tmp_path / "export", bad_dir)
        bad = run_job(store, new_job(store, "purchase-xgboost", "local",
                                     export_url=str(bad_dir))["job_id"], settings)
        assert bad["status"] == "completed", bad["error"]
        assert bad["alert"]["alert"] is True and bad["alert"]["direction"] == "worse"
        # one metric-change alert (and, for a model the drop left near chance, the separate
        # model_below_baseline notice of issue #30's gate, also for v0003)
        changes = [h for h in hook.received if h["json"]["event"] == "model_metric_change"]
        assert [h["json"]["version"] for h in changes] == ["v0003"]
        assert {h["json"]["version"] for h in hook.received} == {"v0003"}
    assert registry.production_version(store, "purchase-xgboost") == "v0001"
