"""The recommender protocol's pure parts (issue #29): the holdout windows, top-k with ties,
and the two-mode ranking metrics checked against a plain per-customer Python loop."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
import scipy.sparse as sp

from featurestore._exceptions import TrainingError
from featurestore.recsys.data import plan_holdout
from featurestore.recsys.evaluate import evaluate_holdout, top_k


def test_the_issue_protocol_windows():
    plan = plan_holdout(dt.date(2010, 12, 1), dt.date(2011, 12, 9))
    assert plan.test_start == dt.date(2011, 11, 10)  # the test month 2011-11-10..2011-12-09
    assert plan.validation_start == dt.date(2011, 10, 11)
    assert plan.as_dict()["validation"] == ["2011-10-11", "2011-11-09"]


def test_too_little_history_is_one_clear_error():
    with pytest.raises(TrainingError, match="span 60 days .* need at least 90"):
        plan_holdout(dt.date(2026, 1, 1), dt.date(2026, 3, 1))
    plan_holdout(dt.date(2026, 1, 1), dt.date(2026, 3, 31))  # 90 days: enough


def test_top_k_breaks_ties_by_index_even_at_the_cut():
    scores = np.array([[1.0, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    assert top_k(scores, 3).tolist() == [[1, 0, 2]]
    rng = np.random.default_rng(0)
    s = rng.integers(0, 3, size=(50, 40)).astype(float)
    expected = np.argsort(-s, axis=1, kind="stable")[:, :7]
    assert (top_k(s, 7) == expected).all()


def _naive(scores, fit, test, k=10):
    """Per customer: recall, NDCG and hit-rate@k in both modes, by hand."""
    out = {"any": [], "new": []}
    for c in range(fit.shape[0]):
        seen = set(np.flatnonzero(fit[c]))
        if not seen:
            continue
        bought = set(np.flatnonzero(test[c]))
        for mode, truth in (("any", bought), ("new", bought - seen)):
            if not truth:
                continue
            cand = [i for i in range(fit.shape[1]) if mode == "any" or i not in seen]
            ranked = sorted(cand, key=lambda i: (-scores[c, i], i))[:k]
            hits = [i in truth for i in ranked]
            dcg = sum(1 / math.log2(p + 2) for p, h in enumerate(hits) if h)
            ideal = sum(1 / math.log2(p + 2) for p in range(min(len(truth), k)))
            out[mode].append((sum(hits) / len(truth), dcg / ideal, float(any(hits))))
    return {m: np.mean(v, axis=0) for m, v in out.items()}


def test_metrics_equal_a_plain_loop():
    rng = np.random.default_rng(1)
    fit = (rng.random((80, 30)) < 0.15) * rng.integers(1, 4, (80, 30))
    test = (rng.random((80, 30)) < 0.1).astype(float)
    scores = rng.random((80, 30))
    got = evaluate_holdout(lambda rows: scores[rows], sp.csr_matrix(fit.astype(float)),
                           sp.csr_matrix(test), rounds=30)
    want = _naive(scores, fit, test)
    for mode in ("any", "new"):
        for j, metric in enumerate(("recall", "ndcg", "hit_rate")):
            assert got["metrics"][f"{metric}_at_10_{mode}"] == pytest.approx(want[mode][j])
    pop = (fit > 0).sum(0).astype(float)
    again = fit + pop / (pop.max() + 1)
    assert got["metrics"]["popular_recall_at_10_new"] == pytest.approx(
        _naive(np.tile(pop, (80, 1)), fit, test)["new"][0])
    assert got["metrics"]["buy_again_recall_at_10_any"] == pytest.approx(
        _naive(again, fit, test)["any"][0])
    cell = got["table"]["model"]["new"]["recall"]
    assert cell["low"] <= cell["value"] <= cell["high"]
    assert len(got["bootstrap"]["recall_at_10_new"]) == 30
