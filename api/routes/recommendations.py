"""Recommendations (SPEC §7): ``GET /customers/{customer_id}/recommendations?k=10`` and
``POST /recommendations/batch``, from the production version of the recommender named by the
setting ``recommendation_model``, held in memory and swapped when production moves
(:class:`featurestore.recommend.Recommendations`). ``exclude_purchased`` (default true) leaves
out what the customer bought; false ranks every item with the repeat-purchase term.

404 for a customer the model does not know, 503 while that model has no production version.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ..deps import ReadAuth

if TYPE_CHECKING:  # the recommender (scipy, its model) loads on first use, not before /ready
    from featurestore.recommend import Recommendations

router = APIRouter(tags=["recommendations"])

MAX_BATCH = 1000
MAX_K = 1000
_create = threading.Lock()


class BatchRequest(BaseModel):
    customer_ids: list[str] = Field(max_length=MAX_BATCH,
                                    description=f"1 to {MAX_BATCH} customer ids")
    k: int = Field(10, ge=1, le=MAX_K, description="products per customer")
    exclude_purchased: bool = Field(True, description="leave out products already bought")


def _json(answer: dict[str, Any]) -> Any:
    return Response(orjson.dumps(answer), media_type="application/json")


def recommendations(request: Request) -> Recommendations:
    """The app's recommender, created on first use."""
    from featurestore.recommend import Recommendations

    state = request.app.state
    if getattr(state, "recommendations", None) is None:
        with _create:
            if getattr(state, "recommendations", None) is None:
                state.recommendations = Recommendations(
                    state.store, poll_seconds=state.settings.snapshot_poll_seconds,
                    model=state.settings.recommendation_model)
    return state.recommendations


@router.get("/customers/{customer_id}/recommendations", dependencies=[ReadAuth])
async def customer_recommendations(
        customer_id: str, request: Request,
        k: int = Query(10, ge=1, le=MAX_K, description="products at most"),
        exclude_purchased: bool = Query(True, description="leave out products already bought"),
) -> dict[str, Any]:
    """``{"customer_id", "model", "version", "items": [{"product_id", "score",
    "description"}]}``, best first."""
    rec = recommendations(request)
    # serialized by orjson as returned (FastAPI's encoder walks every item: ~100 ms for a batch)
    return _json(await run_in_threadpool(rec.recommend, customer_id, k, exclude_purchased))


@router.post("/recommendations/batch", dependencies=[ReadAuth])
async def batch_recommendations(body: BatchRequest, request: Request) -> dict[str, Any]:
    """``{"results": [{"customer_id", "found", "items"}]}`` in request order."""
    rec = recommendations(request)
    return _json(await run_in_threadpool(rec.batch, body.customer_ids, body.k,
                                         body.exclude_purchased))
