"""Local backend on synthetic exports (fixture: tests/_retrain_fixtures.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import average_precision_score

from featurestore.retrain import local
from featurestore.training.recordio import read_recordio_protobuf
from tests import _retrain_fixtures as fx


@pytest.fixture(scope="module")
def xgb_export(tmp_path_factory):
    return fx.make_xgb_export(tmp_path_factory.mktemp("exp") / "xgb", seed=1)


def test_xgboost_planted_signal_pr_auc_5x_positive_rate(xgb_export):
    result = local.train_xgboost(str(xgb_export))
    m = result.metrics
    # Independent check from the files: plain pandas + the saved model.
    test = pd.read_csv(xgb_export / "test" / "test.csv", header=None)
    y = test[0].to_numpy()
    assert m["positive_rate"] == pytest.approx(y.mean())
    assert m["pr_auc"] >= 5 * m["positive_rate"], m
    assert m["roc_auc"] > 0.7
    booster = xgb.Booster()
    booster.load_model(bytearray(result.model_bytes))
    scores = booster.predict(xgb.DMatrix(test.iloc[:, 1:].to_numpy(), missing=np.nan,
                                         feature_names=fx.FEATURES),
                             iteration_range=(0, int(m["best_iteration"]) + 1))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, scores), rel=1e-6)
    top = pd.Series(scores).nlargest(int(np.ceil(0.01 * len(y)))).index
    assert m["recall_at_top_1pct"] == pytest.approx(y[top].sum() / y.sum())
    assert result.params["scale_pos_weight"] == pytest.approx(
        fx.json.loads((xgb_export / "metadata.json").read_text())["scale_pos_weight"])
    assert result.details["feature_names"] == fx.FEATURES


def test_xgboost_tuning_search_keeps_best_validation(xgb_export):
    result = local.train_xgboost(str(xgb_export), tune=True, tuning_trials=4)
    trials = result.details["tuning_trials"]
    assert len(trials) == 5  # defaults + 4 draws
    best = max(t["validation_aucpr"] for t in trials)
    assert result.metrics["validation_pr_auc"] == pytest.approx(best)
    assert result.metrics["pr_auc"] >= 5 * result.metrics["positive_rate"]


def test_xgboost_rejects_wrong_format(tmp_path):
    export = fx.make_fm_export(tmp_path / "fm", customers=20, items=10, per_customer=5)
    with pytest.raises(local.TrainingError, match="xgboost-csv"):
        local.train_xgboost(str(export))


def test_fm_beats_item_mean_baseline_on_low_rank_data(tmp_path):
    export = fx.make_fm_export(tmp_path / "fm", seed=2)
    reader = read_recordio_protobuf
    result = local.train_fm(str(export), reader=reader)
    m = result.metrics
    # Independent item-mean baseline with pandas, from the files.
    frames = {}
    for split in ("train", "test"):
        with open(export / split / f"{split}.protobuf", "rb") as f:
            X, y = reader(f)
        item = X.tocsr()[:, 300:].tocsr().indices  # one item per row, block starts at 300
        frames[split] = pd.DataFrame({"item": item, "y": y.astype(float)})
    means = frames["train"].groupby("item")["y"].mean()
    pred = frames["test"]["item"].map(means).fillna(frames["train"]["y"].mean())
    baseline = float(np.sqrt(((pred - frames["test"]["y"]) ** 2).mean()))
    assert m["baseline_rmse"] == pytest.approx(baseline, rel=1e-5)
    assert result.details["baseline"] == "item-mean"
    assert m["rmse"] < 0.8 * m["baseline_rmse"], m
    assert result.params["num_factors"] == 64 and result.params["epochs"] == 20
