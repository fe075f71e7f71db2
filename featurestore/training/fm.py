"""Factorization-machines export from the retail ``transactions`` table (recordIO-protobuf).

As SageMaker's factorization-machines reference notebook does for Online Retail:

* one row per (customer, item) pair of the cleaned transactions (SPEC §2), target = sum of
  ``quantity`` over the pair;
* features, stacked left to right into one CSR float32 matrix: one-hot customer (sorted ids),
  one-hot item (``stock_code``, sorted), one-hot country (the customer's country on its latest
  invoice, as ``customer_retail_features.country``), then TF-IDF of the item's description;
* the item's description is its most frequent one (ties: alphabetically first), since a stock
  code can carry several spellings;
* TF-IDF: ``TfidfVectorizer(lowercase=True, stop_words="english", dtype=float32)`` with the
  default token pattern (words of 2+ letters/digits), l2 norm, smooth idf, fitted on one
  document per item (so frequent items do not dominate the idf);
* train/test split random by row, seeded (``numpy.random.default_rng(seed).permutation``).

Written as ``<out>/train/train.protobuf``, ``<out>/test/test.protobuf`` and
``<out>/metadata.json`` (feature_dim, rows, nnz, sparsity, blocks, target).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse

from .. import layout
from .._exceptions import NotFoundError
from ..storage import Store
from .recordio import write_recordio_protobuf
from .xgboost_export import ExportResult

__all__ = ["FMMatrix", "build_fm_matrix", "read_transactions", "export_fm", "TFIDF_SETTINGS"]

TRANSACTIONS = layout.TRANSACTIONS
TFIDF_SETTINGS: dict[str, Any] = {"lowercase": True, "stop_words": "english"}


@dataclass
class FMMatrix:
    X: scipy.sparse.csr_matrix
    y: np.ndarray
    blocks: dict[str, list[int]]
    customers: np.ndarray
    items: np.ndarray
    countries: np.ndarray
    vocabulary: list[str]

    @property
    def sparsity(self) -> float:
        rows, cols = self.X.shape
        return 1.0 - self.X.nnz / (rows * cols) if rows and cols else 1.0


def read_transactions(store: Store) -> pd.DataFrame:
    """The cleaned retail transactions (``<store>/transactions/event_date=*/``)."""
    import pyarrow.parquet as pq

    if not store.partitions(TRANSACTIONS, "event_date"):
        raise NotFoundError(f"no {TRANSACTIONS} table in {store.url}: run "
                            "`featurestore ingest <online_retail.csv.gz> --source retail` first")
    cols = ["invoice_no", "stock_code", "description", "quantity", "invoice_date",
            "customer_id", "country"]
    table = pq.read_table(store.path(TRANSACTIONS), filesystem=store.fs, columns=cols,
                          partitioning="hive")
    return table.to_pandas()


def build_fm_matrix(tx: pd.DataFrame) -> FMMatrix:
    """The FM design matrix and target from cleaned transactions (see module doc)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    tx = tx.astype({"customer_id": str, "stock_code": str})
    pairs = (tx.groupby(["customer_id", "stock_code"], sort=True)["quantity"].sum()
             .reset_index())
    latest = tx.sort_values(["invoice_date", "invoice_no"], kind="stable")
    country = latest.groupby("customer_id")["country"].last().astype(str)
    desc = (tx.dropna(subset=["description"])
            .groupby(["stock_code", "description"]).size().rename("n").reset_index()
            .sort_values(["stock_code", "n", "description"], ascending=[True, False, True])
            .drop_duplicates("stock_code").set_index("stock_code")["description"])

    customers = np.sort(pairs["customer_id"].unique())
    items = np.sort(pairs["stock_code"].unique())
    pair_country = pairs["customer_id"].map(country)
    countries = np.sort(pair_country.unique())
    n = len(pairs)
    ci = np.searchsorted(customers, pairs["customer_id"].to_numpy())
    ii = np.searchsorted(items, pairs["stock_code"].to_numpy())
    ki = np.searchsorted(countries, pair_country.to_numpy())

    vec = TfidfVectorizer(dtype=np.float32, **TFIDF_SETTINGS)
    docs = pd.Series(items).map(desc).fillna("").to_numpy()
    item_tfidf = scipy.sparse.csr_matrix(vec.fit_transform(docs), dtype=np.float32)
    vocab = list(vec.get_feature_names_out())

    def onehot(idx: np.ndarray, width: int) -> scipy.sparse.csr_matrix:
        return scipy.sparse.csr_matrix((np.ones(n, np.float32), (np.arange(n), idx)),
                                       shape=(n, width))

    parts = [onehot(ci, len(customers)), onehot(ii, len(items)),
             onehot(ki, len(countries)), item_tfidf[ii]]
    X = scipy.sparse.hstack(parts, format="csr", dtype=np.float32)
    bounds = np.cumsum([0] + [p.shape[1] for p in parts]).tolist()
    blocks = {name: [bounds[i], bounds[i + 1]]
              for i, name in enumerate(("customer", "item", "country", "tfidf"))}
    return FMMatrix(X=X, y=pairs["quantity"].to_numpy(np.float32), blocks=blocks,
                    customers=customers, items=items, countries=countries, vocabulary=vocab)


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def export_fm(store: Store, out_url: str, *, test_fraction: float = 0.2, seed: int = 0,
              storage_options: dict[str, Any] | None = None) -> ExportResult:
    """Write the FM train/test recordIO-protobuf files and metadata.json under ``out_url``."""
    m = build_fm_matrix(read_transactions(store))
    train_idx, test_idx = _split(m.X.shape[0], test_fraction, seed)
    out = Store(out_url, storage_options)
    files = []
    for name, idx in (("train", train_idx), ("test", test_idx)):
        buf = io.BytesIO()
        write_recordio_protobuf(buf, m.X[idx], m.y[idx])
        out.write_bytes(buf.getvalue(), name, f"{name}.protobuf")
        files.append(out.uri(name, f"{name}.protobuf"))
    meta = {
        "format": "fm-recordio",
        "feature_dim": int(m.X.shape[1]),
        "rows": {"train": int(len(train_idx)), "test": int(len(test_idx))},
        "nnz": int(m.X.nnz),
        "sparsity": m.sparsity,
        "blocks": m.blocks,
        "target": "quantity_sum",
        "customers": int(len(m.customers)),
        "items": int(len(m.items)),
        "countries": int(len(m.countries)),
        "tfidf_vocabulary": len(m.vocabulary),
        "tfidf": {**TFIDF_SETTINGS, "fitted_on": "one document per item"},
        "split": {"method": "random by row", "test_fraction": test_fraction, "seed": seed},
    }
    out.write_json(meta, "metadata.json")
    files.append(out.uri("metadata.json"))
    return ExportResult(out_url=out.url, metadata=meta, files=files)
