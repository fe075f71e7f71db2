"""Top-k quality on a time holdout, for a model beside the two baselines a recommender must
beat, with bootstrap intervals over customers.

Two modes, as the recommendations are served (``exclude_purchased``):

* ``any`` - every item is a candidate, repeats included; the truth is every item the customer
  bought in the test window; judged over the test window's buyers the model knows (bought in
  the fit window: a customer it has never seen gets a 404, not a list);
* ``new`` - the items the customer bought in the fit window are left out; the truth is the test
  window's items the customer had not bought before; judged over the customers who bought at
  least one such item.

Per customer: recall@k = hits / relevant items, NDCG@k (ideal: the relevant items first),
hit-rate@k = at least one hit. Baselines: *most popular* (items by distinct buyers in the fit
window) and *buy again* (the customer's own items by invoices in the fit window, most popular
first among ties and after them; any-item mode only: with the customer's items left out it is
"most popular").

Intervals: :data:`BOOTSTRAP_ROUNDS` resamples of the judged customers (with replacement,
seeded, the same draws for the model and the baselines), 2.5th and 97.5th percentiles of the
mean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["MODES", "METRICS", "BOOTSTRAP_ROUNDS", "top_k", "evaluate_holdout",
           "popularity", "buy_again_scores"]

MODES = ("any", "new")
METRICS = ("recall", "ndcg", "hit_rate")
BOOTSTRAP_ROUNDS = 200
Scorer = Callable[[np.ndarray], np.ndarray]  # rows -> (len(rows) x items) scores


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` best scores of each row, best first (ties: lower index,
    also at the cut: ``argpartition`` alone would pick among tied items at random)."""
    k = min(k, scores.shape[1])
    if k <= 0:
        return np.empty((scores.shape[0], 0), np.int64)
    if k < scores.shape[1]:
        cut = scores.shape[1] - k  # the k largest, without negating a copy of the scores
        part = np.argpartition(scores, cut, axis=1)[:, cut:]
    else:
        part = np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    rows = np.arange(scores.shape[0])[:, None]
    order = np.lexsort((part, -scores[rows, part]), axis=1)
    part = part[rows, order]
    kth = scores[rows[:, 0], part[:, -1]][:, None]
    # rows with more items tied at the cut than the partition kept: sort them in full
    tied = ((scores == kth).sum(1) > (scores[rows, part] == kth).sum(1)) & (k < scores.shape[1])
    if tied.any():
        part[tied] = np.argsort(-scores[tied], axis=1, kind="stable")[:, :k]
    return part


def popularity(fit: sp.csr_matrix) -> np.ndarray:
    """Distinct buyers per item in ``fit`` (customers x items)."""
    return np.asarray((fit > 0).sum(0), dtype=np.float64).ravel()


def buy_again_scores(fit: sp.csr_matrix, rows: np.ndarray, pop: np.ndarray) -> np.ndarray:
    """Own invoices per item, most popular first among ties (popularity scaled below 1)."""
    return fit[rows].toarray().astype(np.float64) + pop[None, :] / (pop.max() + 1.0)


def _per_customer(scores: np.ndarray, truth: np.ndarray, k: int) -> dict[str, np.ndarray]:
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    top = top_k(scores, k)
    hits = np.take_along_axis(truth, top, axis=1) & np.isfinite(
        np.take_along_axis(scores, top, axis=1))
    n_true = truth.sum(1)
    ideal = np.cumsum(discount)[np.minimum(n_true, k) - 1]
    return {"recall": hits.sum(1) / n_true,
            "ndcg": (hits * discount[:hits.shape[1]]).sum(1) / ideal,
            "hit_rate": hits.any(1).astype(np.float64)}


def _interval(values: np.ndarray, draws: np.ndarray) -> tuple[list[float], float, float]:
    samples = values[draws].mean(1)
    return samples.tolist(), float(np.percentile(samples, 2.5)), float(np.percentile(samples,
                                                                                    97.5))


