"""Local backend: XGBoost with early stopping (+ a small tuning search) and a numpy/scipy FM.

No maintained factorization-machines package installs cleanly on Python 3.11+ (fastFM and
pyFM need old Cython builds and are unmaintained), so :class:`FactorizationMachine` is a small
vectorised implementation: second-order FM (Rendle 2010) trained with mini-batch Adam on CSR
batches, using the O(k * nnz) identity for the pairwise term. The recommender's FM classifier
is the same model fitted by per-row Adagrad (:mod:`.fm_adagrad`).
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._exceptions import TrainingError
from . import quality

__all__ = ["TrainResult", "train_xgboost", "train_fm", "classifier_metrics",
           "FactorizationMachine", "read_export_metadata", "item_mean_baseline"]

Reader = Callable[[Any], tuple[sp.csr_matrix, np.ndarray]]


@dataclass
class TrainResult:
    """What a backend hands the registry: metrics, the model bytes and how it was trained."""

    metrics: dict[str, float]
    model_bytes: bytes | None
    model_filename: str
    params: dict[str, Any] = field(default_factory=dict)
    artifact: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: more files of the version (name -> bytes), e.g. a recommender's ``recommender.npz``
    files: dict[str, bytes] = field(default_factory=dict)


def _open(url: str, storage_options: dict[str, Any] | None, mode: str = "rb"):
    return fsspec.open(url, mode, **(storage_options or {}))


def read_export_metadata(export_url: str, storage_options: dict[str, Any] | None = None
                         ) -> dict[str, Any]:
    try:
        with _open(f"{export_url.rstrip('/')}/metadata.json", storage_options) as f:
            return json.load(f)
    except FileNotFoundError:
        raise TrainingError(
            f"no metadata.json under {export_url}: point at a directory written by "
            "featurestore.training.export_xgboost / export_fm"
        ) from None


def _read_csv(url: str, storage_options: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
    with _open(url, storage_options) as f:
        frame = pd.read_csv(f, header=None, dtype="float64")  # empty field -> NaN = missing
    values = frame.to_numpy()
    return values[:, 1:], values[:, 0]


# -- classifier metrics --------------------------------------------------------------------
def classifier_metrics(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """PR-AUC (average precision), ROC-AUC, positive rate and recall among the top 1% scores."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true = np.asarray(y_true).astype(int)
    positives = int(y_true.sum())
    n = len(y_true)
    if n == 0 or positives in (0, n):
        raise TrainingError(
            f"the held-out split has {positives} positives in {n} rows; PR-AUC/ROC-AUC need "
            "both classes - export a longer date range"
        )
    top = max(1, int(np.ceil(0.01 * n)))
    order = np.argsort(-scores, kind="stable")[:top]
    return {
        "pr_auc": float(average_precision_score(y_true, scores)),
        "roc_auc": float(roc_auc_score(y_true, scores)),
        "positive_rate": positives / n,
        "recall_at_top_1pct": float(y_true[order].sum() / positives),
        "test_rows": float(n),
    }


# -- XGBoost ---------------------------------------------------------------------------------
BASE_XGB_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "aucpr",
    "max_depth": 5,
    "eta": 0.1,
    "min_child_weight": 1.0,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "tree_method": "hist",
    "nthread": 2,
    "seed": 0,
}
TUNING_SPACE: dict[str, list[Any]] = {
    "max_depth": [3, 4, 6, 8],
    "eta": [0.03, 0.1, 0.3],
    "min_child_weight": [1.0, 5.0, 10.0],
    "subsample": [0.7, 1.0],
    "colsample_bytree": [0.7, 1.0],
}


