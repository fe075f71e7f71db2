"""Customer features: ``GET /customers/{id}/features``, ``POST /features/batch``,
``GET /customers/{id}/products`` (SPEC §6).

The routes build the JSON body as bytes (``api/bodies.py``: rows serialized once, spliced into
the envelope) and return a ``Response``: the pydantic models below document the shapes in
OpenAPI without paying validation per request. The common successful lookups are answered
before FastAPI by ``api/hot.py`` with the same builders; these routes answer everything else
(other as-of dates, errors) and define the contract.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, field_validator

from featurestore import FeatureStoreError, NotFoundError

from ..bodies import (AS_OF_HEADER, GENERATION_HEADER, batch_body, customer_body, dumps,
                      json_response)
from ..deps import require_read_token

__all__ = ["router", "MAX_BATCH", "AS_OF_HEADER", "GENERATION_HEADER"]

# Read auth is checked inside ``_table`` (not as a router dependency): one FastAPI dependency
# step per request costs more than the whole lookup on this hot path.
router = APIRouter(tags=["features"])

MAX_BATCH = 1000
FeatureValue = int | float | str | list[str] | None  # lists: SPEC §3a top_k


class CustomerFeatures(BaseModel):
    customer_id: str
    as_of: str
    features: dict[str, FeatureValue]


class BatchRequest(BaseModel):
    customer_ids: list[str] = Field(description=f"1 to {MAX_BATCH} customer ids")
    features: list[str] | None = Field(None, description="feature names (default: all)")
    as_of: str | None = Field(None, description="YYYY-MM-DD (default: latest)")

    @field_validator("customer_ids")
    @classmethod
    def _size(cls, ids: list[str]) -> list[str]:
        if len(ids) > MAX_BATCH:
            raise ValueError(f"{len(ids)} customer_ids given; at most {MAX_BATCH:,} per request "
                             "- split the batch into several requests")
        return ids


class BatchResult(BaseModel):
    customer_id: str
    found: bool
    features: dict[str, FeatureValue] | None


class BatchResponse(BaseModel):
    as_of: str
    results: list[BatchResult]


class CustomerProducts(BaseModel):
    customer_id: str
    as_of: str
    products: list[dict[str, FeatureValue]]


def _json(body: Any, table: Any) -> Response:
    """``body`` as JSON, with the as-of and generation of ``table`` (the snapshot it was read
    from) in the version headers."""
    return json_response(dumps(body), table)


async def _table(request: Request, name: str, as_of: str | None,
                 ids: list[str] | None = None):
    """The latest snapshot inline (a dict read; with a shared online store, the rows of the
    customers ``ids`` of one generation, one round trip); an older as-of reads parquet in a
    thread so the event loop never blocks on storage."""
    await require_read_token(request)
    online = request.app.state.online  # app.state, not a dependency: cheaper per request
    if getattr(online, "in_process", True):
        snapshot = online.snapshot
        current = snapshot.tables.get(name) if snapshot else None
    else:
        snapshot = None
        try:
            current = await online.aview(name, ids)
        except FeatureStoreError:
            if as_of is None:  # the latest is the online store's: its error (503, 404)
                raise
            current = None  # an as-of date is readable from the offline store anyway
    if current is not None and (as_of is None or as_of == current.as_of):
        return current
    return await run_in_threadpool(online.table, name, as_of, snapshot)


def _parse_features(features: str | None) -> list[str] | None:
    if features is None:
        return None
    names = [f.strip() for f in features.split(",") if f.strip()]
    return names or None


# The hot endpoint reads its path and query strings from the request itself and declares them
# in OpenAPI by hand: FastAPI's per-parameter resolution costs more than the lookup (measured in
# benchmarks/serve.py). Both are plain optional strings, so nothing is lost in validation.
_FEATURE_QUERY = {"parameters": [
    {"name": "customer_id", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "as_of", "in": "query", "required": False,
     "description": "YYYY-MM-DD; latest when omitted", "schema": {"type": "string"}},
    {"name": "features", "in": "query", "required": False,
     "description": "comma-separated feature names; all when omitted",
     "schema": {"type": "string"}},
]}


@router.get("/customers/{customer_id}/features", response_model=CustomerFeatures,
            responses={404: {"description": "unknown customer, as-of date or feature"}},
            openapi_extra=_FEATURE_QUERY)
async def customer_features(request: Request) -> Response:
    """Features of one customer at one as-of date (query: ``as_of``, ``features``)."""
    customer_id: str = request.path_params["customer_id"]
    query = request.query_params
    as_of, features = query.get("as_of"), query.get("features")
    table = await _table(request, "customer_features", as_of, [customer_id])  # read once
    names = _parse_features(features)
    names = table.check_features(names) if names else None  # None: all, the kept row JSON
    i = table.index.get(customer_id)
    if i is None:
        raise NotFoundError(f"customer {customer_id!r} has no features as of {table.as_of}; "
                            "check the id (customer ids are strings) or try another as_of")
    return json_response(customer_body(table, customer_id, i, names), table)


@router.post("/features/batch", response_model=BatchResponse,
             responses={404: {"description": "unknown as-of date or feature"}})
async def features_batch(body: BatchRequest, request: Request) -> Response:
    """Features of up to 1,000 customers; one result per id, in request order."""
    table = await _table(request, "customer_features", body.as_of, body.customer_ids)
    names = table.check_features(body.features) if body.features else None
    return json_response(batch_body(table, body.customer_ids, names), table)


@router.get("/customers/{customer_id}/products", response_model=CustomerProducts,
            responses={404: {"description": "unknown customer or as-of date"}})
async def customer_products(
    customer_id: str,
    request: Request,
    top: Annotated[int, Query(ge=1, le=1000, description="most viewed products to return")] = 10,
    as_of: Annotated[str | None, Query(description="YYYY-MM-DD; latest when omitted")] = None,
) -> Response:
    """Customer x product features, most viewed first (30-day views, then 7-day, then id)."""
    table = await _table(request, "customer_product_features", as_of, [customer_id])
    if customer_id not in table.index:
        raise NotFoundError(f"customer {customer_id!r} viewed no product in the 30 days before "
                            f"{table.as_of}; check the id or try another as_of")
    products = table.rows_of(customer_id, top=top)
    return _json({"customer_id": customer_id, "as_of": table.as_of, "products": products},
                 table)
