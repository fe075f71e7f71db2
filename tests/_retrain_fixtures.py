"""TEST FIXTURE (not library code): synthetic training exports in exactly the layouts that
``featurestore.training.export_xgboost`` / ``export_fm`` write, so the retrain tests run before
(and independently of) the training helper's branch.

* xgboost-csv: ``train/train.csv``, ``validation/validation.csv``, ``test/test.csv`` (label
  first, no header, empty field = missing) + ``metadata.json``.
* fm-recordio: ``train/train.protobuf``, ``test/test.protobuf`` (SageMaker recordIO-protobuf)
  + ``metadata.json``, written with ``featurestore.training.recordio``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from featurestore.settings import Settings
from featurestore.training.recordio import write_recordio_protobuf

#: The role the SageMaker tests pass (moto checks its shape, SAGEMAKER_VALIDATE_ROLE=false).
SAGEMAKER_ROLE = "arn:aws:iam::123456789012:role/featurestore-sagemaker"


def sagemaker_settings(store_url: str, bucket: str) -> Settings:
    """Settings of a store that retrains on the moto server's SageMaker: the test role, the
    bucket's ``sm`` prefix, fast polling and a short timeout (moto's jobs end at once)."""
    return Settings(store=store_url, sagemaker_role_arn=SAGEMAKER_ROLE,
                    sagemaker_s3_prefix=f"s3://{bucket}/sm", sagemaker_region="us-east-1",
                    sagemaker_instance_type="ml.m5.large", sagemaker_poll_seconds=0.05,
                    sagemaker_timeout_seconds=30)


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
    write = write_recordio_protobuf
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
