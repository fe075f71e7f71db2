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

With ``predictor_type="binary_classifier"`` (:func:`export_fm_classifier`, what a
``retail-fm`` retrain builds since issue #29) the export is the
one recommenders are trained on (:mod:`.fm_classifier`): the train channel holds the pairs
bought before the test window (the last ``holdout_days`` of the data) as 1 with sampled
unbought items as 0, the test channel the same for the test window's new pairs; the
transaction lines go along as ``purchases.parquet`` (the trainer's validation window, holdout
scoring and refit read them). ``predictor_type="regressor"`` writes the seed's layout below.

Written as ``<out>/train/train.protobuf``, ``<out>/test/test.protobuf``, ``<out>/index.npz``
(the ids, descriptions and purchases a recommender needs, see ``_index_bytes``) and
``<out>/metadata.json`` (feature_dim, rows, nnz, sparsity, blocks, target, index).
"""

from __future__ import annotations

import io
import dataclasses
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

__all__ = ["FMMatrix", "build_fm_matrix", "read_transactions", "export_fm", "TFIDF_SETTINGS",
           "export_fm_classifier"]

TRANSACTIONS = layout.TRANSACTIONS
TFIDF_SETTINGS: dict[str, Any] = {"lowercase": True, "stop_words": "english"}
#: The recommender's index, written next to the recordIO files (see ``_index_bytes``).
INDEX = "index.npz"


@dataclass
class FMMatrix:
    X: scipy.sparse.csr_matrix
    y: np.ndarray
    blocks: dict[str, list[int]]
    customers: np.ndarray
    items: np.ndarray
    countries: np.ndarray
    vocabulary: list[str]
    descriptions: list[str] = dataclasses.field(default_factory=list)  # per item, "" if none

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
                    customers=customers, items=items, countries=countries, vocabulary=vocab,
                    descriptions=[str(d) for d in docs])


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def export_fm(store: Store, out_url: str, *, test_fraction: float = 0.2, seed: int = 0,
              storage_options: dict[str, Any] | None = None,
              predictor_type: str = "regressor", negatives: int = 4,
              holdout_days: int = 30, end: Any = None) -> ExportResult:
    """Write the FM train/test recordIO-protobuf files and metadata.json under ``out_url``.

    Args:
        store: the offline store (its ``transactions``).
        out_url: the export folder.
        test_fraction: the regressor's random test share.
        seed: split and negative-sampling seed.
        storage_options: fsspec options for ``out_url``.
        predictor_type: ``binary_classifier`` (time split, sampled negatives) or
            ``regressor`` (the seed's quantity target, random split).
        negatives: sampled negatives per bought pair (classifier).
        holdout_days: the classifier's test window.
        end: last invoice day to include (None: all).

    Returns:
        The export.
    """
    if predictor_type == "binary_classifier":
        return _export_classifier(store, out_url, seed=seed, storage_options=storage_options,
                                  negatives=negatives, holdout_days=holdout_days, end=end)
    if predictor_type != "regressor":
        from .._exceptions import ConfigError

        raise ConfigError(f"predictor_type {predictor_type!r}: choose binary_classifier or "
                          "regressor")
    tx = read_transactions(store)
    if end is not None:
        tx = tx[pd.to_datetime(tx["invoice_date"]).dt.date <= end]
    m = build_fm_matrix(tx)
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
    out.write_bytes(_index_bytes(m, test_idx), INDEX)
    files.append(out.uri(INDEX))
    meta["index"] = INDEX
    out.write_json(meta, "metadata.json")
    files.append(out.uri("metadata.json"))
    return ExportResult(out_url=out.url, metadata=meta, files=files)


def _index_bytes(m: FMMatrix, test_idx: np.ndarray) -> bytes:
    """What turns the FM's factors into recommendations (:mod:`featurestore.recommend`): the
    ids behind the one-hot blocks, each customer's country, each item's description and TF-IDF
    row, and every (customer, item) pair with its split (purchases, held-out ones flagged)."""
    block = m.X[:, m.blocks["customer"][0]:m.blocks["customer"][1]].tocsr()
    pair_customer = block.indices[block.indptr[:-1]]
    items = m.X[:, m.blocks["item"][0]:m.blocks["item"][1]].tocsr()
    pair_item = items.indices[items.indptr[:-1]]
    country = m.X[:, m.blocks["country"][0]:m.blocks["country"][1]].tocsr()
    customer_country = np.zeros(len(m.customers), np.int64)
    customer_country[pair_customer] = country.indices[country.indptr[:-1]]
    tfidf = m.X[:, m.blocks["tfidf"][0]:m.blocks["tfidf"][1]].tocsr()
    first = np.full(len(m.items), -1)
    first[pair_item[::-1]] = np.arange(len(pair_item))[::-1]  # a row of each item
    item_tfidf = tfidf[first].tocsr()
    test = np.zeros(len(pair_item), bool)
    test[test_idx] = True
    buf = io.BytesIO()
    np.savez_compressed(
        buf, customers=m.customers.astype(str), items=m.items.astype(str),
        descriptions=np.asarray(m.descriptions, dtype=str), countries=m.countries.astype(str),
        customer_country=customer_country, pair_customer=pair_customer.astype(np.int64),
        pair_item=pair_item.astype(np.int64), pair_test=test,
        tfidf_data=item_tfidf.data, tfidf_indices=item_tfidf.indices,
        tfidf_indptr=item_tfidf.indptr, tfidf_shape=np.array(item_tfidf.shape),
        blocks=np.array([m.blocks[b] for b in ("customer", "item", "country", "tfidf")]))
    return buf.getvalue()


def export_fm_classifier(store: Store, out_url: str, *, end: Any = None, seed: int = 0,
                         negatives: int = 4, holdout_days: int = 30,
                         storage_options: dict[str, Any] | None = None) -> ExportResult:
    """:func:`export_fm` with ``predictor_type="binary_classifier"``: the export a
    ``retail-fm`` retrain trains on (see the module docstring)."""
    return _export_classifier(store, out_url, seed=seed, storage_options=storage_options,
                              negatives=negatives, holdout_days=holdout_days, end=end)


def _export_classifier(store: Store, out_url: str, *, seed: int,
                       storage_options: dict[str, Any] | None, negatives: int,
                       holdout_days: int, end: Any) -> ExportResult:
    """The binary-classifier export (see the module docstring)."""
    import datetime as dt

    from ..recsys.data import purchases_from_transactions
    from .fm_classifier import build_design, classifier_rows, describe, index_bytes

    tx = read_transactions(store)
    if end is not None:
        tx = tx[pd.to_datetime(tx["invoice_date"]).dt.date <= end]
    purchases = purchases_from_transactions(tx)
    design = build_design(tx, purchases.customers, purchases.items, purchases.descriptions)
    test_start = purchases.last_day - dt.timedelta(days=holdout_days - 1)
    before = purchases.counts(None, test_start)
    later = purchases.counts(test_start, None)
    known = (np.diff(before.indptr) > 0).astype(np.float32)
    new_pairs = sp_new(later, before, known)
    out = Store(out_url, storage_options)
    files, rows = [], {}
    for name, bought, s in (("train", before, seed), ("test", new_pairs, seed + 1)):
        X, y = classifier_rows(design, bought, negatives, s)
        buf = io.BytesIO()
        write_recordio_protobuf(buf, X, y)
        out.write_bytes(buf.getvalue(), name, f"{name}.protobuf")
        files.append(out.uri(name, f"{name}.protobuf"))
        rows[name] = int(X.shape[0])
    out.write_bytes(index_bytes(design, purchases.counts(), new_pairs), INDEX)
    lines = io.BytesIO()
    tx[["customer_id", "stock_code", "invoice_no", "invoice_date", "description",
        "country"]].astype({"customer_id": str, "stock_code": str, "invoice_no": str}
                           ).to_parquet(lines, index=False)
    out.write_bytes(lines.getvalue(), "purchases.parquet")
    meta = {"format": "fm-recordio", "predictor_type": "binary_classifier",
            "target": "purchased", **describe(design), "rows": rows,
            "negatives_per_positive": negatives,
            "tfidf": {**TFIDF_SETTINGS, "fitted_on": "one document per item"},
            "split": {"method": "time", "holdout_days": holdout_days,
                      "test": [test_start.isoformat(), purchases.last_day.isoformat()],
                      "seed": seed},
            "index": INDEX, "purchases": "purchases.parquet"}
    out.write_json(meta, "metadata.json")
    files += [out.uri(INDEX), out.uri("purchases.parquet"), out.uri("metadata.json")]
    return ExportResult(out_url=out.url, metadata=meta, files=files)


def sp_new(later: scipy.sparse.csr_matrix, before: scipy.sparse.csr_matrix,
           known: np.ndarray) -> scipy.sparse.csr_matrix:
    """Pairs of ``later`` not in ``before``, for customers with ``known`` = 1."""
    fresh = (later > 0).astype(np.float32) - (later > 0).multiply(before > 0)
    fresh = scipy.sparse.csr_matrix(scipy.sparse.diags(known) @ fresh)
    fresh.eliminate_zeros()
    return fresh
