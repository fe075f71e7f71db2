"""The ``TrainingBackend`` seam: where a retrain job trains its model.

A backend is built from the settings and trains one model from an export (the XGBoost CSV
layout or the FM recordIO layout, :mod:`featurestore.training`), returning a
:class:`~featurestore.retrain.local.TrainResult` that the job registers. Built-in backends are
named in :data:`featurestore.plugins.TRAINING_BACKEND_CLASS_FOR_TYPE`; any other is chosen by
its dotted class path. Every implementation runs the contract suite in
``tests/contract/test_training_backend.py``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from ..plugins import TRAINING_BACKEND_CLASS_FOR_TYPE, load_class
from ..settings import Settings
from .local import TrainResult
from .models import ModelSpec

__all__ = ["TrainingBackend", "LocalBackend", "SageMakerBackend", "backend_class"]


@runtime_checkable
class TrainingBackend(Protocol):
    """Trains one model version from an export."""

    #: Short name recorded in the job and the version (``local``, ``sagemaker``).
    name: ClassVar[str]

    def __init__(self, settings: Settings) -> None: ...

    def train(self, spec: ModelSpec, export_url: str, *,
              storage_options: dict[str, Any] | None, tune: bool, job_id: str) -> TrainResult:
        """Train ``spec`` on the export at ``export_url``.

        Args:
            spec: the model (its kind says which export layout ``export_url`` holds).
            export_url: the export folder (local path or fsspec URL).
            storage_options: fsspec options for ``export_url``.
            tune: run a hyper-parameter search instead of one training.
            job_id: the retrain job, for naming remote jobs.

        Returns:
            Held-out metrics, the model (bytes or a remote artifact) and how it was trained.
        """
        ...


class LocalBackend:
    """XGBoost and the numpy FM, trained in this process (:mod:`.local`)."""

    name: ClassVar[str] = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def train(self, spec: ModelSpec, export_url: str, *,
              storage_options: dict[str, Any] | None, tune: bool, job_id: str) -> TrainResult:
        from . import local

        if spec.kind == "implicit":
            from .recommender import train_implicit

            return train_implicit(
                spec, export_url, storage_options=storage_options, tune=tune,
                holdout_days=self.settings.recommendation_holdout_days,
                validation_days=self.settings.recommendation_validation_days)
        if spec.kind == "fm":
            return local.train_fm(export_url, storage_options=storage_options, tune=tune,
                                  holdout_days=self.settings.recommendation_holdout_days,
                                  validation_days=self.settings.recommendation_validation_days)
        return local.train_xgboost(export_url, storage_options=storage_options, tune=tune)


class SageMakerBackend:
    """SageMaker training (or tuning) jobs through boto3 (:mod:`.sagemaker_backend`)."""

    name: ClassVar[str] = "sagemaker"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def train(self, spec: ModelSpec, export_url: str, *,
              storage_options: dict[str, Any] | None, tune: bool, job_id: str) -> TrainResult:
        from . import sagemaker_backend

        return sagemaker_backend.train(spec, export_url, settings=self.settings,
                                       storage_options=storage_options, tune=tune,
                                       job_id=job_id)


def backend_class(name: str) -> type[TrainingBackend]:
    """The backend class named ``name`` (a registered name or a dotted class path).

    Raises:
        ConfigError: unknown name, or a path that does not import.
    """
    return load_class(name, TRAINING_BACKEND_CLASS_FOR_TYPE, "training backend")
