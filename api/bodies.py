"""The JSON bodies of the feature lookups, as bytes: one builder per answer, shared by the
FastAPI routes (``api/routes/features.py``, ``api/routes/table_features.py``) and the hot path
(``api/hot.py``), so both answer the same bytes.

Rows come from :meth:`featurestore.online.TableSnapshot.row_json` (serialized once per row and
kept) and are spliced into the envelope; the pydantic response models of the routes document
these shapes in OpenAPI without validating them per request.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Response

from featurestore.online import TableSnapshot

__all__ = ["dumps", "customer_body", "batch_body", "table_body", "table_batch_body",
           "version_headers", "json_response", "AS_OF_HEADER", "GENERATION_HEADER"]

#: Response headers naming the partition version a feature answer was read from (the JSON
#: bodies keep SPEC §6's shapes).
AS_OF_HEADER = "X-Feature-As-Of"
GENERATION_HEADER = "X-Feature-Generation"


def dumps(value: Any) -> bytes:
    """``value`` as compact JSON bytes (orjson; the standard library for what orjson refuses,
    e.g. a lone surrogate in an id a client sent)."""
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, separators=(",", ":")).encode()


def _features(table: TableSnapshot, i: int, names: list[str] | None) -> bytes:
    """Row ``i``: every feature (the kept JSON) or only ``names``."""
    if names is None or names == table.columns:
        return table.row_json(i)
    return dumps(table.row(i, names))


def customer_body(table: TableSnapshot, customer_id: str, i: int,
                  names: list[str] | None) -> bytes:
    """``{"customer_id", "as_of", "features"}`` of ``GET /customers/{id}/features``.

    Args:
        table: the ``customer_features`` snapshot the row was found in.
        customer_id: the id as requested.
        i: its row in ``table``.
        names: validated feature names, or None for all.

    Returns:
        The JSON body.
    """
    return b"".join((b'{"customer_id":', dumps(customer_id), b',"as_of":',
                     dumps(table.as_of), b',"features":', _features(table, i, names), b"}"))


def batch_body(table: TableSnapshot, customer_ids: list[str], names: list[str] | None) -> bytes:
    """``{"as_of", "results": [{"customer_id", "found", "features"}]}`` of
    ``POST /features/batch``, one result per id in request order.

    Args:
        table: the ``customer_features`` snapshot.
        customer_ids: the requested ids.
        names: validated feature names, or None for all.

    Returns:
        The JSON body.
    """
    index = table.index
    hits = [index.get(cid) for cid in customer_ids]
    rows = [i for i in hits if i is not None]
    if names is None or names == table.columns:
        found = iter(table.rows_json(rows))
    else:  # a subset: one gather per column, then one encoding
        found = iter(dumps(row) for row in table.rows_at(rows, names))
    parts = []
    for cid, i in zip(customer_ids, hits):
        parts.append(b'{"customer_id":' + dumps(cid) + (
            b',"found":false,"features":null}' if i is None
            else b',"found":true,"features":' + next(found) + b"}"))
    return b"".join((b'{"as_of":', dumps(table.as_of), b',"results":[', b",".join(parts),
                     b"]}"))


def table_body(table: TableSnapshot, keys: dict[str, str], row: dict[str, Any]) -> bytes:
    """``{"table", "as_of", "keys", "features"}`` of ``GET /tables/{table}/features``."""
    return dumps({"table": table.table, "as_of": table.as_of, "keys": keys, "features": row})


def table_batch_body(table: TableSnapshot, results: list[dict[str, Any]]) -> bytes:
    """``{"table", "as_of", "results": [{"keys", "found", "features"}]}`` of
    ``POST /tables/{table}/batch``."""
    return dumps({"table": table.table, "as_of": table.as_of, "results": results})


def version_headers(table: TableSnapshot) -> dict[str, str]:
    """The as-of and generation of the snapshot an answer was read from."""
    return {AS_OF_HEADER: table.as_of, GENERATION_HEADER: str(table.generation)}


def json_response(body: bytes, table: TableSnapshot) -> Response:
    """``body`` as an ``application/json`` response with :func:`version_headers`."""
    return Response(body, media_type="application/json", headers=version_headers(table))
