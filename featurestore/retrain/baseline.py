"""The trivial-baseline gate: a version no better than a model that learned nothing is never
auto-promoted, whatever production looks like (also for the first version of a model).

* classifier (``kind == "xgboost"``): held-out ROC-AUC <= 0.5 (chance);
* recommender (``kind == "fm"``): held-out RMSE >= the item-mean baseline's RMSE
  (``baseline_rmse``, computed on the same test split by the trainer).

A metric that is missing or not finite fails the gate too: nobody can tell it is better.
"""

from __future__ import annotations

import math
from typing import Any

from .models import ModelSpec

__all__ = ["baseline_failure"]


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def baseline_failure(spec: ModelSpec, metrics: dict[str, Any]) -> str | None:
    """Why ``metrics`` are no better than the trivial baseline, or None when they are.

    Args:
        spec: the model (its kind decides the rule).
        metrics: the new version's held-out metrics.

    Returns:
        One sentence naming the metric, its value and the baseline; None when it beats it.
    """
    if spec.kind == "xgboost":
        auc = _finite(metrics.get("roc_auc"))
        if auc is None:
            return "held-out roc_auc is missing or not a number: cannot tell it beats chance"
        if auc <= 0.5:
            return (f"held-out roc_auc {auc:.4f} <= 0.5: no better than chance (the trivial "
                    "baseline)")
        return None
    if spec.kind == "fm":
        rmse, base = _finite(metrics.get("rmse")), _finite(metrics.get("baseline_rmse"))
        if rmse is None or base is None:
            return ("held-out rmse or baseline_rmse is missing or not a number: cannot tell it "
                    "beats the item-mean baseline")
        if rmse >= base:
            return (f"held-out rmse {rmse:.4f} >= item-mean baseline rmse {base:.4f}: no "
                    "better than predicting each item's mean rating")
        return None
    return None
