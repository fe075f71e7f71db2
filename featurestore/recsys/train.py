"""The protocol that trains and judges one recommender version (see :mod:`.data`).

1. plan the windows (:func:`~.data.plan_holdout`);
2. fit each candidate hyperparameter set on the sub-fit window and keep the best new-items
   recall@10 on the validation window; with it, keep the repeat-purchase weight with the best
   any-item recall@10 on the validation window (the test window is never looked at);
3. fit the chosen model on the fit window and score it once on the test window, beside the
   baselines, with bootstrap intervals (:func:`~.evaluate.evaluate_holdout`);
4. refit the chosen model on all the data: that is the version's served model (the figures of
   step 3 describe how the same recipe did on a month it had not seen).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from . import algorithms, artifact
from .data import HoldoutPlan, Purchases, plan_holdout
from .evaluate import evaluate_holdout

__all__ = ["RecommenderRun", "train_recommender", "choose"]

FitFn = Callable[[sp.csr_matrix, dict[str, Any]], algorithms.Fitted]


@dataclasses.dataclass
class RecommenderRun:
    """One trained version: held-out metrics, how it was chosen, and the served model.

    Attributes:
        metrics: flat held-out metrics (:func:`~.evaluate.evaluate_holdout`).
        params: the chosen hyperparameters and ``repeat_weight``.
        details: ``holdout`` (windows, customers, the model-vs-baselines table), ``trials``
            (every validation score), ``bootstrap``, ``refit`` and ``seconds``.
        model_bytes: the served ``recommender.npz`` (:mod:`.artifact`).
    """

    metrics: dict[str, float]
    params: dict[str, Any]
    details: dict[str, Any]
    model_bytes: bytes


def _scorer(model: algorithms.Fitted, counts: sp.csr_matrix, weight: float):
    def score(rows: np.ndarray) -> np.ndarray:
        return algorithms.blend(model.scores(rows), counts[rows].toarray(), weight)
    return score


def choose(fit: FitFn, grid: list[dict[str, Any]], subfit: sp.csr_matrix,
           validation: sp.csr_matrix, repeat: Callable[[float | None], sp.csr_matrix],
           k: int = 10) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """Hyperparameters and the repeat term chosen on the validation window.

    Args:
        fit: fits a model on a counts matrix with given hyperparameters.
        grid: the candidate hyperparameters.
        subfit: invoices before the validation window.
        validation: invoices in the validation window.
        repeat: the sub-fit window's repeat counts for a half-life (None: plain invoices).
        k: the cut-off.

    Returns:
        (chosen hyperparameters, ``{"repeat_weight", "repeat_half_life_days"}``, every
        trial's validation figures).
    """
    trials: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any], algorithms.Fitted] | None = None
    for params in grid:
        model = fit(subfit, params)
        m = evaluate_holdout(_scorer(model, subfit, 0.0), subfit, validation, k=k,
                             rounds=0, modes=("new",), baselines=False)["metrics"]
        value = m[f"recall_at_{k}_new"]
        trials.append({"params": params, f"validation_recall_at_{k}_new": value})
        if best is None or value > best[0]:
            best = (value, params, model)
    assert best is not None, "an empty hyperparameter grid"
    _, params, model = best
    best_w: tuple[float, dict[str, Any]] | None = None
    for half_life in algorithms.REPEAT_HALF_LIVES:
        counts = repeat(half_life)
        for weight in algorithms.BLEND_WEIGHTS:
            if not weight and half_life is not None:
                continue  # the same as weight 0 without decay
            m = evaluate_holdout(_scorer(model, counts, weight), subfit, validation, k=k,
                                 rounds=0, modes=("any",), baselines=False)["metrics"]
            value = m[f"recall_at_{k}_any"]
            blend = {"repeat_weight": weight, "repeat_half_life_days": half_life}
            trials.append({**blend, f"validation_recall_at_{k}_any": value})
            if best_w is None or value > best_w[0]:
                best_w = (value, blend)
    assert best_w is not None
    return params, best_w[1], trials


def train_recommender(purchases: Purchases, algorithm: str, *, holdout_days: int = 30,
                      validation_days: int = 30, tune: bool = False, seed: int = 0,
                      k: int = 10, grid: list[dict[str, Any]] | None = None,
                      fit: FitFn | None = None, refit: bool = True) -> RecommenderRun:
    """Train, judge and refit one recommender version (see the module docstring).

    Args:
        purchases: all the purchases the version may learn from.
        algorithm: ``als`` or ``knn`` (the grid and fit function unless given).
        holdout_days: the test window.
        validation_days: the validation window.
        tune: search the larger grid (:data:`~.algorithms.TUNE_GRIDS`).
        seed: model and bootstrap seed.
        k: the cut-off.
        grid: candidate hyperparameters (default: the algorithm's grid).
        fit: the fitting function (default: :func:`~.algorithms.fit` for ``algorithm``).
        refit: refit on all data for serving (False: serve the model fitted before the test
            window).

    Returns:
        The run.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # see docs/choices.md: threaded BLAS loses on 2 busy cores
        return _train(purchases, algorithm, holdout_days, validation_days, tune, seed, k, grid,
                      fit, refit)


def _train(purchases: Purchases, algorithm: str, holdout_days: int, validation_days: int,
           tune: bool, seed: int, k: int, grid: list[dict[str, Any]] | None,
           fit: FitFn | None, refit: bool) -> RecommenderRun:
    started = time.perf_counter()
    plan: HoldoutPlan = plan_holdout(purchases.first_day, purchases.last_day, holdout_days,
                                     validation_days)
    fit_fn = fit or (lambda counts, params: algorithms.fit(algorithm, counts, params, seed))
    candidates = grid or (algorithms.TUNE_GRIDS if tune else algorithms.DEFAULT_GRIDS)[algorithm]
    subfit = purchases.counts(None, plan.validation_start)
    validation = purchases.counts(plan.validation_start, plan.test_start)
    params, chosen, trials = choose(
        fit_fn, candidates, subfit, validation,
        lambda h: purchases.repeat_counts(None, plan.validation_start, h), k)
    weight, half_life = chosen["repeat_weight"], chosen["repeat_half_life_days"]
    chosen_at = time.perf_counter()

    before = purchases.counts(None, plan.test_start)
    test = purchases.counts(plan.test_start, None)
    model = fit_fn(before, params)
    held = evaluate_holdout(
        _scorer(model, purchases.repeat_counts(None, plan.test_start, half_life), weight),
        before, test, k=k, seed=seed)
    stop = None if refit else plan.test_start
    if refit:
        model = fit_fn(purchases.counts(), params)
    served = artifact.to_bytes(model, purchases, purchases.repeat_counts(None, stop, half_life),
                               weight,
                               meta={"algorithm": algorithm, "refit": refit,
                                     "plan": plan.as_dict()})
    details = {"holdout": {**plan.as_dict(), "k": k, "customers": held["customers"],
                           "table": held["table"]},
               "trials": trials, "bootstrap": held["bootstrap"], "refit": refit,
               "seconds": {"choose": round(chosen_at - started, 2),
                           "total": round(time.perf_counter() - started, 2)}}
    return RecommenderRun(metrics=held["metrics"],
                          params={"algorithm": algorithm, **params, **chosen,
                                  "holdout_days": holdout_days,
                                  "validation_days": validation_days},
                          details=details, model_bytes=served)
