"""Every table of the recorded repository, served generically (SPEC §6):
``GET /tables/{table}/features`` and ``POST /tables/{table}/batch``.

The table list, entity keys and feature names come from the online store, which serves the
repository's tables: a table added to a repository file is served with no code change.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from featurestore import ConfigError, NotFoundError

from ..bodies import json_response, table_batch_body, table_body
from ..deps import IdPath
from .features import MAX_BATCH, FeatureValue, _parse_features, _table

__all__ = ["router"]

router = APIRouter(tags=["tables"])


class TableFeatures(BaseModel):
    table: str
    as_of: str
    keys: dict[str, str]
    features: dict[str, FeatureValue]


class TableBatchRequest(BaseModel):
    entities: list[dict[str, str]] = Field(
        max_length=MAX_BATCH, description=f"1 to {MAX_BATCH} entities: every key of the table")
    features: list[str] | None = Field(None, description="feature names (default: all)")
    as_of: str | None = Field(None, description="YYYY-MM-DD (default: latest)")


class TableBatchResult(BaseModel):
    keys: dict[str, str]
    found: bool
    features: dict[str, FeatureValue] | None


class TableBatchResponse(BaseModel):
    table: str
    as_of: str
    results: list[TableBatchResult]


def _keys(table: Any, given: dict[str, str]) -> dict[str, str]:
    """The table's entity keys from ``given``; every key is required."""
    missing = [k for k in table.keys if not given.get(k)]
    if missing:
        raise ConfigError(f"table {table.table!r} is keyed by {', '.join(table.keys)}: give "
                          f"{', '.join(missing)} as well")
    return {k: given[k] for k in table.keys}


def _features(table: Any, features: list[str] | None) -> list[str]:
    names = table.check_features(features) if features else table.features
    keys = [n for n in names if n in table.keys]
    if keys:
        raise NotFoundError(f"{', '.join(keys)} is a key of table {table.table!r}, not a "
                            f"feature; features: {', '.join(table.features)}")
    return names


@router.get("/tables/{table}/features", response_model=TableFeatures,
            responses={404: {"description": "unknown table, entity, as-of date or feature"}})
async def table_features(table: IdPath, request: Request) -> Response:
    """Features of one entity of any served table: every entity key as a query parameter
    (``?customer_id=C1&product_id=P2``), plus ``as_of`` and ``features`` (comma-separated)."""
    query = request.query_params
    snap = await _table(request, table, query.get("as_of"), [query.get("customer_id") or ""])
    names = _features(snap, _parse_features(query.get("features")))
    keys = _keys(snap, dict(query))
    row = snap.lookup(keys, names)
    if row is None:
        raise NotFoundError(f"no row of {table!r} for {keys} as of {snap.as_of}; check the keys "
                            "(ids are strings) or try another as_of")
    return json_response(table_body(snap, keys, row), snap)


@router.post("/tables/{table}/batch", response_model=TableBatchResponse,
             responses={404: {"description": "unknown table, as-of date or feature"}})
async def table_batch(table: IdPath, body: TableBatchRequest, request: Request) -> Response:
    """Features of up to 1,000 entities of any served table, in request order."""
    snap = await _table(request, table, body.as_of,
                        [e.get("customer_id") or "" for e in body.entities])
    names = _features(snap, body.features)
    results = []
    for entity in body.entities:
        keys = _keys(snap, entity)
        row = snap.lookup(keys, names)
        results.append({"keys": keys, "found": row is not None, "features": row})
    return json_response(table_batch_body(snap, results), snap)
