"""How good a version is and how sure we are: bootstrap samples of held-out metrics, confidence
intervals from them, the PR curve and feature importance.

A version stores :data:`BOOTSTRAP_ROUNDS` bootstrap values of each held-out metric (test rows
resampled with replacement, seeded), so an interval at any level can be read later
(:func:`interval`); :mod:`.alerts` calls a change significant when the new version's interval
excludes the production value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["BOOTSTRAP_ROUNDS", "bootstrap_classifier", "bootstrap_rmse", "interval",
           "intervals", "pr_curve_points", "gain_importance"]

BOOTSTRAP_ROUNDS = 200
#: The classifier metrics that get bootstrap samples (the held-out metrics of SPEC §7).
CLASSIFIER_METRICS = ("pr_auc", "roc_auc", "recall_at_top_1pct")


def _weighted_classifier(y: np.ndarray, scores: np.ndarray, weights: np.ndarray
                         ) -> dict[str, np.ndarray]:
    """PR-AUC (average precision), ROC-AUC and recall at the top 1% of weighted rows, one
    value per row of ``weights`` (how often each held-out row is drawn in a resample).

    Vectorised over resamples: rows are sorted by score once, tied scores form one threshold
    (as sklearn's curves do), and every metric is a cumulative sum over the thresholds.
    """
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], y[order].astype(np.float64)
    w = weights[:, order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # first row of each distinct score
    pos = np.add.reduceat(w * y, starts, axis=1)
    tot = np.add.reduceat(w, starts, axis=1)
    tp, seen = np.cumsum(pos, 1), np.cumsum(tot, 1)
    fp = seen - tp
    p_all, n_all = tp[:, -1:], fp[:, -1:]
    recall = tp / p_all
    # before the first drawn row nothing is predicted positive: recall does not move there
    precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)
    ap = (np.diff(np.c_[np.zeros(len(w)), recall], axis=1) * precision).sum(1)
    tpr = np.c_[np.zeros(len(w)), recall]
    fpr = np.c_[np.zeros(len(w)), fp / n_all]
    roc = (np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2).sum(1)
    m = max(1, int(np.ceil(0.01 * len(scores))))
    before = np.cumsum(w, 1) - w  # weight ahead of each row in score order
    taken = np.clip(m - before, 0, w)
    top = (taken * y).sum(1) / p_all[:, 0]
    return {"pr_auc": ap, "roc_auc": roc, "recall_at_top_1pct": top}


def bootstrap_classifier(y: np.ndarray, scores: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS,
                         seed: int = 0) -> dict[str, list[float]]:
    """Bootstrap values of PR-AUC, ROC-AUC and recall at the top 1% on held-out rows.

    Args:
        y: 0/1 labels.
        scores: the model's scores of the same rows.
        rounds: resamples.
        seed: the resampling seed (a version's samples are reproducible).

    Returns:
        metric -> list of values (resamples with a single class are left out).
    """
    y = np.asarray(y).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {m: [] for m in CLASSIFIER_METRICS}
    n = len(y)
    chunk = max(1, 2_000_000 // max(n, 1))  # bounds the (resamples x rows) weight matrix
    for start in range(0, rounds, chunk):
        size = min(chunk, rounds - start)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=size)
        positives = weights @ y
        ok = (positives > 0) & (positives < n)  # a resample with one class has no AUC
        if not ok.any():
            continue
        values = _weighted_classifier(y, scores, weights[ok])
        for name in CLASSIFIER_METRICS:
            out[name] += values[name].tolist()
    return out


def bootstrap_rmse(y: np.ndarray, predictions: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS,
                   seed: int = 0) -> dict[str, list[float]]:
    """Bootstrap values of the RMSE on held-out rows (``{"rmse": [...]}``)."""
    squared = (np.asarray(predictions, np.float64) - np.asarray(y, np.float64)) ** 2
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(squared), (rounds, len(squared)))
    return {"rmse": np.sqrt(squared[idx].mean(1)).tolist()}


def interval(samples: list[float], level: float) -> list[float] | None:
    """The central percentile interval ``[low, high]`` of bootstrap values at ``level``
    (0.95: the 2.5th and 97.5th percentiles); None without samples."""
    if not samples:
        return None
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(np.asarray(samples, np.float64), [tail, 100.0 - tail])
    return [float(low), float(high)]


def intervals(bootstrap: dict[str, list[float]] | None, level: float
              ) -> dict[str, list[float] | None]:
    """:func:`interval` of every metric of a version's bootstrap record."""
    return {name: interval(values, level) for name, values in (bootstrap or {}).items()}


def pr_curve_points(y: np.ndarray, scores: np.ndarray, points: int = 101
                    ) -> dict[str, list[float]]:
    """The held-out precision-recall curve, thinned to at most ``points`` points (evenly
    spaced along the curve, both ends kept), for a dashboard to draw.

    Returns:
        ``{"precision": [...], "recall": [...], "threshold": [...]}`` (recall descending; the
        last point, recall 0, has no threshold and repeats the last one's).
    """
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(np.asarray(y).astype(int), scores)
    thresholds = np.append(thresholds, thresholds[-1] if len(thresholds) else 1.0)
    keep = np.unique(np.linspace(0, len(precision) - 1, min(points, len(precision)))
                     .round().astype(int))
    return {"precision": precision[keep].tolist(), "recall": recall[keep].tolist(),
            "threshold": thresholds[keep].astype(float).tolist()}


def gain_importance(booster: Any, features: list[str]) -> dict[str, float]:
    """XGBoost's ``gain`` importance (the average loss reduction of a feature's splits) of
    every feature of the model, unused ones 0, in descending order.

    Args:
        booster: the trained XGBoost booster.
        features: the model's feature names, in model order.

    Returns:
        feature -> gain.
    """
    gain = booster.get_score(importance_type="gain")
    names = features or sorted(gain)
    # a model trained without feature names calls them f0, f1...
    values = {n: float(gain.get(n, gain.get(f"f{i}", 0.0))) for i, n in enumerate(names)}
    return dict(sorted(values.items(), key=lambda kv: -kv[1]))