def train_xgboost(export_url: str, *, storage_options: dict[str, Any] | None = None,
                  tune: bool = False, num_boost_round: int = 400,
                  early_stopping_rounds: int = 30, tuning_trials: int = 8,
                  seed: int = 0) -> TrainResult:
    """Train the purchase classifier on an ``xgboost-csv`` export; metrics on its test split.

    Early stopping watches validation ``aucpr``. With ``tune`` a seeded random search over
    ``TUNING_SPACE`` (``tuning_trials`` draws plus the defaults) keeps the best validation
    PR-AUC; the test split is only scored once, with the chosen model.
    """
    import xgboost as xgb

    export_url = export_url.rstrip("/")
    meta = read_export_metadata(export_url, storage_options)
    if meta.get("format") != "xgboost-csv":
        raise TrainingError(f"{export_url} is a {meta.get('format')!r} export; "
                            "purchase-xgboost needs format 'xgboost-csv'")
    names = list(meta.get("feature_names") or [])
    splits = {s: _read_csv(f"{export_url}/{s}/{s}.csv", storage_options)
              for s in ("train", "validation", "test")}
    mats = {s: xgb.DMatrix(x, label=y, missing=np.nan,
                           feature_names=names if len(names) == x.shape[1] else None)
            for s, (x, y) in splits.items()}
    y_train = splits["train"][1]
    spw = meta.get("scale_pos_weight")
    if spw is None:
        pos = max(1.0, float(y_train.sum()))
        spw = (len(y_train) - pos) / pos
    base = {**BASE_XGB_PARAMS, "scale_pos_weight": float(spw), "seed": seed}

    candidates = [base]
    if tune:
        rng = random.Random(seed)
        for _ in range(tuning_trials):
            candidates.append({**base, **{k: rng.choice(v) for k, v in TUNING_SPACE.items()}})
    trials = []
    best: tuple[float, Any, dict[str, Any]] | None = None
    for params in candidates:
        booster = xgb.train(params, mats["train"], num_boost_round=num_boost_round,
                            evals=[(mats["validation"], "validation")],
                            early_stopping_rounds=early_stopping_rounds, verbose_eval=False)
        score = float(booster.best_score)
        trials.append({"params": {k: params[k] for k in TUNING_SPACE},
                       "validation_aucpr": score, "best_iteration": int(booster.best_iteration)})
        if best is None or score > best[0]:
            best = (score, booster, params)
    assert best is not None
    val_score, booster, params = best
    x_test, y_test = splits["test"]
    scores = booster.predict(mats["test"], iteration_range=(0, booster.best_iteration + 1))
    metrics = classifier_metrics(y_test, scores)
    metrics["validation_pr_auc"] = val_score
    metrics["best_iteration"] = float(booster.best_iteration)
    model = booster.save_raw(raw_format="json")
    return TrainResult(metrics=metrics, model_bytes=bytes(model), model_filename="model.json",
                       params={k: v for k, v in params.items() if k != "nthread"},
                       details={"tuning_trials": trials if tune else [],
                                "feature_names": names,
                                "feature_importance": quality.gain_importance(booster, names),
                                "pr_curve": quality.pr_curve_points(y_test, scores),
                                "bootstrap": quality.bootstrap_classifier(y_test, scores,
                                                                          seed=seed)})