def evaluate_holdout(score: Scorer, fit: sp.csr_matrix, test: sp.csr_matrix, *, k: int = 10,
                     rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0, chunk: int = 512,
                     modes: tuple[str, ...] = MODES, baselines: bool = True
                     ) -> dict[str, Any]:
    """The model's and the baselines' top-k quality on the test window, both modes.

    Args:
        score: the model's scores for customer rows (fitted on ``fit`` only).
        fit: invoices per (customer, item) in the fit window.
        test: the same in the test window (same shape).
        k: the cut-off.
        rounds: bootstrap resamples (0: no intervals).
        seed: the resampling seed.
        chunk: customers scored at a time (bounds memory).
        modes: the modes to judge (validation trials need one).
        baselines: also judge the baselines.

    Returns:
        ``metrics`` (flat: ``recall_at_10_new``, ``popular_recall_at_10_any``,
        ``buy_again_recall_at_10_any``, ...; also ``recall_at_10`` / ``ndcg_at_10`` /
        ``popularity_recall_at_10`` / ``popularity_ndcg_at_10`` for the new-items mode, as
        versions before issue #29 named them, and ``eval_customers``), ``table`` (model ->
        mode -> metric -> ``{"value", "low", "high"}``), ``customers`` (judged per mode) and
        ``bootstrap`` (the model's resampled metric means, for :mod:`featurestore.retrain.alerts`).
    """
    fit, test = sp.csr_matrix(fit), sp.csr_matrix(test)
    pop = popularity(fit)
    known = np.diff(fit.indptr) > 0
    new_truth = (test > 0).astype(np.int8) - (test > 0).multiply(fit > 0).astype(np.int8)
    new_truth = sp.csr_matrix(new_truth)
    new_truth.eliminate_zeros()
    users = {"any": np.flatnonzero(known & (np.diff(test.indptr) > 0)),
             "new": np.flatnonzero(known & (np.diff(new_truth.indptr) > 0))}
    per: dict[str, dict[str, dict[str, list[np.ndarray]]]] = {
        m: {mode: {x: [] for x in METRICS} for mode in MODES}
        for m in ("model", "popular", "buy_again")}
    for mode in modes:
        truth_m = test if mode == "any" else new_truth
        for start in range(0, len(users[mode]), chunk):
            rows = users[mode][start:start + chunk]
            truth = truth_m[rows].toarray() > 0
            seen = fit[rows].toarray() > 0
            candidates = {"model": np.asarray(score(rows), dtype=np.float64).copy()}
            if baselines:
                candidates["popular"] = np.broadcast_to(pop, truth.shape).copy()
            if baselines and mode == "any":
                candidates["buy_again"] = buy_again_scores(fit, rows, pop)
            for name, s in candidates.items():
                if mode == "new":
                    s[seen] = -np.inf
                for metric, values in _per_customer(s, truth, k).items():
                    per[name][mode][metric].append(values)
    rng = np.random.default_rng(seed)
    metrics: dict[str, float] = {}
    table: dict[str, Any] = {}
    bootstrap: dict[str, list[float]] = {}
    for mode in modes:
        n = len(users[mode])
        draws = rng.integers(0, n, size=(rounds, n)) if n and rounds else None
        for name, modes in per.items():
            for metric, parts in modes[mode].items():
                if not parts:
                    continue
                values = np.concatenate(parts)
                value = float(values.mean()) if len(values) else float("nan")
                key = f"{metric}_at_{k}_{mode}"
                metrics[key if name == "model" else f"{name}_{key}"] = value
                cell = {"value": value, "low": None, "high": None}
                if draws is not None:
                    samples, cell["low"], cell["high"] = _interval(values, draws)
                    if name == "model":
                        bootstrap[key] = samples
                table.setdefault(name, {}).setdefault(mode, {})[metric] = cell
    metrics.update({f"recall_at_{k}": metrics.get(f"recall_at_{k}_new", float("nan")),
                    f"ndcg_at_{k}": metrics.get(f"ndcg_at_{k}_new", float("nan")),
                    f"popularity_recall_at_{k}": metrics.get(f"popular_recall_at_{k}_new",
                                                             float("nan")),
                    f"popularity_ndcg_at_{k}": metrics.get(f"popular_ndcg_at_{k}_new",
                                                           float("nan")),
                    "eval_customers": float(len(users["new"]))})
    return {"metrics": metrics, "table": table,
            "customers": {mode: int(len(u)) for mode, u in users.items()},
            "bootstrap": bootstrap}
