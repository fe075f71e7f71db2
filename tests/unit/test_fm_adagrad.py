"""The local FM classifier's per-row Adagrad solver (featurestore/retrain/fm_adagrad.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import roc_auc_score

from featurestore.retrain.fm_adagrad import fit_adagrad
from featurestore.training.recordio import read_feature_dim, write_recordio_protobuf


def _planted(n: int = 20_000, users: int = 60, items: int = 50, seed: int = 0):
    """Rows one-hot (user, item) labelled by a planted rank-2 FM: y ~ Bernoulli(sigmoid(.))."""
    rng = np.random.default_rng(seed)
    U, P = rng.normal(0, 1.5, (users, 2)), rng.normal(0, 1.5, (items, 2))
    b = rng.normal(0, 0.5, items)
    u, i = rng.integers(0, users, n), rng.integers(0, items, n)
    logit = b[i] + (U[u] * P[i]).sum(1) - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    X = sp.csr_matrix((np.ones(2 * n, np.float32), (np.repeat(np.arange(n), 2),
                                                    np.column_stack([u, users + i]).ravel())),
                      shape=(n, users + items))
    return X, y, logit


def _fm_logit(X: sp.csr_matrix, w0: float, w: np.ndarray, V: np.ndarray) -> np.ndarray:
    """The FM equation with an explicit double loop over each row's feature pairs."""
    out = np.empty(X.shape[0])
    for r in range(X.shape[0]):
        idx, val = X.indices[X.indptr[r]:X.indptr[r + 1]], X.data[X.indptr[r]:X.indptr[r + 1]]
        total = w0 + float(w[idx] @ val)
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                total += float(V[idx[a]] @ V[idx[b]]) * val[a] * val[b]
        out[r] = total
    return out


def test_learns_a_planted_fm_close_to_the_truth():
    X, y, logit = _planted()
    train, test = slice(0, 15_000), slice(15_000, None)
    fm = fit_adagrad(X[train], y[train], num_factors=8, epochs=10, lr=0.1, reg=1e-5)[10]
    pred = fm.predict(X[test])
    truth_auc = roc_auc_score(y[test], logit[test])  # the best any model can do
    assert roc_auc_score(y[test], pred) > truth_auc - 0.03
    assert np.corrcoef(pred, logit[test])[0, 1] > 0.9


def test_saved_parameters_are_the_fm_equation_that_was_trained():
    X, y, _ = _planted(n=3_000)
    fm = fit_adagrad(X, y, num_factors=4, epochs=2)[2]
    assert fm.loss == "logistic" and fm.V.shape == (X.shape[1], 4)
    np.testing.assert_allclose(fm.predict(X[:200]), _fm_logit(X[:200], fm.w0, fm.w, fm.V),
                               rtol=1e-6, atol=1e-6)  # float32 rows
    z = np.load(io.BytesIO(fm.to_bytes()))  # model.npz as SageMaker's FM artifact is read
    assert set(z.files) == {"w0", "w", "V"}


def test_one_run_gives_every_pass_count_exactly_as_separate_runs():
    X, y, _ = _planted(n=4_000)
    path = fit_adagrad(X, y, num_factors=4, epochs=[1, 3], seed=3)
    alone = fit_adagrad(X, y, num_factors=4, epochs=3, seed=3)[3]
    assert sorted(path) == [1, 3]
    np.testing.assert_array_equal(path[3].V, alone.V)
    np.testing.assert_array_equal(path[3].w, alone.w)
    assert not np.array_equal(path[1].V, path[3].V)


def test_more_passes_lower_the_training_log_loss():
    X, y, _ = _planted(n=8_000)

    def log_loss(fm) -> float:
        p = 1 / (1 + np.exp(-fm.predict(X)))
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    runs = fit_adagrad(X, y, num_factors=4, epochs=[1, 8], lr=0.05)
    assert log_loss(runs[8]) < log_loss(runs[1]) < np.log(2)


def test_zero_passes_are_refused():
    X, y, _ = _planted(n=100)
    with pytest.raises(ValueError, match="epochs must be positive"):
        fit_adagrad(X, y, epochs=0)


def test_feature_dim_from_the_first_record_matches_the_full_read():
    from featurestore.training.recordio import read_recordio_protobuf

    X, y, _ = _planted(n=50)
    buf = io.BytesIO()
    write_recordio_protobuf(buf, X, y)
    buf.seek(0)
    full, _ = read_recordio_protobuf(io.BytesIO(buf.getvalue()))
    assert read_feature_dim(buf) == full.shape[1] == X.shape[1]
    assert read_feature_dim(io.BytesIO(b"")) is None
    with pytest.raises(ValueError, match="bad RecordIO magic"):
        read_feature_dim(io.BytesIO(b"\x00" * 16))