# -- factorization machines ------------------------------------------------------------------
class FactorizationMachine:
    """Second-order FM regressor: y = w0 + <w, x> + sum_{i<j} <v_i, v_j> x_i x_j.

    Trained with mini-batch Adam on squared error with L2 on w and V; the pairwise term uses
    0.5 * sum_f ((XV)_f^2 - (X^2)(V^2)_f), so one batch costs O(k * nnz).
    """

    def __init__(self, num_factors: int = 64, epochs: int = 20, batch_size: int = 1000,
                 lr: float = 0.01, reg: float = 1e-4, init_std: float = 0.01, seed: int = 0,
                 loss: str = "squared"):
        # loss "logistic": a binary classifier on 0/1 targets (log loss on sigmoid(y_hat));
        # predict then returns the logit (the ranking is the same as the probability's)
        self.loss = loss
        self.num_factors, self.epochs, self.batch_size = num_factors, epochs, batch_size
        self.lr, self.reg, self.init_std, self.seed = lr, reg, init_std, seed
        self.w0 = 0.0
        self.w: np.ndarray | None = None
        self.V: np.ndarray | None = None

    def predict(self, X: sp.csr_matrix) -> np.ndarray:
        assert self.w is not None and self.V is not None, "fit first"
        X = sp.csr_matrix(X, dtype=np.float64)
        XV = X @ self.V
        pair = 0.5 * ((XV ** 2).sum(1) - (X.multiply(X) @ (self.V ** 2)).sum(1))
        return self.w0 + X @ self.w + np.asarray(pair).ravel()

    def fit(self, X: sp.csr_matrix, y: np.ndarray) -> FactorizationMachine:
        rng = np.random.default_rng(self.seed)
        X = sp.csr_matrix(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        n, d = X.shape
        mean = float(np.clip(y.mean(), 1e-6, 1 - 1e-6)) if self.loss == "logistic" else 0.0
        self.w0 = float(np.log(mean / (1 - mean))) if self.loss == "logistic" else float(y.mean())
        self.w = np.zeros(d)
        self.V = rng.normal(0.0, self.init_std, size=(d, self.num_factors))
        params = [self.w, self.V]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        m0 = v0 = 0.0
        b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
        for _ in range(self.epochs):
            order = rng.permutation(n)
            for start in range(0, n, self.batch_size):
                idx = order[start:start + self.batch_size]
                Xb, yb = X[idx], y[idx]
                XV = Xb @ self.V
                X2 = Xb.multiply(Xb).tocsr()
                pair = (XV ** 2).sum(1) - np.asarray((X2 @ (self.V ** 2)).sum(1)).ravel()
                pred = self.w0 + Xb @ self.w + 0.5 * pair
                if self.loss == "logistic":  # d(mean log loss)/d(pred)
                    r = (1.0 / (1.0 + np.exp(-np.clip(pred, -30, 30))) - yb) / len(idx)
                else:
                    r = (pred - yb) / len(idx)  # d(mean squared error / 2)/d(pred)
                g0 = float(r.sum())
                gw = Xb.T @ r + self.reg * self.w
                gV = Xb.T @ (XV * r[:, None]) - self.V * (X2.T @ r)[:, None] + self.reg * self.V
                t += 1
                m0 = b1 * m0 + (1 - b1) * g0
                v0 = b2 * v0 + (1 - b2) * g0 * g0
                self.w0 -= self.lr * (m0 / (1 - b1 ** t)) / (np.sqrt(v0 / (1 - b2 ** t)) + eps)
                for i, g in enumerate((gw, gV)):
                    m[i] = b1 * m[i] + (1 - b1) * g
                    v[i] = b2 * v[i] + (1 - b2) * g * g
                    step = (m[i] / (1 - b1 ** t)) / (np.sqrt(v[i] / (1 - b2 ** t)) + eps)
                    params[i] -= self.lr * step
        return self

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, w0=np.array([self.w0]), w=self.w, V=self.V)
        return buf.getvalue()


def _item_block(meta: dict[str, Any], feature_dim: int) -> tuple[int, int] | None:
    """(start, stop) of the one-hot item block from ``metadata.blocks``, if it names one.

    Accepts a list of ``{"name", "start"|"offset", "size"|"length"|"stop"|"end"}`` or a mapping
    name -> that dict or ``[start, stop]``. The item block is the one whose name mentions
    item/stock/product.
    """
    blocks = meta.get("blocks")
    entries: list[tuple[str, Any]] = []
    if isinstance(blocks, dict):
        entries = [(str(k), v) for k, v in blocks.items()]
    elif isinstance(blocks, list):
        entries = [(str(b.get("name", "")), b) for b in blocks if isinstance(b, dict)]
    for name, spec in entries:
        if not any(w in name.lower() for w in ("item", "stock", "product")):
            continue
        if isinstance(spec, (list, tuple)) and len(spec) == 2:
            return int(spec[0]), int(spec[1])
        if isinstance(spec, dict):
            start = spec.get("start", spec.get("offset"))
            if start is None:
                continue
            if "stop" in spec or "end" in spec:
                return int(start), int(spec.get("stop", spec.get("end")))
            size = spec.get("size", spec.get("length", spec.get("dim")))
            if size is not None:
                return int(start), int(start) + int(size)
    return None


def item_mean_baseline(X_train: sp.csr_matrix, y_train: np.ndarray, X_test: sp.csr_matrix,
                       block: tuple[int, int] | None) -> tuple[np.ndarray, str]:
    """Predict each test row with its item's mean training target (global mean when unseen)."""
    mean = float(np.mean(y_train))
    if block is None:
        return np.full(X_test.shape[0], mean), "global-mean"
    start, stop = block

    def item_of(X: sp.csr_matrix) -> np.ndarray:
        sub = sp.csr_matrix(X)[:, start:stop]
        has = np.diff(sub.indptr) > 0
        items = np.full(X.shape[0], -1)
        items[has] = sub.indices[sub.indptr[:-1][has]]
        return items

    tr, te = item_of(X_train), item_of(X_test)
    width = stop - start
    ok = tr >= 0
    sums = np.bincount(tr[ok], weights=y_train[ok], minlength=width)
    counts = np.bincount(tr[ok], minlength=width)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), mean)
    pred = np.where(te >= 0, means[np.clip(te, 0, width - 1)], mean)
    return pred, "item-mean"


