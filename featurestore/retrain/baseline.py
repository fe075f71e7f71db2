"""The trivial-baseline gate: a version no better than a model that learned nothing is never
auto-promoted, whatever production looks like (also for the first version of a model).

* classifier (``kind == "xgboost"``): held-out ROC-AUC <= 0.5 (chance); a backend that reports
  no ROC-AUC (SageMaker's XGBoost evaluates ``aucpr`` only) is judged by PR-AUC <= the positive
  rate, a random ranking's PR-AUC;
* recommender on the time holdout (issue #29; ``kind == "implicit"``, and an FM whose
  metrics carry the holdout figures): recall@10 must beat "most popular" in the new-items mode
  (``recall_at_10_new`` > ``popular_recall_at_10_new``) and "buy again" in the any-item mode
  (``recall_at_10_any`` > ``buy_again_recall_at_10_any``); an ``implicit`` version without
  these figures is never promoted (nothing shows it beats them), nor an FM with neither them
  nor an RMSE (a SageMaker-trained classifier: its metrics are SageMaker's, not the holdout's);
* FM regressor (an export from before #29): held-out RMSE >= the item-mean baseline's RMSE
  (``baseline_rmse``, computed on the same test split by the trainer).

A metric that is present but not finite (NaN, inf) fails the gate: training went wrong. When
the metrics needed are absent altogether the gate cannot judge and does not block;
:func:`baseline_checked` says so, and the job record carries it.
"""

from __future__ import annotations

import math
from typing import Any

from .models import ModelSpec

__all__ = ["baseline_failure", "baseline_checked", "RECOMMENDER_RULES"]

#: (model metric, baseline metric, baseline name, mode) a recommender must beat, all of them.
RECOMMENDER_RULES = (
    ("recall_at_10_new", "popular_recall_at_10_new", "most popular", "new-items"),
    ("recall_at_10_any", "buy_again_recall_at_10_any", "buy again", "any-item"),
)
_HOLDOUT = {name for rule in RECOMMENDER_RULES for name in rule[:2]}


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _broken(metrics: dict[str, Any], *names: str) -> str | None:
    """The first of ``names`` that is present but not a finite number."""
    return next((n for n in names if metrics.get(n) is not None
                 and _finite(metrics[n]) is None), None)


def baseline_checked(spec: ModelSpec, metrics: dict[str, Any]) -> bool:
    """Whether ``metrics`` hold what the gate needs to judge ``spec``'s model.

    Args:
        spec: the model.
        metrics: the new version's held-out metrics.

    Returns:
        False when the metrics the rule compares are missing.
    """
    has = {k for k, v in metrics.items() if v is not None}
    if spec.kind == "xgboost":
        return "roc_auc" in has or {"pr_auc", "positive_rate"} <= has
    if spec.kind == "implicit" or (spec.kind == "fm" and _HOLDOUT & has):
        return _HOLDOUT <= has
    if spec.kind == "fm":
        return {"rmse", "baseline_rmse"} <= has
    return False


def _recommender_failure(metrics: dict[str, Any]) -> str | None:
    """Why a recommender's holdout recall@10 does not beat both baselines (see module doc)."""
    broken = _broken(metrics, *sorted(_HOLDOUT))
    if broken:
        return f"holdout {broken} is {metrics[broken]}: not a number, training went wrong"
    missing = sorted(n for n in _HOLDOUT if _finite(metrics.get(n)) is None)
    if missing:
        return (f"no time-holdout figures ({', '.join(missing)}): nothing shows it beats the "
                "most-popular and buy-again baselines")
    losses = []
    for mine, theirs, name, mode in RECOMMENDER_RULES:
        value, base = float(metrics[mine]), float(metrics[theirs])
        if not value > base:
            losses.append(f"{mode} recall@10 {value:.4f} <= {name} {base:.4f}")
    if losses:
        return ("holdout " + "; ".join(losses) + ": no better than the baseline a user "
                "would get without a model")
    return None


def baseline_failure(spec: ModelSpec, metrics: dict[str, Any]) -> str | None:
    """Why ``metrics`` are no better than the trivial baseline, or None when they are (or when
    the metrics to judge by are missing: see :func:`baseline_checked`).

    Args:
        spec: the model (its kind decides the rule).
        metrics: the new version's held-out metrics.

    Returns:
        One sentence naming the metric, its value and the baseline; None otherwise.
    """
    if spec.kind == "xgboost":
        broken = _broken(metrics, "roc_auc", "pr_auc")
        if broken:
            return f"held-out {broken} is {metrics[broken]}: not a number, training went wrong"
        auc = _finite(metrics.get("roc_auc"))
        if auc is not None:
            if auc <= 0.5:
                return (f"held-out roc_auc {auc:.4f} <= 0.5: no better than chance (the "
                        "trivial baseline)")
            return None
        pr_auc, rate = _finite(metrics.get("pr_auc")), _finite(metrics.get("positive_rate"))
        if pr_auc is not None and rate is not None and pr_auc <= rate:
            return (f"held-out pr_auc {pr_auc:.4f} <= positive rate {rate:.4f}: no better than "
                    "a random ranking (the trivial baseline)")
        return None
    if spec.kind == "implicit" or (spec.kind == "fm" and _HOLDOUT & set(metrics)):
        return _recommender_failure(metrics)
    if spec.kind == "fm" and metrics.get("rmse") is None:
        return _recommender_failure(metrics)  # a classifier without holdout figures
    if spec.kind == "fm":
        broken = _broken(metrics, "rmse", "baseline_rmse")
        if broken:
            return f"held-out {broken} is {metrics[broken]}: not a number, training went wrong"
        rmse, base = _finite(metrics.get("rmse")), _finite(metrics.get("baseline_rmse"))
        if rmse is not None and base is not None and rmse >= base:
            return (f"held-out rmse {rmse:.4f} >= item-mean baseline rmse {base:.4f}: no "
                    "better than predicting each item's mean rating")
        return None
    return None
