"""Contract suite of the ``TrainingBackend`` seam: every implementation runs it.

The built-in backends (local: real XGBoost; sagemaker: real SageMaker API calls against the moto
server, which completes jobs at once without metrics or artifacts) and one added by a test with
one class plus one registry line, as a user would.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from featurestore import ConfigError
from featurestore.plugins import TRAINING_BACKEND_CLASS_FOR_TYPE
from featurestore.retrain import new_job, registry, run_job
from featurestore.retrain.backends import TrainingBackend, backend_class
from featurestore.retrain.local import TrainResult, read_export_metadata
from featurestore.retrain.models import model_spec
from featurestore.settings import Settings
from featurestore.storage import Store
from tests import _retrain_fixtures as fx

ROLE = "arn:aws:iam::123456789012:role/featurestore-sagemaker"


class PositiveRateBackend:
    """A test backend: 'predicts' the training positive rate; metrics from the test split."""

    name: ClassVar[str] = "positive-rate"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def train(self, spec, export_url: str, *, storage_options: dict[str, Any] | None,
              tune: bool, job_id: str) -> TrainResult:
        from pathlib import Path

        lines = (Path(export_url) / "train" / "train.csv").read_text().splitlines()
        rate = float(np.mean([float(line.split(",", 1)[0]) for line in lines]))
        return TrainResult(metrics={"pr_auc": rate, "roc_auc": 0.5, "positive_rate": rate},
                           model_bytes=str(rate).encode(), model_filename="rate.txt",
                           params={"rate": rate})


@pytest.fixture()
def custom_backend(monkeypatch):
    monkeypatch.setitem(TRAINING_BACKEND_CLASS_FOR_TYPE, "positive-rate",
                        f"{__name__}.PositiveRateBackend")
    return "positive-rate"


@pytest.fixture(params=["local", "sagemaker", "custom", "dotted"])
def backend(request, tmp_path, monkeypatch) -> tuple[str, Settings]:
    settings = Settings(store=str(tmp_path / "store"))
    if request.param == "sagemaker":
        bucket = request.getfixturevalue("s3_bucket")
        settings = settings.model_copy(update=dict(
            sagemaker_role_arn=ROLE, sagemaker_s3_prefix=f"s3://{bucket}/sm",
            sagemaker_region="us-east-1", sagemaker_poll_seconds=0.05,
            sagemaker_timeout_seconds=30))
    name = {"custom": None, "dotted": f"{__name__}.PositiveRateBackend"}.get(
        request.param, request.param)
    if name is None:
        name = request.getfixturevalue("custom_backend")
    return name, settings


def test_backend_trains_and_registers_a_version(backend, tmp_path):
    name, settings = backend
    cls = backend_class(name)
    instance = cls(settings)
    assert isinstance(instance, TrainingBackend)
    export = fx.make_xgb_export(tmp_path / "xgb", rows=(600, 200, 200), seed=3)
    spec = model_spec("purchase-xgboost")
    result = instance.train(spec, str(export), storage_options=None, tune=False, job_id="j-1")
    assert isinstance(result, TrainResult) and isinstance(result.params, dict)
    assert all(isinstance(v, float) for v in result.metrics.values())
    # a model to load: bytes with a file name, or a remote artifact (moto gives none)
    assert (result.model_bytes and result.model_filename) or cls.name == "sagemaker"
    if cls.name != "sagemaker":  # moto's jobs report no metrics
        assert spec.primary_metric in result.metrics

    # the same backend through a real retrain job: registered with its name
    store = Store(settings.store)
    record = new_job(store, "purchase-xgboost", name, export_url=str(export))
    final = run_job(store, record["job_id"], settings)
    assert final["status"] == "completed", final["error"]
    version = registry.get_version(store, "purchase-xgboost", final["model_version"])
    assert version["backend"] == name
    assert read_export_metadata(str(export))["feature_names"] == version["features"]


def test_unknown_backend_is_one_clear_error(tmp_path):
    store = Store(str(tmp_path / "store"))
    with pytest.raises(ConfigError, match="unknown backend 'nope'"):
        new_job(store, "purchase-xgboost", "nope")
    with pytest.raises(ConfigError, match="cannot import"):
        new_job(store, "purchase-xgboost", "no_such_package.Backend")
