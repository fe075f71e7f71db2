"""The learned scorers and the repeat-purchase blend.

Every fitted model scores (customer, item) in one of two servable forms:

* ``factors`` - ``a_c + b_i + <u_c, p_i>`` (implicit ALS: ``a = b = 0``; the FM, split as in
  :mod:`featurestore.recommend`);
* ``similarity`` - ``x_c S`` with ``x_c`` the customer's row of the (weighted) purchase matrix
  and ``S`` the item-item neighbour matrix (item-kNN).

Any-item mode adds a repeat-purchase term to the learned score (:func:`blend`): the learned
scores of a customer are divided by their largest magnitude (so one weight fits every
customer) and ``weight * log1p(invoices of the item by the customer)`` is added. The weight is
chosen on the validation window (:mod:`.train`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._exceptions import TrainingError

__all__ = ["Fitted", "fit_als", "fit_knn", "fit", "blend", "ALGORITHMS", "DEFAULT_GRIDS",
           "TUNE_GRIDS"]

ALGORITHMS = ("als", "knn")
#: Hyperparameters tried on the validation window by default (and with ``tune``).
DEFAULT_GRIDS: dict[str, list[dict[str, Any]]] = {
    "als": [{"factors": f, "regularization": r, "alpha": a, "iterations": 15}
            for f in (64, 128) for r in (0.05,) for a in (1.0, 3.0)],
    "knn": [{"K": k, "K1": 1.2, "B": 0.75} for k in (50, 100, 200)],
}
TUNE_GRIDS: dict[str, list[dict[str, Any]]] = {
    "als": [{"factors": f, "regularization": r, "alpha": a, "iterations": 15}
            for f in (32, 64, 128, 192) for r in (0.01, 0.05, 0.2) for a in (1.0, 2.0, 3.0)],
    "knn": [{"K": k, "K1": k1, "B": b} for k in (25, 50, 100, 200, 400)
            for k1 in (0.6, 1.2, 2.0) for b in (0.5, 0.75, 1.0)],
}
#: Repeat-purchase weights tried on the validation window (any-item mode).
BLEND_WEIGHTS = (0.0, 0.1, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0)
#: Half-lives (days) of the repeat term's invoice weights tried there (None: no decay).
REPEAT_HALF_LIVES = (None, 120.0, 60.0, 30.0)


@dataclasses.dataclass
class Fitted:
    """One fitted scorer in a servable form (see the module docstring).

    Attributes:
        form: ``factors`` or ``similarity``.
        arrays: ``customer_bias``, ``customer_vectors``, ``item_bias``, ``item_vectors``
            (factors) or ``user_items``, ``similarity`` (CSR, similarity).
        params: the hyperparameters it was fitted with.
    """

    form: str
    arrays: dict[str, Any]
    params: dict[str, Any]

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """Learned scores of every item for the customers at ``rows`` (rows x items)."""
        a = self.arrays
        if self.form == "factors":
            return (a["customer_bias"][rows, None] + a["item_bias"][None, :]
                    + a["customer_vectors"][rows] @ a["item_vectors"].T).astype(np.float64)
        return np.asarray((a["user_items"][rows] @ a["similarity"]).todense(), np.float64)


def _threads() -> int:
    # One thread: the machines this runs on are shared (a second thread measured slower on a
    # loaded 2-core host, docs/choices.md).
    return 1


def fit_als(counts: sp.csr_matrix, params: dict[str, Any], seed: int = 0) -> Fitted:
    """Implicit-feedback ALS (Hu, Koren, Volinsky 2008) with ``implicit``: confidence
    ``1 + alpha * invoices``.

    Args:
        counts: invoices per (customer, item).
        params: ``factors``, ``regularization``, ``alpha``, ``iterations``.
        seed: the factor initialisation seed.

    Returns:
        The factors form.
    """
    from threadpoolctl import threadpool_limits

    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError as exc:  # pragma: no cover - a dependency
        raise TrainingError(f"retail-als needs the implicit package ({exc})") from None
    model = AlternatingLeastSquares(factors=int(params["factors"]),
                                    regularization=float(params["regularization"]),
                                    alpha=float(params["alpha"]),
                                    iterations=int(params["iterations"]), random_state=seed,
                                    num_threads=_threads())
    with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS threads would fight them
        model.fit(sp.csr_matrix(counts, dtype=np.float32), show_progress=False)
    n_c, n_i = counts.shape
    return Fitted("factors", {"customer_bias": np.zeros(n_c), "item_bias": np.zeros(n_i),
                              "customer_vectors": np.asarray(model.user_factors, np.float32),
                              "item_vectors": np.asarray(model.item_factors, np.float32)},
                  dict(params))


def fit_knn(counts: sp.csr_matrix, params: dict[str, Any], seed: int = 0) -> Fitted:
    """Item-item nearest neighbours on BM25-weighted purchases (``implicit``'s
    ``BM25Recommender``): ``K`` neighbours per item.

    Args:
        counts: invoices per (customer, item).
        params: ``K``, ``K1``, ``B``.
        seed: unused (deterministic).

    Returns:
        The similarity form (``user_items`` = ``counts``, as implicit scores).
    """
    try:
        from implicit.nearest_neighbours import ItemItemRecommender, bm25_weight
    except ImportError as exc:  # pragma: no cover - a dependency
        raise TrainingError(f"retail-knn needs the implicit package ({exc})") from None
    user_items = sp.csr_matrix(counts, dtype=np.float32)
    # BM25Recommender.fit, with the weighted matrix handed over as CSR (it passes COO on,
    # which implicit then warns about)
    weighted = sp.csr_matrix(bm25_weight(user_items.T, float(params["K1"]),
                                         float(params["B"])).T)
    model = ItemItemRecommender(K=int(params["K"]), num_threads=_threads())
    model.fit(weighted, show_progress=False)
    return Fitted("similarity", {"user_items": user_items,
                                 "similarity": sp.csr_matrix(model.similarity, dtype=np.float32)},
                  dict(params))


def fit(algorithm: str, counts: sp.csr_matrix, params: dict[str, Any], seed: int = 0) -> Fitted:
    """Fit ``algorithm`` (``als`` or ``knn``) on ``counts``."""
    if algorithm == "als":
        return fit_als(counts, params, seed)
    if algorithm == "knn":
        return fit_knn(counts, params, seed)
    raise TrainingError(f"unknown recommender algorithm {algorithm!r}; choose one of "
                        f"{', '.join(ALGORITHMS)}")


def blend(learned: np.ndarray, counts: np.ndarray, weight: float) -> np.ndarray:
    """Any-item scores: learned scores scaled per customer plus ``weight * log1p(counts)``.

    Args:
        learned: learned scores (customers x items).
        counts: the same customers' invoices per item (dense, same shape).
        weight: the repeat-purchase weight (0: the learned ranking unchanged).

    Returns:
        The blended scores.
    """
    if not weight:
        return learned
    scale = np.abs(learned).max(1, keepdims=True)
    scale[scale == 0] = 1.0
    return learned / scale + weight * np.log1p(counts)
