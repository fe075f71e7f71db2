"""``recommender.npz``: everything one version needs to serve (no export, no training code).

Arrays: ``form`` (``factors`` | ``similarity``), ``customers``, ``items``, ``descriptions``,
the purchase counts the served model was fitted on (``counts_*``, CSR: what
``exclude_purchased`` leaves out and what the repeat term reads), ``repeat_weight``, and the
scorer's arrays (:class:`~.algorithms.Fitted`; CSR matrices as ``<name>_data/_indices/
_indptr/_shape``), plus ``meta`` (JSON).
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import scipy.sparse as sp

from .algorithms import Fitted, blend
from .data import Purchases
from .evaluate import top_k

__all__ = ["FILENAME", "to_bytes", "ServedRecommender"]

FILENAME = "recommender.npz"
_CSR = ("user_items", "similarity")


def _put_csr(out: dict[str, np.ndarray], name: str, m: sp.csr_matrix) -> None:
    m = sp.csr_matrix(m)
    out.update({f"{name}_data": m.data, f"{name}_indices": m.indices,
                f"{name}_indptr": m.indptr, f"{name}_shape": np.array(m.shape)})


def _get_csr(z: Any, name: str) -> sp.csr_matrix:
    return sp.csr_matrix((z[f"{name}_data"], z[f"{name}_indices"], z[f"{name}_indptr"]),
                         shape=tuple(z[f"{name}_shape"]))


def to_bytes(model: Fitted, purchases: Purchases, counts: sp.csr_matrix, repeat_weight: float,
             meta: dict[str, Any] | None = None) -> bytes:
    """The servable file of ``model``.

    Args:
        model: the fitted scorer (rows = ``purchases.customers``, columns = ``items``).
        purchases: ids and descriptions.
        counts: the invoices per (customer, item) the model was fitted on.
        repeat_weight: the any-item blend weight.
        meta: recorded as JSON (algorithm, windows...).

    Returns:
        ``recommender.npz`` bytes.
    """
    out: dict[str, np.ndarray] = {
        "form": np.array(model.form), "customers": purchases.customers.astype(str),
        "items": purchases.items.astype(str),
        "descriptions": purchases.descriptions.astype(str),
        "repeat_weight": np.array([float(repeat_weight)]),
        "meta": np.array(json.dumps({**(meta or {}), "params": model.params}, default=str))}
    _put_csr(out, "counts", counts)
    for name, value in model.arrays.items():
        if name in _CSR:
            _put_csr(out, name, value)
        else:
            out[name] = np.asarray(value)
    buf = io.BytesIO()
    np.savez_compressed(buf, **out)
    return buf.getvalue()


_controller: Any = None


def _blas() -> Any:
    """The process's threadpoolctl controller (built once: building one scans the libraries)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


class ServedRecommender:
    """A loaded ``recommender.npz``: top-k per customer in either mode."""

    def __init__(self, data: bytes, version: str = "") -> None:
        z = np.load(io.BytesIO(data), allow_pickle=False)
        self.version = version
        self.form = str(z["form"])
        self.items, self.descriptions = z["items"], z["descriptions"]
        self.customers = {str(c): i for i, c in enumerate(z["customers"])}
        self._ids, self._texts = self.items.tolist(), self.descriptions.tolist()  # str, once
        self.counts = _get_csr(z, "counts").astype(np.float64)
        self.repeat_weight = float(z["repeat_weight"][0])
        self.meta = json.loads(str(z["meta"]))
        if self.form == "factors":
            arrays = {n: z[n] for n in ("customer_bias", "customer_vectors", "item_bias",
                                        "item_vectors")}
            arrays["item_vectors_t"] = np.ascontiguousarray(arrays["item_vectors"].T)
        else:
            arrays = {n: _get_csr(z, n) for n in _CSR}
            arrays["similarity"] = arrays["similarity"].tocsr()
        self.model = Fitted(self.form, arrays, self.meta.get("params", {}))

    def scores(self, rows: np.ndarray, exclude_purchased: bool) -> np.ndarray:
        """Served scores for customer ``rows`` (rows x items): the learned score with bought
        items at -inf (new items), or blended with the repeat term (any item)."""
        # One BLAS thread per request: the server runs requests side by side, and a threaded
        # (rows x factors) @ (factors x items) product measured 10x slower on a busy 2-core
        # host (4 ms vs 0.3 ms for one customer, 65 ms vs 6 ms for 100; docs/choices.md).
        with _blas().limit(limits=1, user_api="blas"):
            learned = self.model.scores(rows)
        bought = self.counts[rows]
        if exclude_purchased:
            r, c = bought.nonzero()
            learned[r, c] = -np.inf
            return learned
        return blend(learned, bought.toarray(), self.repeat_weight)

    def recommend_rows(self, customer_ids: list[str], k: int, exclude_purchased: bool
                       ) -> list[list[dict[str, Any]] | None]:
        """Top ``k`` per customer id, best first (ties: item order); None for an unknown one.

        Args:
            customer_ids: the customers, in answer order.
            k: items per customer at most.
            exclude_purchased: leave out the items each customer bought.

        Returns:
            ``[{"product_id", "score", "description"}]`` or None, per customer id.
        """
        rows = [self.customers.get(c) for c in customer_ids]
        known = np.array([r for r in rows if r is not None], np.int64)
        answers: list[list[dict[str, Any]] | None] = [None] * len(rows)
        if len(known) == 0:
            return answers
        scores = self.scores(known, exclude_purchased)
        top = top_k(scores, k)
        values = np.take_along_axis(scores, top, axis=1)
        finite = np.isfinite(values).tolist()
        top_l, values_l = top.tolist(), values.tolist()
        ids, texts = self._ids, self._texts
        j = 0
        for pos, row in enumerate(rows):
            if row is None:
                continue
            answers[pos] = [{"product_id": ids[i], "score": v, "description": texts[i]}
                            for i, v, ok in zip(top_l[j], values_l[j], finite[j]) if ok]
            j += 1
        return answers
