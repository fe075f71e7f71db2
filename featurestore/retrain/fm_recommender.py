"""Train ``retail-fm`` as a recommender (issue #29): the FM as a binary classifier on bought
pairs against sampled negatives, put through the same time-holdout protocol as ALS and
item-kNN (:mod:`featurestore.recsys.train`).

The export (:func:`featurestore.training.export_fm`, ``predictor_type=binary_classifier``)
carries the recordIO channels SageMaker trains on, ``index.npz`` (the design's ids, countries
and TF-IDF) and the transaction lines. Locally the rows of each window (sub-fit, fit, all) are
built by the exporter's own function from the same design and seed, so the fit-window rows
are the train channel's. The solver is per-row Adagrad (:mod:`.fm_adagrad`, numba); the
number of passes, the step and L2 are chosen on the validation window. The registered
``model.npz`` is the FM refitted on all data; its ``recommender.npz`` is that FM in the
factors form (``a_c + b_i + <u_c, p_i>``).
"""

from __future__ import annotations

import io
from typing import Any

import fsspec
import numpy as np
import scipy.sparse as sp

from .._exceptions import TrainingError
from .fm_adagrad import fit_adagrad
from .local import FactorizationMachine, TrainResult

__all__ = ["FM_GRID", "FM_TUNE_GRID", "train_fm_classifier"]

#: FM settings tried on the validation window. The local solver is per-row Adagrad
#: (:mod:`.fm_adagrad`); candidates that differ only in ``epochs`` share one run on the
#: sub-fit window (the model is scored after each of those pass counts), so the default grid
#: costs one fit of 6 passes (docs/choices.md); ``tune`` searches the larger grid.
FM_GRID: list[dict[str, Any]] = [{"lr": 0.05, "reg": 1e-5, "epochs": e} for e in (2, 4, 6)]
FM_TUNE_GRID: list[dict[str, Any]] = [{"lr": lr, "reg": r, "epochs": e}
                                      for lr in (0.02, 0.05, 0.1) for r in (1e-6, 1e-5, 1e-4)
                                      for e in (2, 4, 6, 8, 10)]


def train_fm_classifier(export_url: str, meta: dict[str, Any], *,
                        storage_options: dict[str, Any] | None = None, tune: bool = False,
                        num_factors: int = 64, epochs: int = 20, seed: int = 0,
                        holdout_days: int = 30, validation_days: int = 30) -> TrainResult:
    """Train, judge on the time holdout and refit the FM classifier.

    Args:
        export_url: a binary-classifier FM export.
        meta: its metadata.json.
        storage_options: fsspec options for the export.
        tune: search :data:`FM_TUNE_GRID` instead of :data:`FM_GRID`.
        num_factors: FM factors.
        epochs: unused (the passes are chosen on the validation window among the grid's);
            kept for :func:`~.local.train_fm`'s signature.
        seed: model, negative sampling and bootstrap seed.
        holdout_days: the test window.
        validation_days: the validation window.

    Returns:
        Holdout metrics, ``model.npz`` (refit) and ``recommender.npz`` (in ``files``).
    """
    from ..recommend import FMRecommender
    from ..recsys.algorithms import Fitted
    from ..recsys.artifact import FILENAME
    from ..recsys.data import purchases_from_transactions
    from ..recsys.train import train_recommender
    from ..training.fm_classifier import classifier_rows, design_from_index
    from ..training.purchases import read_purchases_export
    from ..training.recordio import read_feature_dim

    with fsspec.open(f"{export_url}/{meta['index']}", "rb", **(storage_options or {})) as f:
        index = f.read()
    design = design_from_index(index)
    purchases = purchases_from_transactions(read_purchases_export(export_url,
                                                                  storage_options))
    if not (np.array_equal(design.customers, purchases.customers)
            and np.array_equal(design.items, purchases.items)):
        raise TrainingError(f"{export_url}: index.npz and purchases.parquet disagree on the "
                            "customers or items; export again")
    with fsspec.open(f"{export_url}/train/train.protobuf", "rb",
                     **(storage_options or {})) as f:
        dim = read_feature_dim(f)  # the first record: decoding all the rows took minutes
    if dim is not None and dim > design.feature_dim:
        raise TrainingError(f"{export_url}: the train channel has {dim} features, "
                            f"the design {design.feature_dim}")
    negatives = int(meta.get("negatives_per_positive") or 4)
    last: dict[str, FactorizationMachine] = {}
    grid = FM_TUNE_GRID if tune else FM_GRID
    paths: dict[tuple[int, float, float], dict[int, FactorizationMachine]] = {}
    first: list[sp.csr_matrix] = []  # the sub-fit window: the grid's shared runs are on it
    first_rows: list[Any] = []  # its rows (X, y)

    def fit(counts: sp.csr_matrix, params: dict[str, Any]) -> Fitted:
        lr, reg, passes = float(params["lr"]), float(params["reg"]), int(params["epochs"])
        if not first:
            first.append(counts)
        key = (id(counts), lr, reg)
        if counts is not first[0]:  # the choice is made: the sub-fit runs are done with
            for done in [k for k in paths if k[0] == id(first[0])]:
                paths.pop(done)
            first_rows.clear()
        if key not in paths:
            wanted = {passes}
            if counts is first[0]:  # one run, scored after each pass count of the grid
                wanted |= {int(g["epochs"]) for g in grid
                           if (float(g["lr"]), float(g["reg"])) == (lr, reg)}
            if counts is first[0]:  # the tune grid's runs share the sub-fit rows too
                if not first_rows:
                    first_rows.extend(classifier_rows(design, counts, negatives, seed))
                X, y = first_rows
            else:
                X, y = classifier_rows(design, counts, negatives, seed)
            paths[key] = fit_adagrad(X, y, num_factors=num_factors, epochs=wanted, lr=lr,
                                     reg=reg, seed=seed)
        fm = paths[key][passes]
        if counts is not first[0]:
            paths.pop(key)  # the test-window and refit models are used once
        last["model"] = fm  # compressed once, at the end (savez_compressed took ~2 s a fit)
        plain = io.BytesIO()
        np.savez(plain, w0=np.array([fm.w0]), w=fm.w, V=fm.V)
        rec = FMRecommender.from_bytes(plain.getvalue(), index)
        return Fitted("factors", {"customer_bias": rec.customer_bias,
                                  "customer_vectors": rec.customer_vectors,
                                  "item_bias": rec.item_bias,
                                  "item_vectors": rec.item_vectors}, dict(params))

    run = train_recommender(purchases, "fm", holdout_days=holdout_days,
                            validation_days=validation_days, seed=seed,
                            grid=grid, fit=fit)
    return TrainResult(metrics=run.metrics, model_bytes=last["model"].to_bytes(),
                       model_filename="model.npz",
                       params={"predictor_type": "binary_classifier", "num_factors": num_factors,
                               "solver": "adagrad", "negatives_per_positive": negatives,
                               **run.params},
                       details={**run.details, "feature_dim": design.feature_dim},
                       files={FILENAME: run.model_bytes})
