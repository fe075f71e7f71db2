"""Train one implicit-feedback recommender version (``retail-als``, ``retail-knn``) from a
purchases export: the time-holdout protocol of :mod:`featurestore.recsys.train`, handed back
as a :class:`~.local.TrainResult` (model file ``recommender.npz``)."""

from __future__ import annotations

from typing import Any

from .._exceptions import TrainingError
from .local import TrainResult, read_export_metadata
from .models import ModelSpec

__all__ = ["train_implicit", "holdout_result"]


def holdout_result(run: Any, filename: str) -> TrainResult:
    """A :class:`~featurestore.recsys.train.RecommenderRun` as the registry wants it."""
    return TrainResult(metrics=run.metrics, model_bytes=run.model_bytes,
                       model_filename=filename, params=run.params, details=run.details)


def train_implicit(spec: ModelSpec, export_url: str, *,
                   storage_options: dict[str, Any] | None = None, tune: bool = False,
                   holdout_days: int = 30, validation_days: int = 30,
                   seed: int = 0) -> TrainResult:
    """Train, judge on the time holdout and refit ``spec``'s algorithm.

    Args:
        spec: a model of kind ``implicit``.
        export_url: a ``purchases`` export (:func:`featurestore.training.export_purchases`).
        storage_options: fsspec options for the export.
        tune: search the larger hyperparameter grid.
        holdout_days: the test window (the last days of the export).
        validation_days: the validation window before it.
        seed: model and bootstrap seed.

    Returns:
        Holdout metrics, ``recommender.npz`` and the chosen hyperparameters.

    Raises:
        TrainingError: the export is not a purchases export, or spans too few days.
    """
    from ..recsys.artifact import FILENAME
    from ..recsys.data import purchases_from_transactions
    from ..recsys.train import train_recommender
    from ..training.purchases import read_purchases_export

    meta = read_export_metadata(export_url, storage_options)
    if meta.get("format") != "purchases":
        raise TrainingError(f"{export_url} is a {meta.get('format')!r} export; {spec.name} "
                            "needs format 'purchases' (featurestore.training.export_purchases)")
    purchases = purchases_from_transactions(read_purchases_export(export_url, storage_options))
    run = train_recommender(purchases, str(spec.algorithm), holdout_days=holdout_days,
                            validation_days=validation_days, tune=tune, seed=seed)
    return holdout_result(run, FILENAME)
