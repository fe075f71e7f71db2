"""The trivial-baseline gate: a version no better than a model that learned nothing is never
auto-promoted, whatever production looks like (also for the first version of a model).

* classifier (``kind == "xgboost"``): held-out ROC-AUC <= 0.5 (chance) or PR-AUC <= the
  positive rate (a random ranking's PR-AUC); with the version's bootstrap samples, the
  interval (``alert_confidence_level``) must lie above each baseline, not only the point
  value (a backend that reports no ROC-AUC, SageMaker's XGBoost, is judged by PR-AUC alone);
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


def _low(bootstrap: dict[str, list[float]] | None, metric: str, level: float) -> float | None:
    """The lower end of ``metric``'s bootstrap interval at ``level``, None without samples."""
    from .quality import interval

    bounds = interval(list((bootstrap or {}).get(metric) or []), level)
    return bounds[0] if bounds else None


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


def baseline_failure(spec: ModelSpec, metrics: dict[str, Any],
                     bootstrap: dict[str, list[float]] | None = None,
                     level: float = 0.95) -> str | None:
    """Why ``metrics`` are no better than the trivial baseline, or None when they are (or when
    the metrics to judge by are missing: see :func:`baseline_checked`).

    A classifier must beat both baselines: ROC-AUC above 0.5 (chance) and PR-AUC above the
    positive rate (a random ranking). With the version's bootstrap samples (``details.
    bootstrap``) the whole interval at ``level`` must lie above each baseline, so a first
    model with ROC-AUC 0.527 and PR-AUC 1.1x the positive rate on a small test set, not
    distinguishable from chance, is registered but not promoted (issue #30); without samples
    the point values are compared.

    Args:
        spec: the model (its kind decides the rule).
        metrics: the new version's held-out metrics.
        bootstrap: metric -> bootstrap values on the held-out rows, when recorded.
        level: the confidence level of the intervals (``alert_confidence_level``).

    Returns:
        One sentence naming the metric, its value (and interval) and the baseline; None
        otherwise.
    """
    if spec.kind == "xgboost":
        broken = _broken(metrics, "roc_auc", "pr_auc")
        if broken:
            return f"held-out {broken} is {metrics[broken]}: not a number, training went wrong"
        auc = _finite(metrics.get("roc_auc"))
        pr_auc, rate = _finite(metrics.get("pr_auc")), _finite(metrics.get("positive_rate"))
        if auc is not None:
            low = _low(bootstrap, "roc_auc", level)
            if auc <= 0.5:
                return (f"held-out roc_auc {auc:.4f} <= 0.5: no better than chance (the "
                        "trivial baseline)")
            if low is not None and low <= 0.5:
                return (f"held-out roc_auc {auc:.4f} but its {level:.0%} bootstrap interval "
                        f"reaches {low:.4f} <= 0.5: not distinguishable from chance (the "
                        "trivial baseline); more history or customers narrow it")
        if pr_auc is not None and rate is not None:
            low = _low(bootstrap, "pr_auc", level)
            if pr_auc <= rate:
                return (f"held-out pr_auc {pr_auc:.4f} <= positive rate {rate:.4f}: no better "
                        "than a random ranking (the trivial baseline)")
            if low is not None and low <= rate:
                return (f"held-out pr_auc {pr_auc:.4f} ({pr_auc / rate:.2f}x the positive rate "
                        f"{rate:.4f}) but its {level:.0%} bootstrap interval reaches "
                        f"{low:.4f}: not distinguishable from a random ranking (the trivial "
                        "baseline); more history or customers narrow it")
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
