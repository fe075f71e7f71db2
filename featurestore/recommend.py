"""Recommendations from the production version of the recommender named by the setting
``recommendation_model`` (SPEC §7): top-k products per customer.

A version trained since issue #29 (``retail-als``, ``retail-knn``, the FM classifier) serves
from its ``recommender.npz`` (:class:`featurestore.recsys.artifact.ServedRecommender`: new
items only, or any item with the repeat-purchase term). An FM version from before serves from
its ``model.npz`` and ``index.npz`` as follows.

The FM (``model.npz``: ``w0``, ``w``, ``V``) scores a (customer, item) row whose features are
one-hot customer, one-hot item, one-hot country (the customer's) and the item's TF-IDF
(:mod:`featurestore.training.fm`). With ``u = V[c] + V[country]`` and
``p_i = V[item_i] + t_i V[tfidf]`` the FM equation splits into a customer part, an item part
and one dot product::

    score(c, i) = a_c + b_i + <u_c, p_i>
    a_c = w0 + w[c] + w[country] + (|u_c|^2 - |V[c]|^2 - |V[country]|^2) / 2
    b_i = w[item_i] + t_i . w[tfidf] + (|p_i|^2 - |V[item_i]|^2 - t_i^2 . |V[tfidf]|^2) / 2

so a request costs one (items x factors) matrix-vector product. The ids, descriptions and
purchases come from the version's ``index.npz`` (written by the FM export, copied into the
version at registration and checked against its sha256).

At registration :func:`evaluate` measures recall@10 and NDCG@10 on the held-out purchases (the
export's test pairs) against a popularity baseline; the figures are stored with the version's
metrics.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._exceptions import NotFoundError, clip
from .predict import SwappedReference, production_or_raise
from .retrain import registry
from .storage import Store

__all__ = ["MODEL", "INDEX", "FMRecommender", "evaluate", "Recommendations", "load_version"]

MODEL = "retail-fm"
INDEX = "index.npz"


@dataclasses.dataclass
class FMRecommender:
    """One FM version's scoring arrays (see the module docstring)."""

    version: str
    customers: dict[str, int]
    items: np.ndarray
    descriptions: np.ndarray
    customer_bias: np.ndarray  # a_c
    customer_vectors: np.ndarray  # u_c
    item_bias: np.ndarray  # b_i
    item_vectors: np.ndarray  # p_i
    purchased: sp.csr_matrix  # customers x items, 1 = bought (train and held-out pairs)
    held_out: sp.csr_matrix  # the export's test pairs

    @classmethod
    def from_bytes(cls, model: bytes, index: bytes, version: str = "") -> FMRecommender:
        """Build from the registered ``model.npz`` and ``index.npz``.

        Args:
            model: FM parameters (``w0``, ``w``, ``V``).
            index: the export's index (ids, descriptions, TF-IDF, pairs).
            version: the registry version, for answers.

        Returns:
            The recommender.
        """
        fm = np.load(io.BytesIO(model))
        ix = np.load(io.BytesIO(index))
        w0, w, V = float(fm["w0"][0]), fm["w"], fm["V"]
        (c0, c1), (i0, i1), (k0, _), (t0, t1) = ix["blocks"].tolist()
        n_cust, n_items = c1 - c0, i1 - i0
        country = k0 + ix["customer_country"]
        u = V[c0:c1] + V[country]
        sq = (V ** 2).sum(1)
        a = w0 + w[c0:c1] + w[country] + 0.5 * ((u ** 2).sum(1) - sq[c0:c1] - sq[country])
        t = sp.csr_matrix((ix["tfidf_data"], ix["tfidf_indices"], ix["tfidf_indptr"]),
                          shape=tuple(ix["tfidf_shape"]), dtype=np.float64)
        p = V[i0:i1] + t @ V[t0:t1]
        b = (w[i0:i1] + t @ w[t0:t1]
             + 0.5 * ((p ** 2).sum(1) - sq[i0:i1] - t.multiply(t) @ sq[t0:t1]))
        pc, pi, test = ix["pair_customer"], ix["pair_item"], ix["pair_test"]

        def pairs(mask: np.ndarray) -> sp.csr_matrix:
            return sp.csr_matrix((np.ones(int(mask.sum()), np.int8), (pc[mask], pi[mask])),
                                 shape=(n_cust, n_items))

        customers = ix["customers"]
        return cls(version, {str(c): i for i, c in enumerate(customers)}, ix["items"],
                   ix["descriptions"], a, u, b, p, pairs(np.ones(len(pc), bool)), pairs(test))

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """FM scores of every item for the customers at ``rows`` (customers x items)."""
        return (self.customer_bias[rows, None] + self.item_bias[None, :]
                + self.customer_vectors[rows] @ self.item_vectors.T)

    def recommend(self, customer_id: str, k: int = 10, exclude_purchased: bool = True
                  ) -> list[dict[str, Any]] | None:
        """The top ``k`` items for one customer, best first (ties: item order).

        Args:
            customer_id: a customer of the model.
            k: how many items at most.
            exclude_purchased: leave out the items the customer already bought.

        Returns:
            ``[{"product_id", "score", "description"}]``, or None for an unknown customer.
        """
        row = self.customers.get(customer_id)
        if row is None:
            return None
        scores = self.scores(np.array([row]))[0]
        if exclude_purchased:
            bought = self.purchased.indices[self.purchased.indptr[row]:
                                            self.purchased.indptr[row + 1]]
            scores[bought] = -np.inf
        top = _top_k(scores[None, :], k)[0]
        return [{"product_id": str(self.items[i]), "score": float(scores[i]),
                 "description": str(self.descriptions[i])} for i in top
                if np.isfinite(scores[i])]

    def recommend_rows(self, customer_ids: list[str], k: int, exclude_purchased: bool
                       ) -> list[list[dict[str, Any]] | None]:
        """:meth:`recommend` for each id, in order (the serving interface)."""
        return [self.recommend(c, k, exclude_purchased) for c in customer_ids]


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` best scores of each row, best first, ties by index."""
    k = min(k, scores.shape[1])
    if k <= 0:
        return np.empty((scores.shape[0], 0), np.int64)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else \
        np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    rows = np.arange(scores.shape[0])[:, None]
    order = np.lexsort((part, -scores[rows, part]), axis=1)
    return part[rows, order]


def evaluate(rec: FMRecommender, k: int = 10, chunk: int = 512) -> dict[str, float]:
    """Recall@k and NDCG@k on the held-out purchases, for the FM and a popularity baseline.

    For each customer with held-out purchases, every item not bought in the training pairs is
    a candidate; recall is the share of the held-out items in the top k, NDCG discounts each
    hit by its position (ideal: all held-out items first). Popularity ranks items by how many
    customers bought them in the training pairs.

    Args:
        rec: the recommender (its ``held_out`` pairs are the export's test split).
        k: the cut-off.
        chunk: customers scored at a time (bounds memory).

    Returns:
        ``recall_at_10``, ``ndcg_at_10``, ``popularity_recall_at_10``,
        ``popularity_ndcg_at_10``, ``eval_customers`` (with ``k`` in the names).
    """
    train = (rec.purchased - rec.held_out).tocsr()
    train.eliminate_zeros()
    popularity = np.asarray(train.sum(0), dtype=np.float64).ravel()
    users = np.flatnonzero(np.diff(rec.held_out.indptr))
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    totals = {"fm": [0.0, 0.0], "pop": [0.0, 0.0]}
    for start in range(0, len(users), chunk):
        rows = users[start:start + chunk]
        seen = train[rows].toarray() > 0
        truth = rec.held_out[rows].toarray() > 0
        n_true = truth.sum(1)
        ideal = np.cumsum(discount)[np.minimum(n_true, k) - 1]
        for name, scores in (("fm", rec.scores(rows)),
                             ("pop", np.broadcast_to(popularity, seen.shape).copy())):
            scores[seen] = -np.inf
            top = _top_k(scores, k)
            hits = np.take_along_axis(truth, top, axis=1)
            totals[name][0] += float((hits.sum(1) / n_true).sum())
            totals[name][1] += float(((hits * discount[:hits.shape[1]]).sum(1) / ideal).sum())
    n = max(1, len(users))
    return {f"recall_at_{k}": totals["fm"][0] / n, f"ndcg_at_{k}": totals["fm"][1] / n,
            f"popularity_recall_at_{k}": totals["pop"][0] / n,
            f"popularity_ndcg_at_{k}": totals["pop"][1] / n, "eval_customers": float(len(users))}


def load_version(store: Store, model: str, version: str) -> Any:
    """A registered recommender version, ready to serve (``recommend_rows``).

    Args:
        store: the store holding the registry.
        model: the recommender's name.
        version: its version.

    Returns:
        A :class:`~featurestore.recsys.artifact.ServedRecommender` for a version with a
        ``recommender.npz``, else an :class:`FMRecommender` (FM versions from before #29).
    """
    from .recsys.artifact import FILENAME, ServedRecommender

    record = registry.get_version(store, model, version)
    if str(record.get("model_file") or "").endswith("/" + FILENAME):
        return ServedRecommender(registry.load_model_bytes(store, model, version), version)
    if FILENAME in (record.get("files_sha256") or {}):
        return ServedRecommender(registry.load_file_bytes(store, model, version, FILENAME),
                                 version)
    return FMRecommender.from_bytes(registry.load_model_bytes(store, model, version),
                                    registry.load_file_bytes(store, model, version, INDEX),
                                    version)


class Recommendations:
    """The production version of one recommender (``model``, the setting
    ``recommendation_model``), reloaded (off to the side, then swapped) when production moves
    to another version."""

    def __init__(self, store: Store, poll_seconds: float = 30.0, model: str = MODEL) -> None:
        self.store, self.model = store, model
        self._ref: SwappedReference[Any] = SwappedReference(
            lambda: registry.production_version(store, model), self._load, poll_seconds)

    def _load(self, version: str) -> Any:
        return load_version(self.store, self.model, version)

    def current(self) -> Any:
        """The production recommender.

        Raises:
            ModelUnavailableError: no production version.
        """
        rec = self._ref.get()
        if rec is None:
            production_or_raise(self.store, self.model)  # raises, saying why
            raise NotFoundError(f"model {self.model!r} cannot be loaded")  # pragma: no cover
        return rec

    def recommend(self, customer_id: str, k: int = 10, exclude_purchased: bool = True
                  ) -> dict[str, Any]:
        """SPEC §7's answer: ``{"customer_id", "model", "version", "items"}``.

        Raises:
            ModelUnavailableError: no production version (HTTP 503).
            NotFoundError: the model does not know the customer (HTTP 404).
        """
        rec = self.current()
        items = rec.recommend_rows([customer_id], k, exclude_purchased)[0]
        if items is None:
            raise NotFoundError(f"customer {clip(customer_id)} is not known to {self.model} "
                                f"{rec.version} (it knows customers with retail purchases "
                                "up to its training)")
        return {"customer_id": customer_id, "model": self.model, "version": rec.version,
                "items": items}

    def batch(self, customer_ids: list[str], k: int = 10, exclude_purchased: bool = True
              ) -> dict[str, Any]:
        """``{"results": [{"customer_id", "found", "items"}]}`` in request order (one version
        for the whole batch)."""
        rec = self.current()
        answers = rec.recommend_rows(list(customer_ids), k, exclude_purchased)
        results = [{"customer_id": cid, "found": items is not None, "items": items}
                   for cid, items in zip(customer_ids, answers, strict=True)]
        return {"model": self.model, "version": rec.version, "results": results}
