"""End to end: generate -> ingest -> materialize -> training set -> local retrain -> registry
-> alert on a planted quality drop (and none for an unchanged model).

Guarded until the features/training branches are merged (the lead removes the guard).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

features = pytest.importorskip("featurestore.features")
training = pytest.importorskip("featurestore.training")

from featurestore.generate import generate_weblog  # noqa: E402
from featurestore.ingest import ingest_weblog  # noqa: E402
from featurestore.retrain import new_job, registry, run_job  # noqa: E402
from featurestore.settings import Settings  # noqa: E402
from featurestore.storage import Store  # noqa: E402
from tests._receivers import WebhookReceiver  # noqa: E402

pytestmark = pytest.mark.slow


def _shuffled_labels_copy(src, dest) -> None:
    """The planted drop: the same export with the training labels permuted."""
    import shutil

    shutil.copytree(src, dest)
    train = pd.read_csv(dest / "train" / "train.csv", header=None)
    train[0] = np.random.default_rng(0).permutation(train[0].to_numpy())
    train.to_csv(dest / "train" / "train.csv", header=False, index=False)


def test_generate_to_alert(tmp_path, client):
    raw = tmp_path / "raw"
    generate_weblog(str(raw), days=45, customers=1500, products=40, rows_per_day=3000,
                    parts=1, seed=21, columns=60)
    store = Store(str(tmp_path / "store"))
    report = ingest_weblog(str(raw), store, client=client)
    assert report.ok and report.files_ingested == 45
    features.materialize(store, client=client)
    assert store.partitions("customer_features", "as_of")

    export_url = str(tmp_path / "export")
    result = training.export_xgboost(store, export_url, client=client)
    meta = json.loads((tmp_path / "export" / "metadata.json").read_text())
    assert meta["format"] == "xgboost-csv" and meta["rows"]["test"] > 0
    assert result.metadata == meta

    with WebhookReceiver() as hook:
        settings = Settings(store=store.url, alert_webhook_url=hook.url, alert_threshold=0.1)
        first = run_job(store, new_job(store, "purchase-xgboost", "local",
                                       export_url=export_url)["job_id"], settings)
        assert first["status"] == "completed", first["error"]
        m = first["metrics"]
        # The generator plants a purchase signal: the classifier must beat the base rate.
        assert m["pr_auc"] >= 5 * m["positive_rate"], m
        assert registry.production_version(store, "purchase-xgboost") == "v0001"

        same = run_job(store, new_job(store, "purchase-xgboost", "local",
                                      export_url=export_url)["job_id"], settings)
        assert same["alert"]["alert"] is False and hook.received == []

        bad_dir = tmp_path / "export-shuffled"
        _shuffled_labels_copy(tmp_path / "export", bad_dir)
        bad = run_job(store, new_job(store, "purchase-xgboost", "local",
                                     export_url=str(bad_dir))["job_id"], settings)
        assert bad["status"] == "completed", bad["error"]
        assert bad["alert"]["alert"] is True and bad["alert"]["direction"] == "worse"
        assert [h["json"]["version"] for h in hook.received] == ["v0003"]
    assert registry.production_version(store, "purchase-xgboost") == "v0001"
