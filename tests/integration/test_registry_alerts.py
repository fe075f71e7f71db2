"""Registry versions, production pointer, promotion rule, alerts (HTTP receiver, moto SNS)."""

from __future__ import annotations

import uuid

import pytest

from featurestore.retrain import MODELS, new_job, registry, run_job
from featurestore.retrain.alerts import compare
from featurestore.settings import Settings
from featurestore.storage import Store
from tests import _retrain_fixtures as fx
from tests._receivers import SnsQueue, WebhookReceiver


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    good = fx.make_xgb_export(root / "good", seed=5)
    # Planted quality drop: same rows, informative columns shuffled away.
    bad = fx.make_xgb_export(root / "bad", seed=5, informative=False)
    return good, bad


def _run(store: Store, settings: Settings, export) -> dict:
    record = new_job(store, "purchase-xgboost", "local", export_url=str(export))
    return run_job(store, record["job_id"], settings)


def test_versions_production_and_alerts(tmp_path, exports, moto_server):
    good, bad = exports
    store = Store(str(tmp_path / "store"))
    sns = SnsQueue(f"alerts-{uuid.uuid4().hex[:8]}")
    with WebhookReceiver() as hook:
        settings = Settings(store=store.url, alert_webhook_url=hook.url,
                            alert_sns_topic_arn=sns.topic_arn, alert_threshold=0.1,
                            auto_promote=True)
        first = _run(store, settings, good)
        assert first["status"] == "completed", first["error"]
        assert first["model_version"] == "v0001"
        assert registry.production_version(store, "purchase-xgboost") == "v0001"

        # Unchanged model (same export, deterministic training): no alert, no promotion.
        second = _run(store, settings, good)
        assert second["status"] == "completed", second["error"]
        assert second["metrics"]["pr_auc"] == pytest.approx(first["metrics"]["pr_auc"])
        assert second["alert"]["alert"] is False
        assert second["alert"]["promoted"] is False
        assert hook.received == [] and sns.messages() == []

        # Planted drop: the informative features are noise -> PR-AUC collapses -> alert.
        third = _run(store, settings, bad)
        assert third["status"] == "completed", third["error"]
        assert third["metrics"]["pr_auc"] < 0.8 * first["metrics"]["pr_auc"]
        assert third["alert"]["alert"] is True and third["alert"]["direction"] == "worse"
        assert third["alert"]["promoted"] is False
        # the noise model is also below the baseline gate (issue #30): that is a second,
        # separate notice; the metric-change alert is one
        changes = [r for r in hook.received if r["json"]["event"] == "model_metric_change"]
        below = [r for r in hook.received if r["json"]["event"] == "model_below_baseline"]
        assert len(changes) == 1 and len(hook.received) == 1 + len(below)
        assert third["alert"]["below_baseline"] is not None
        assert (len(below) == 1) and below[0]["json"]["reason"] == third["alert"]["below_baseline"]
        sent = changes[0]
        assert sent["path"] == "/hook" and sent["content_type"] == "application/json"
        body = sent["json"]
        assert body["model"] == "purchase-xgboost" and body["version"] == "v0003"
        assert body["production_version"] == "v0001"
        assert body["new_value"] == pytest.approx(third["metrics"]["pr_auc"])
        expected_rel = (third["metrics"]["pr_auc"] - first["metrics"]["pr_auc"]) / \
            first["metrics"]["pr_auc"]
        assert body["relative_change"] == pytest.approx(expected_rel)
        messages = [m for m in sns.messages() if m["message"]["event"] == "model_metric_change"]
        assert len(messages) == 1 and messages[0]["message"]["version"] == "v0003"
        assert "purchase-xgboost" in messages[0]["subject"]
        assert third["alert"]["notified"]["webhook"]["ok"] is True
        assert third["alert"]["notified"]["sns"]["ok"] is True

    # Registry contents.
    summary = registry.model_summary(store, "purchase-xgboost")
    assert [v["version"] for v in summary["versions"]] == ["v0001", "v0002", "v0003"]
    assert summary["production"] == "v0001"
    assert [v["production"] for v in summary["versions"]] == [True, False, False]
    v1 = registry.get_version(store, "purchase-xgboost", "v0001")
    assert v1["features"] == fx.FEATURES
    assert v1["training_set"]["url"] == str(good)
    assert v1["training_set"]["metadata"]["format"] == "xgboost-csv"
    assert store.exists("_models", "purchase-xgboost", "v0001", "model.json")
    assert v1["metrics"] == first["metrics"]
    assert registry.list_models(store) == ["purchase-xgboost"]
    # Manual promotion moves the pointer and remembers the previous one.
    rec = registry.promote(store, "purchase-xgboost", "v0002")
    assert rec["previous"] == "v0001"
    assert registry.production_version(store, "purchase-xgboost") == "v0002"
    with pytest.raises(registry.NotFoundError):
        registry.promote(store, "purchase-xgboost", "v0099")


