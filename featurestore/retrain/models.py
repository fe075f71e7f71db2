"""The models the store knows how to retrain, and how each one is judged."""

from __future__ import annotations

from dataclasses import dataclass

from .._exceptions import NotFoundError, clip

__all__ = ["ModelSpec", "MODELS", "model_spec"]


@dataclass(frozen=True)
class ModelSpec:
    """A trainable model: which export feeds it and which metric decides promotion/alerts."""

    name: str
    kind: str  # "xgboost" | "fm" | "implicit"
    export: str  # function name in featurestore.training
    primary_metric: str
    higher_is_better: bool
    algorithm: str | None = None  # for kind "implicit": featurestore.recsys.algorithms

    @property
    def recommender(self) -> bool:
        """Whether versions serve recommendations (judged on the time holdout, #29)."""
        return self.kind in ("fm", "implicit")


MODELS: dict[str, ModelSpec] = {
    "purchase-xgboost": ModelSpec("purchase-xgboost", "xgboost", "export_xgboost", "pr_auc", True),
    # The FM is trained as a binary classifier on a time split since #29; its versions are then
    # compared on recall_at_10_new (.alerts.judged_metric); rmse judges FM regressors trained
    # on an older export.
    "retail-fm": ModelSpec("retail-fm", "fm", "export_fm_classifier", "rmse", False),
    # Implicit-feedback recommenders (issue #29): trained and served locally; promotion judged
    # by new-items recall@10 on the time holdout (and the baselines gate, .baseline).
    "retail-als": ModelSpec("retail-als", "implicit", "export_purchases", "recall_at_10_new",
                            True, "als"),
    "retail-knn": ModelSpec("retail-knn", "implicit", "export_purchases", "recall_at_10_new",
                            True, "knn"),
}


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise NotFoundError(
            f"unknown model {clip(name)}; choose one of {', '.join(sorted(MODELS))}"
        ) from None
