"""A version worse than the trivial baseline is never auto-promoted: the real CLI with the local
backend, an alert to a real webhook receiver, the job record saying why (issue #16)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from featurestore.retrain import registry
from featurestore.storage import Store
from tests import _retrain_fixtures as fx
from tests._generated_store import cli_in_process
from tests._receivers import WebhookReceiver


def _inverted(good: Path, out: Path) -> Path:
    """The good export with its held-out labels flipped: the model learns the real signal, so
    on this test split it ranks exactly backwards (ROC-AUC = 1 - the good model's)."""
    shutil.copytree(good, out)
    test = out / "test" / "test.csv"
    lines = test.read_text().splitlines()
    test.write_text("".join(f"{1 - int(line[0])}{line[1:]}\n" for line in lines))
    return out


def _retrain(store: Path, export: Path, hook_url: str) -> subprocess.CompletedProcess:
    """``featurestore retrain ... --wait --json`` in process (what it prints and returns)."""
    return cli_in_process("retrain", "--store", str(store), "--model", "purchase-xgboost",
                          "--backend", "local", "--export-url", str(export), "--wait", "--json",
                          check=False, FEATURESTORE_ALERT_WEBHOOK_URL=hook_url)


def test_worse_than_chance_is_never_promoted(tmp_path):
    good = fx.make_xgb_export(tmp_path / "good", seed=5)
    bad = _inverted(good, tmp_path / "inverted")
    store = tmp_path / "store"
    with WebhookReceiver() as hook:
        r = _retrain(store, bad, hook.url)
        assert r.returncode == 0, r.stderr  # the job itself completed
        job = json.loads(r.stdout)
        auc = job["metrics"]["roc_auc"]
        assert auc < 0.5
        # independent check: the held-out labels really are anti-correlated with the signal
        y = np.array([int(line[0]) for line in (bad / "test" / "test.csv").read_text()
                      .splitlines()])
        x = np.array([float(line.split(",")[7] or 0) for line in (bad / "test" / "test.csv")
                      .read_text().splitlines()])  # cart_adds_7d, the planted driver
        assert roc_auc_score(y, x) < 0.5
        assert job["alert"]["promoted"] is False
        assert job["alert"]["not_promoted_reason"] == (
            f"held-out roc_auc {auc:.4f} <= 0.5: no better than chance (the trivial baseline)")
        assert registry.production_version(Store(str(store)), "purchase-xgboost") is None
        sent = [h["json"] for h in hook.received if h["json"]["event"] == "model_below_baseline"]
        assert len(sent) == 1 and sent[0]["version"] == job["model_version"]
        assert sent[0]["reason"] == job["alert"]["not_promoted_reason"]

        # The human summary says it too, and a good model afterwards becomes production.
        r2 = cli_in_process("retrain", "--store", str(store), "--model", "purchase-xgboost",
                            "--export-url", str(good), "--wait", check=False)
        assert r2.returncode == 0, r2.stderr
        lines = r2.stdout.splitlines()
        assert lines[0] == f"store: {store}"
        assert lines[-1].endswith("; promoted to production"), lines
        assert registry.production_version(Store(str(store)), "purchase-xgboost") == "v0002"
    assert len([h for h in hook.received if h["json"]["event"] == "model_below_baseline"]) == 1
