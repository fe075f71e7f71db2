"""The FM trained as recommenders are trained (issue #29): a binary classifier on bought pairs
(label 1) against sampled unbought items (label 0), split by time.

Features as the regressor export (:mod:`.fm`): one-hot customer, one-hot item, one-hot country
(the customer's latest), the item description's TF-IDF. :class:`FMDesign` holds what turns any
(customer, item) pairs into those rows, so the exporter (recordIO for SageMaker and the local
backend) and the trainer (its validation and refit windows) build identical rows.

Negatives: for every positive pair, ``negatives`` items drawn uniformly (seeded) among all
items; a draw the customer bought in the window is dropped.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["FMDesign", "build_design", "classifier_rows", "design_from_index",
           "index_bytes"]

BLOCKS = ("customer", "item", "country", "tfidf")


@dataclasses.dataclass(frozen=True)
class FMDesign:
    """Customers, items and their side features (ids sorted, as :class:`Purchases`)."""

    customers: np.ndarray
    items: np.ndarray
    descriptions: np.ndarray
    countries: np.ndarray
    customer_country: np.ndarray  # index into countries, per customer
    item_tfidf: sp.csr_matrix  # items x vocabulary

    @property
    def blocks(self) -> dict[str, list[int]]:
        widths = [len(self.customers), len(self.items), len(self.countries),
                  self.item_tfidf.shape[1]]
        bounds = np.cumsum([0, *widths]).tolist()
        return {b: [bounds[i], bounds[i + 1]] for i, b in enumerate(BLOCKS)}

    @property
    def feature_dim(self) -> int:
        return self.blocks["tfidf"][1]

    def rows(self, customer: np.ndarray, item: np.ndarray) -> sp.csr_matrix:
        """The FM rows of (customer, item) index pairs."""
        n = len(customer)
        b = self.blocks
        ones = sp.csr_matrix((np.ones(3 * n, np.float32), (
            np.tile(np.arange(n), 3),
            np.concatenate([b["customer"][0] + customer, b["item"][0] + item,
                            b["country"][0] + self.customer_country[customer]]))),
            shape=(n, self.feature_dim))
        tfidf = sp.hstack([sp.csr_matrix((n, b["tfidf"][0]), dtype=np.float32),
                           self.item_tfidf[item]], format="csr", dtype=np.float32)
        return sp.csr_matrix(ones + tfidf, dtype=np.float32)


def build_design(tx: pd.DataFrame, customers: np.ndarray, items: np.ndarray,
                 descriptions: np.ndarray) -> FMDesign:
    """The design for cleaned transactions (``customer_id``, ``country``, ``invoice_date``,
    ``invoice_no``) over the given sorted customers and items."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from .fm import TFIDF_SETTINGS

    tx = tx.astype({"customer_id": str})
    latest = tx.sort_values(["invoice_date", "invoice_no"], kind="stable")
    country = latest.groupby("customer_id")["country"].last().astype(str)
    per_customer = pd.Series(customers).map(country).fillna("").to_numpy().astype(str)
    countries = np.sort(np.unique(per_customer))
    vec = TfidfVectorizer(dtype=np.float32, **TFIDF_SETTINGS)
    tfidf = sp.csr_matrix(vec.fit_transform(descriptions), dtype=np.float32)
    return FMDesign(customers=customers, items=items, descriptions=descriptions,
                    countries=countries,
                    customer_country=np.searchsorted(countries, per_customer).astype(np.int64),
                    item_tfidf=tfidf)


def classifier_rows(design: FMDesign, bought: sp.csr_matrix, negatives: int = 4,
                    seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    """Rows and 0/1 labels: every bought pair of ``bought`` (customers x items, > 0) and
    ``negatives`` sampled unbought items per pair (see the module docstring)."""
    bought = sp.csr_matrix(bought)
    pc, pi = bought.nonzero()
    rng = np.random.default_rng(seed)
    nc = np.repeat(pc, negatives)
    ni = rng.integers(0, len(design.items), size=len(nc))
    n_items = len(design.items)
    keys = np.sort(pc.astype(np.int64) * n_items + pi)  # bought pairs, as one sorted key
    drawn = nc.astype(np.int64) * n_items + ni
    at = np.minimum(np.searchsorted(keys, drawn), max(len(keys) - 1, 0))
    keep = keys[at] != drawn if len(keys) else np.ones(len(drawn), bool)
    nc, ni = nc[keep], ni[keep]
    customer = np.concatenate([pc, nc])
    item = np.concatenate([pi, ni])
    y = np.concatenate([np.ones(len(pc), np.float32), np.zeros(len(nc), np.float32)])
    order = rng.permutation(len(y))
    return design.rows(customer[order], item[order]), y[order]


def index_bytes(design: FMDesign, pairs: sp.csr_matrix, test_pairs: sp.csr_matrix) -> bytes:
    """``index.npz`` as :class:`featurestore.recommend.FMRecommender` reads it (every bought
    pair; ``pair_test`` flags those first bought in the test window)."""
    pc, pi = sp.csr_matrix(pairs).nonzero()
    test = np.asarray(sp.csr_matrix(test_pairs)[pc, pi]).ravel() > 0
    t = design.item_tfidf
    buf = io.BytesIO()
    np.savez_compressed(
        buf, customers=design.customers.astype(str), items=design.items.astype(str),
        descriptions=design.descriptions.astype(str), countries=design.countries.astype(str),
        customer_country=design.customer_country, pair_customer=pc.astype(np.int64),
        pair_item=pi.astype(np.int64), pair_test=test, tfidf_data=t.data,
        tfidf_indices=t.indices, tfidf_indptr=t.indptr, tfidf_shape=np.array(t.shape),
        blocks=np.array([design.blocks[b] for b in BLOCKS]))
    return buf.getvalue()


def design_from_index(data: bytes) -> FMDesign:
    """The design an ``index.npz`` (:func:`index_bytes`) describes."""
    z = np.load(io.BytesIO(data))
    return FMDesign(customers=z["customers"], items=z["items"],
                    descriptions=z["descriptions"], countries=z["countries"],
                    customer_country=z["customer_country"],
                    item_tfidf=sp.csr_matrix((z["tfidf_data"], z["tfidf_indices"],
                                              z["tfidf_indptr"]),
                                             shape=tuple(z["tfidf_shape"])))


def describe(design: FMDesign) -> dict[str, Any]:
    """Metadata fields of the design."""
    return {"feature_dim": design.feature_dim, "blocks": design.blocks,
            "customers": int(len(design.customers)), "items": int(len(design.items)),
            "countries": int(len(design.countries)),
            "tfidf_vocabulary": int(design.item_tfidf.shape[1])}
