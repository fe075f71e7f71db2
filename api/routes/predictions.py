"""Batch scores: ``GET /customers/{customer_id}/predictions`` (SPEC §7).

Served from the latest committed ``featurestore predict`` run, held in memory and swapped when a
newer as-of (or a rewrite) is committed (:class:`featurestore.predict.LatestPredictions`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request

from featurestore.retrain.models import model_spec

from ..deps import ReadAuth

if TYPE_CHECKING:  # the scores' reader (pandas) loads on first use, not before /ready
    from featurestore.predict import LatestPredictions

router = APIRouter(tags=["predictions"])

_create = threading.Lock()


def latest_predictions(request: Request, model: str) -> LatestPredictions:
    """The app's scores of ``model``, created on first use (one per model and app)."""
    from featurestore.predict import LatestPredictions

    model_spec(model)  # 404 for an unknown model, before its name reaches a path
    state = request.app.state
    held: dict[str, LatestPredictions] | None = getattr(state, "predictions", None)
    if held is None or model not in held:
        with _create:
            held = getattr(state, "predictions", None) or {}
            if model not in held:
                held[model] = LatestPredictions(
                    state.store, model, poll_seconds=state.settings.snapshot_poll_seconds)
            state.predictions = held
    return held[model]


@router.get("/customers/{customer_id}/predictions", dependencies=[ReadAuth])
def customer_prediction(customer_id: str, request: Request,
                        model: str = Query("purchase-xgboost", description="scored model")
                        ) -> dict[str, Any]:
    """``{"customer_id", "model", "model_version", "as_of", "score", "rank"}``; 404 for a
    customer without a score."""
    return latest_predictions(request, model).get(customer_id)
