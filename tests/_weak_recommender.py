"""A deliberately weak recommender backend (issue #29): the real protocol, with a model that
scores items at random, so its holdout recall@10 loses to both baselines. Chosen in tests by
its dotted class path, as any training backend can be."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from featurestore.recsys.algorithms import Fitted
from featurestore.recsys.artifact import FILENAME
from featurestore.recsys.data import purchases_from_transactions
from featurestore.recsys.train import train_recommender
from featurestore.retrain.local import TrainResult
from featurestore.retrain.recommender import holdout_result
from featurestore.settings import Settings
from featurestore.training.purchases import read_purchases_export


def random_factors(counts: Any, params: dict[str, Any]) -> Fitted:
    rng = np.random.default_rng(int(params["seed"]))
    n_c, n_i = counts.shape
    return Fitted("factors", {"customer_bias": np.zeros(n_c), "item_bias": np.zeros(n_i),
                              "customer_vectors": rng.normal(size=(n_c, 4)),
                              "item_vectors": rng.normal(size=(n_i, 4))}, dict(params))


class WeakBackend:
    name: ClassVar[str] = "weak"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def train(self, spec: Any, export_url: str, *, storage_options: dict[str, Any] | None,
              tune: bool, job_id: str) -> TrainResult:
        purchases = purchases_from_transactions(read_purchases_export(export_url,
                                                                      storage_options))
        run = train_recommender(purchases, "random", grid=[{"seed": 0}], fit=random_factors,
                                holdout_days=self.settings.recommendation_holdout_days,
                                validation_days=self.settings.recommendation_validation_days)
        return holdout_result(run, FILENAME)
