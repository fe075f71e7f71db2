"""The trivial-baseline gate of promotion (pure function, no store)."""

from __future__ import annotations

import math

import pytest

from featurestore.retrain.baseline import baseline_checked, baseline_failure
from featurestore.retrain.models import MODELS

XGB, FM = MODELS["purchase-xgboost"], MODELS["retail-fm"]


@pytest.mark.parametrize(("auc", "fails"), [(0.42, True), (0.5, True), (0.5001, False),
                                            (0.9, False), (math.nan, True)])
def test_classifier_must_beat_chance(auc, fails):
    reason = baseline_failure(XGB, {"roc_auc": auc, "pr_auc": 0.5, "positive_rate": 0.02})
    assert (reason is not None) is fails
    if fails and not math.isnan(auc):
        assert reason == (f"held-out roc_auc {auc:.4f} <= 0.5: no better than chance (the "
                          "trivial baseline)")


@pytest.mark.parametrize(("pr_auc", "rate", "fails"), [(0.02, 0.02, True), (0.019, 0.02, True),
                                                       (0.05, 0.02, False)])
def test_without_roc_auc_pr_auc_must_beat_the_positive_rate(pr_auc, rate, fails):
    metrics = {"pr_auc": pr_auc, "positive_rate": rate}  # SageMaker's XGBoost: aucpr only
    assert (baseline_failure(XGB, metrics) is not None) is fails
    assert baseline_checked(XGB, metrics)


def test_missing_metrics_cannot_be_judged_and_do_not_block():
    assert baseline_failure(XGB, {"pr_auc": 0.3}) is None
    assert not baseline_checked(XGB, {"pr_auc": 0.3})
    assert baseline_failure(FM, {"rmse": 1.0}) is None and not baseline_checked(FM, {"rmse": 1.0})


@pytest.mark.parametrize(("rmse", "base", "fails"), [(1.2, 1.0, True), (1.0, 1.0, True),
                                                     (0.9, 1.0, False), (math.inf, 1.0, True),
                                                     (math.nan, 1.0, True)])
def test_recommender_must_beat_the_item_mean(rmse, base, fails):
    reason = baseline_failure(FM, {"rmse": rmse, "baseline_rmse": base})
    assert (reason is not None) is fails
    if fails and math.isfinite(rmse):
        assert reason == (f"held-out rmse {rmse:.4f} >= item-mean baseline rmse {base:.4f}: "
                          "no better than predicting each item's mean rating")


def _samples(low: float, high: float) -> list[float]:
    """Bootstrap values spread evenly from ``low`` to ``high`` (their 95% interval is inside)."""
    return [low + (high - low) * i / 999 for i in range(1000)]


def test_issue30_first_model_indistinguishable_from_chance_is_not_promoted():
    # issue #30: ROC-AUC 0.527, PR-AUC 1.1x the positive rate, both intervals reach the baseline
    metrics = {"roc_auc": 0.527, "pr_auc": 0.088, "positive_rate": 0.08}
    assert baseline_failure(XGB, metrics) is None  # the point values alone pass
    boot = {"roc_auc": _samples(0.47, 0.58), "pr_auc": _samples(0.07, 0.11)}
    reason = baseline_failure(XGB, metrics, boot, 0.95)
    assert reason is not None and "roc_auc 0.5270" in reason and "chance" in reason


def test_pr_auc_interval_must_lie_above_the_positive_rate():
    metrics = {"roc_auc": 0.70, "pr_auc": 0.088, "positive_rate": 0.08}
    boot = {"roc_auc": _samples(0.65, 0.75), "pr_auc": _samples(0.075, 0.10)}
    reason = baseline_failure(XGB, metrics, boot, 0.95)
    assert reason is not None and "1.10x the positive rate 0.0800" in reason
    boot["pr_auc"] = _samples(0.083, 0.10)  # the whole interval above the rate: promoted
    assert baseline_failure(XGB, metrics, boot, 0.95) is None


def test_point_pr_auc_at_the_positive_rate_fails_even_with_roc_auc():
    metrics = {"roc_auc": 0.6, "pr_auc": 0.02, "positive_rate": 0.02}
    assert "random ranking" in baseline_failure(XGB, metrics)


# -- recommenders on the time holdout (issue #29) --------------------------------------------
ALS = MODELS["retail-als"]
WINS = {"recall_at_10_new": 0.06, "popular_recall_at_10_new": 0.02,
        "recall_at_10_any": 0.18, "buy_again_recall_at_10_any": 0.171}


@pytest.mark.parametrize("spec", [ALS, FM])
def test_a_recommender_that_beats_both_baselines_passes(spec):
    assert baseline_failure(spec, WINS) is None and baseline_checked(spec, WINS)


@pytest.mark.parametrize(("change", "words"), [
    ({"recall_at_10_new": 0.02}, "new-items recall@10 0.0200 <= most popular 0.0200"),
    ({"recall_at_10_any": 0.17}, "any-item recall@10 0.1700 <= buy again 0.1710"),
    ({"recall_at_10_any": math.nan}, "holdout recall_at_10_any is nan"),
])
@pytest.mark.parametrize("spec", [ALS, FM])
def test_a_recommender_losing_to_either_baseline_fails(spec, change, words):
    reason = baseline_failure(spec, {**WINS, **change})
    assert reason is not None and words in reason


def test_a_recommender_without_holdout_figures_is_never_promoted():
    assert "no time-holdout figures" in baseline_failure(ALS, {})
    assert not baseline_checked(ALS, {})
    # an FM classifier trained on SageMaker reports SageMaker's metrics only
    reason = baseline_failure(FM, {"test:binary_classification_accuracy": 0.9})
    assert reason is not None and "no time-holdout figures" in reason