def test_auto_promote_if_better_and_manual_rule(tmp_path, exports):
    good, bad = exports
    store = Store(str(tmp_path / "store"))
    settings = Settings(store=store.url, alert_threshold=0.1, auto_promote=True)
    # a first version no better than chance is registered, not promoted (issue #30)
    noise = _run(store, settings, bad)
    assert noise["model_version"] == "v0001" and noise["alert"]["promoted"] is False
    assert "chance" in noise["alert"]["not_promoted_reason"] or \
        "random ranking" in noise["alert"]["not_promoted_reason"]
    assert registry.production_version(store, "purchase-xgboost") is None
    weak = fx.make_xgb_export(tmp_path / "weak", seed=5, rows=(1500, 500, 3000))
    assert _run(store, settings, weak)["alert"]["promoted"] is True  # first real model
    better = _run(store, settings, good)
    # better than production on the point value: promoted (whether the change is large
    # enough to alert is test_compare_direction_and_threshold's)
    assert better["alert"]["direction"] == "better"
    assert better["alert"]["promoted"] is True  # no webhook configured: nothing sent, no error
    if better["alert"]["alert"]:  # no webhook configured: nothing sent, no error
        assert better["alert"]["notified"] == {}
    assert registry.production_version(store, "purchase-xgboost") == "v0003"
    manual = Settings(store=store.url, auto_promote=False)
    worse = _run(store, manual, bad)
    assert worse["alert"]["promoted"] is False
    assert registry.production_version(store, "purchase-xgboost") == "v0003"


@pytest.mark.parametrize(("model", "old", "new", "alert", "better"), [
    ("purchase-xgboost", 0.30, 0.30, False, False),
    ("purchase-xgboost", 0.30, 0.31, False, True),  # +3.3% < 5%
    ("purchase-xgboost", 0.30, 0.20, True, False),
    ("retail-fm", 1.00, 0.80, True, True),  # lower RMSE is better
    ("retail-fm", 1.00, 1.20, True, False),
])
def test_compare_direction_and_threshold(model, old, new, alert, better):
    metric = MODELS[model].primary_metric
    out = compare(MODELS[model], {metric: new}, {metric: old}, threshold=0.05)
    assert out["alert"] is alert and out["better"] is better
    assert out["relative_change"] == pytest.approx((new - old) / old)


def test_compare_without_production_or_metric():
    assert compare(MODELS["retail-fm"], {"rmse": 1.0}, None, 0.05)["alert"] is False
    assert compare(MODELS["retail-fm"], {}, {"rmse": 1.0}, 0.05)["better"] is None


def test_fm_job_registry_and_rmse_rule(tmp_path):
    """retail-fm through a job: model.npz in the registry; lower RMSE wins promotion."""
    store = Store(str(tmp_path / "store"))
    settings = Settings(store=store.url, alert_threshold=0.1)
    small = fx.make_fm_export(tmp_path / "small", seed=3, per_customer=6)  # too little data
    full = fx.make_fm_export(tmp_path / "full", seed=3, per_customer=40)
    jobs = []
    for export in (small, full):
        record = new_job(store, "retail-fm", "local", export_url=str(export))
        jobs.append(run_job(store, record["job_id"], settings))
    assert [j["status"] for j in jobs] == ["completed", "completed"], jobs[0]["error"]
    assert jobs[1]["metrics"]["rmse"] < jobs[0]["metrics"]["rmse"]
    assert jobs[1]["alert"]["direction"] == "better" and jobs[1]["alert"]["promoted"] is True
    assert registry.production_version(store, "retail-fm") == "v0002"
    assert store.exists("_models", "retail-fm", "v0002", "model.npz")
    assert registry.get_version(store, "retail-fm", "v0002")["features"] == [
        "block:customer_id", "block:stock_code"]
