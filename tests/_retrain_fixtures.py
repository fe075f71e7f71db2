"""TEST FIXTURE (not library code): synthetic training exports in exactly the layouts that
``featurestore.training.export_xgboost`` / ``export_fm`` write, so the retrain tests run before
(and independently of) the training helper's branch.

* xgboost-csv: ``train/train.csv``, ``validation/validation.csv``, ``test/test.csv`` (label
  first, no header, empty field = missing) + ``metadata.json``.
* fm-recordio: ``train/train.protobuf``, ``test/test.protobuf`` (SageMaker recordIO-protobuf)
  + ``metadata.json``. The tiny recordIO-protobuf writer/reader below is a stand-in used only
  when ``featurestore.training.recordio`` is not importable (the SageMaker v3 SDK's
  ``write_spmatrix_to_sparse_tensor`` raises NotImplementedError).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

FEATURES = ["page_views_1d", "page_views_7d", "page_views_30d", "product_views_7d",
            "product_views_30d", "distinct_products_viewed_30d", "cart_adds_7d",
            "purchases_30d", "days_since_last_purchase"]


# -- xgboost-csv ------------------------------------------------------------------------------
def xgb_frame(n: int, rng: np.random.Generator, informative: bool = True
              ) -> tuple[np.ndarray, np.ndarray]:
    """Counts with a planted signal: product views and cart adds drive a ~2% purchase rate."""
    X = np.column_stack([rng.poisson(lam, n).astype(float)
                         for lam in (1, 5, 15, 2, 6, 3, 0.3, 0.2, 10)])
    X[rng.random(n) < 0.6, 8] = np.nan  # days_since_last_purchase: null when no purchase
    logit = -7.5 + 0.3 * X[:, 4] + 2.0 * X[:, 6]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    if not informative:  # the planted quality drop: informative columns replaced by noise
        X[:, 4] = rng.permutation(X[:, 4])
        X[:, 6] = rng.permutation(X[:, 6])
        X[:, 3] = rng.permutation(X[:, 3])
    return X, y


def _write_csv(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for label, row in zip(y, X, strict=True):
            f.write(",".join([f"{int(label)}"] + ["" if np.isnan(v) else f"{v:g}" for v in row]))
            f.write("\n")


def make_xgb_export(out: Path, *, seed: int = 0, rows: tuple[int, int, int] = (6000, 2000, 3000),
                    informative: bool = True) -> Path:
    rng = np.random.default_rng(seed)
    out = Path(out)
    meta: dict[str, Any] = {"format": "xgboost-csv", "feature_names": FEATURES,
                            "label": "purchased_next_30d", "rows": {}, "positive_rate": {},
                            "as_of": {}}
    for split, n, dates in zip(("train", "validation", "test"), rows,
                               (["2026-01-01", "2026-02-01"], ["2026-02-02", "2026-02-10"],
                                ["2026-02-11", "2026-02-20"]), strict=True):
        X, y = xgb_frame(n, rng, informative)
        _write_csv(out / split / f"{split}.csv", X, y)
        meta["rows"][split] = n
        meta["positive_rate"][split] = float(y.mean())
        meta["as_of"][split] = dates
    p = meta["positive_rate"]["train"]
    meta["scale_pos_weight"] = (1 - p) / p
    (out / "metadata.json").write_text(json.dumps(meta))
    return out


# -- recordIO-protobuf stand-in ---------------------------------------------------------------
_MAGIC = 0xCED7230A


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _tensor(values: np.ndarray, keys: np.ndarray | None, shape: int | None) -> bytes:
    body = _field(1, np.asarray(values, "<f4").tobytes())
    if keys is not None:
        body += _field(2, b"".join(_varint(int(k)) for k in keys))
    if shape is not None:
        body += _field(3, _varint(shape))
    return _field(2, body)  # Value.float32_tensor = 2


def _map_entry(field: int, value: bytes) -> bytes:
    return _field(field, _field(1, b"values") + _field(2, value))


def write_recordio_protobuf(f, X: sp.csr_matrix, y: np.ndarray) -> None:
    X = sp.csr_matrix(X)
    for i in range(X.shape[0]):
        s, e = X.indptr[i], X.indptr[i + 1]
        rec = (_map_entry(1, _tensor(X.data[s:e], X.indices[s:e], X.shape[1]))
               + _map_entry(2, _tensor(np.array([y[i]]), None, None)))
        f.write(struct.pack("<II", _MAGIC, len(rec)) + rec + b"\0" * (-len(rec) % 4))


def _parse(buf: bytes) -> list[tuple[int, Any]]:
    out, i = [], 0
    while i < len(buf):
        tag, i = _read_varint(buf, i)
        num, wt = tag >> 3, tag & 7
        if wt == 2:
            n, i = _read_varint(buf, i)
            out.append((num, buf[i:i + n]))
            i += n
        elif wt == 0:
            v, i = _read_varint(buf, i)
            out.append((num, v))
        else:
            raise ValueError(f"wire type {wt} not used by this stand-in")
    return out


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def _tensor_of(entry: bytes) -> tuple[np.ndarray, list[int], int | None]:
    value = dict(_parse(entry))[2]  # map value
    tensor = dict(_parse(value))[2]  # float32_tensor
    fields = _parse(tensor)
    vals = np.concatenate([np.frombuffer(p, "<f4") for n, p in fields if n == 1] or [[]])
    keys = [k for n, p in fields if n == 2 for k in _varints(p)]
    shape = next((_varints(p)[0] for n, p in fields if n == 3), None)
    return vals, keys, shape


def _varints(p: bytes) -> list[int]:
    out, i = [], 0
    while i < len(p):
        v, i = _read_varint(p, i)
        out.append(v)
    return out


def read_recordio_protobuf(f) -> tuple[sp.csr_matrix, np.ndarray]:
    data = f.read()
    i, rows, cols, vals, labels, dim = 0, [], [], [], [], 0
    while i < len(data):
        magic, n = struct.unpack_from("<II", data, i)
        assert magic == _MAGIC
        rec = _parse(data[i + 8:i + 8 + n])
        i += 8 + n + (-n % 4)
        feats = next(p for num, p in rec if num == 1)
        v, k, shape = _tensor_of(feats)
        dim = max(dim, shape or 0)
        rows += [len(labels)] * len(v)
        cols += k
        vals += list(v)
        labels.append(float(_tensor_of(next(p for num, p in rec if num == 2))[0][0]))
    X = sp.csr_matrix((vals, (rows, cols)), shape=(len(labels), dim), dtype=np.float32)
    return X, np.asarray(labels, dtype=np.float32)


def recordio_reader():
    """The real reader once the training branch is merged, else this fixture's stand-in."""
    try:
        from featurestore.training.recordio import read_recordio_protobuf as real
        return real
    except ImportError:
        return read_recordio_protobuf


