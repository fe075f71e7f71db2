"""The trivial-baseline gate of promotion (pure function, no store)."""

from __future__ import annotations

import math

import pytest

from featurestore.retrain.baseline import baseline_failure
from featurestore.retrain.models import MODELS

XGB, FM = MODELS["purchase-xgboost"], MODELS["retail-fm"]


@pytest.mark.parametrize(("auc", "fails"), [(0.42, True), (0.5, True), (0.5001, False),
                                            (0.9, False), (math.nan, True), (None, True)])
def test_classifier_must_beat_chance(auc, fails):
    reason = baseline_failure(XGB, {"roc_auc": auc, "pr_auc": 0.1})
    assert (reason is not None) is fails
    if fails and auc is not None and not math.isnan(auc):
        assert f"roc_auc {auc:.4f} <= 0.5" in reason


@pytest.mark.parametrize(("rmse", "base", "fails"), [(1.2, 1.0, True), (1.0, 1.0, True),
                                                     (0.9, 1.0, False), (0.9, None, True),
                                                     (math.inf, 1.0, True)])
def test_recommender_must_beat_the_item_mean(rmse, base, fails):
    reason = baseline_failure(FM, {"rmse": rmse, "baseline_rmse": base})
    assert (reason is not None) is fails
    if fails and base is not None and math.isfinite(rmse):
        assert "item-mean baseline rmse" in reason
