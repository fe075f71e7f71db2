"""The models the store knows how to retrain, and how each one is judged."""

from __future__ import annotations

from dataclasses import dataclass

from .._exceptions import NotFoundError, clip

__all__ = ["ModelSpec", "MODELS", "model_spec"]


@dataclass(frozen=True)
class ModelSpec:
    """A trainable model: which export feeds it and which metric decides promotion/alerts."""

    name: str
    kind: str  # "xgboost" | "fm"
    export: str  # function name in featurestore.training
    primary_metric: str
    higher_is_better: bool


MODELS: dict[str, ModelSpec] = {
    "purchase-xgboost": ModelSpec("purchase-xgboost", "xgboost", "export_xgboost", "pr_auc", True),
    "retail-fm": ModelSpec("retail-fm", "fm", "export_fm", "rmse", False),
}


def model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise NotFoundError(
            f"unknown model {clip(name)}; choose one of {', '.join(sorted(MODELS))}"
        ) from None