def _default_reader() -> Reader:
    try:  # written by the training helper; imported lazily so this module imports without it
        from ..training.recordio import read_recordio_protobuf
    except ImportError as exc:
        raise TrainingError(
            "reading FM exports needs featurestore.training.recordio (not installed in this "
            f"build: {exc})"
        ) from None
    return read_recordio_protobuf


def train_fm(export_url: str, *, storage_options: dict[str, Any] | None = None,
             tune: bool = False, reader: Reader | None = None, num_factors: int = 64,
             epochs: int = 20, batch_size: int = 1000, seed: int = 0,
             holdout_days: int = 30, validation_days: int = 30) -> TrainResult:
    """Train the FM regressor on an ``fm-recordio`` export; RMSE vs the item-mean baseline.

    Hyperparameters follow the SageMaker reference notebook (64 factors, mini-batch 1,000,
    20 epochs). With ``tune`` a few learning rates / L2 strengths are tried on a 10% slice of
    the training split and the best one is refit on all of it.
    """
    export_url = export_url.rstrip("/")
    meta = read_export_metadata(export_url, storage_options)
    if meta.get("format") != "fm-recordio":
        raise TrainingError(f"{export_url} is a {meta.get('format')!r} export; "
                            "retail-fm needs format 'fm-recordio'")
    read = reader or _default_reader()
    if meta.get("predictor_type") == "binary_classifier":
        from .fm_recommender import train_fm_classifier

        return train_fm_classifier(export_url, meta, storage_options=storage_options,
                                   tune=tune, num_factors=num_factors, epochs=epochs,
                                   seed=seed, holdout_days=holdout_days,
                                   validation_days=validation_days)
    data = {}
    for split in ("train", "test"):
        with _open(f"{export_url}/{split}/{split}.protobuf", storage_options) as f:
            X, y = read(f)
        data[split] = (sp.csr_matrix(X, dtype=np.float64), np.asarray(y, dtype=np.float64))
    (X_tr, y_tr), (X_te, y_te) = data["train"], data["test"]
    dim = int(meta.get("feature_dim") or X_tr.shape[1])
    if X_tr.shape[1] < dim:
        X_tr.resize((X_tr.shape[0], dim))
    if X_te.shape[1] < dim:
        X_te.resize((X_te.shape[0], dim))
    settings = {"lr": 0.01, "reg": 1e-4}
    trials = []
    if tune:
        rng = np.random.default_rng(seed)
        hold = rng.random(X_tr.shape[0]) < 0.1
        best = None
        for lr in (0.003, 0.01, 0.03):
            for reg in (1e-5, 1e-4, 1e-3):
                fm = FactorizationMachine(num_factors, epochs, batch_size, lr=lr, reg=reg,
                                          seed=seed).fit(X_tr[~hold], y_tr[~hold])
                err = float(np.sqrt(np.mean((fm.predict(X_tr[hold]) - y_tr[hold]) ** 2)))
                trials.append({"lr": lr, "reg": reg, "holdout_rmse": err})
                if best is None or err < best[0]:
                    best = (err, {"lr": lr, "reg": reg})
        assert best is not None
        settings = best[1]
    fm = FactorizationMachine(num_factors, epochs, batch_size, seed=seed, **settings)
    fm.fit(X_tr, y_tr)
    rmse = float(np.sqrt(np.mean((fm.predict(X_te) - y_te) ** 2)))
    base_pred, base_kind = item_mean_baseline(X_tr, y_tr, X_te, _item_block(meta, dim))
    baseline = float(np.sqrt(np.mean((base_pred - y_te) ** 2)))
    metrics = {"rmse": rmse, "baseline_rmse": baseline,
               "rmse_vs_baseline": rmse / baseline if baseline else float("nan"),
               "test_rows": float(len(y_te))}
    return TrainResult(metrics=metrics, model_bytes=fm.to_bytes(), model_filename="model.npz",
                       params={"predictor_type": "regressor", "num_factors": num_factors,
                               "epochs": epochs, "mini_batch_size": batch_size, **settings},
                       details={"baseline": base_kind, "tuning_trials": trials,
                                "feature_dim": dim,
                                "bootstrap": quality.bootstrap_rmse(y_te, fm.predict(X_te),
                                                                    seed=seed)})