def _writer():
    try:
        from featurestore.training.recordio import write_recordio_protobuf as real
        return real
    except ImportError:
        return write_recordio_protobuf


# -- fm-recordio ------------------------------------------------------------------------------
def make_fm_export(out: Path, *, seed: int = 0, customers: int = 300, items: int = 80,
                   rank: int = 3, per_customer: int = 40, test_fraction: float = 0.2) -> Path:
    """Low-rank ratings: y = 3 + b_item + <p_customer, q_item> + noise, one-hot encoded."""
    rng = np.random.default_rng(seed)
    P = rng.normal(0, 1, (customers, rank))
    Q = rng.normal(0, 1, (items, rank))
    b = rng.normal(0, 0.5, items)
    cu = np.repeat(np.arange(customers), per_customer)
    it = np.concatenate([rng.choice(items, per_customer, replace=False)
                         for _ in range(customers)])
    y = 3 + b[it] + (P[cu] * Q[it]).sum(1) + rng.normal(0, 0.3, len(cu))
    dim = customers + items
    X = sp.csr_matrix((np.ones(2 * len(cu)), (np.tile(np.arange(len(cu)), 2),
                                             np.concatenate([cu, customers + it]))),
                      shape=(len(cu), dim), dtype=np.float32)
    test = rng.random(len(cu)) < test_fraction
    out = Path(out)
    write = _writer()
    for split, mask in (("train", ~test), ("test", test)):
        (out / split).mkdir(parents=True, exist_ok=True)
        with open(out / split / f"{split}.protobuf", "wb") as f:
            write(f, X[mask], y[mask].astype(np.float32))
    meta = {"format": "fm-recordio", "feature_dim": dim,
            "rows": {"train": int((~test).sum()), "test": int(test.sum())},
            "nnz": int(X.nnz), "sparsity": 1 - X.nnz / (X.shape[0] * dim),
            "blocks": [{"name": "customer_id", "start": 0, "size": customers},
                       {"name": "stock_code", "start": customers, "size": items}]}
    (out / "metadata.json").write_text(json.dumps(meta))
    return out
