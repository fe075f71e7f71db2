"""The hot path of the feature lookups: the common successful answers of
``GET /customers/{id}/features``, ``POST /features/batch``, ``GET /tables/{table}/features`` and
``POST /tables/{table}/batch``, written straight to ASGI.

A lookup in the latest snapshot costs a few microseconds; FastAPI's request handling around it
(routing, dependency solving, body validation, the response class) costs ten times that, more
than a whole hello-world answer (``benchmarks/serve.py``). ``HotPathMiddleware`` sits inside the
guard (token and body limit already checked) and the metrics middleware (it sets
``scope["route"]`` to the declared route, so metrics count it under its template) and answers a
request only when everything is plain: the latest as-of, known features, every id or key a
string, a found customer or entity. Anything else — another as-of, an unknown customer or
feature, a body FastAPI would reject — goes to the declared FastAPI route unchanged (a POST
body already read is handed back to it), so routes, the OpenAPI schema, errors and their
messages stay exactly those of ``api/routes/features.py`` and ``api/routes/table_features.py``.
Both paths build the body with ``api/bodies.py``: the same bytes either way. With a shared
online store (Redis) the rows of the requested customers are read in one round trip
(``online.aview``) and the same builders answer.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.datastructures import QueryParams

from featurestore import FeatureStoreError
from featurestore.online import TableSnapshot

from .bodies import (AS_OF_HEADER, GENERATION_HEADER, batch_body, customer_body,
                     table_batch_body, table_body)
from .deps import ID_PATTERN
from .routes.features import MAX_BATCH

__all__ = ["HotPathMiddleware", "HOT_ROUTES"]

#: The declared routes this middleware answers for (method, path template).
HOT_ROUTES = (("GET", "/customers/{customer_id}/features"), ("POST", "/features/batch"),
              ("GET", "/tables/{table}/features"), ("POST", "/tables/{table}/batch"))
_TABLE_NAME = re.compile(ID_PATTERN)
_AS_OF = AS_OF_HEADER.lower().encode()
_GENERATION = GENERATION_HEADER.lower().encode()


def _latest(scope: dict[str, Any], table: str, as_of: Any) -> TableSnapshot | None:
    """The served snapshot of ``table`` when ``as_of`` names it (or is None), else None."""
    snapshot = scope["app"].state.online.snapshot
    current = snapshot.tables.get(table) if snapshot is not None else None
    if current is None or (as_of is not None and as_of != current.as_of):
        return None
    return current


async def _view(scope: dict[str, Any], table: str, as_of: Any,
                ids: list[str]) -> TableSnapshot | None:
    """The latest ``table`` holding ``ids``: the in-process snapshot (:func:`_latest`), or the
    rows of ``ids`` in one generation of a shared online store (one round trip); None when
    the route must answer (another as-of, or an error it words)."""
    online = scope["app"].state.online
    if getattr(online, "in_process", True):
        return _latest(scope, table, as_of)
    try:
        view = await online.aview(table, ids)
    except FeatureStoreError:
        return None
    return view if as_of is None or as_of == view.as_of else None


def _names(table: TableSnapshot, features: Any) -> list[str] | None | bool:
    """Requested feature names: None for all, False when the route must answer (not a list of
    strings, or an unknown or key column)."""
    if features is None:
        return None
    if type(features) is not list:
        return False
    if not features:  # an empty list: all, as the route reads it
        return None
    if not all(type(f) is str and f in table.dtypes
                                             and f not in table.keys for f in features):
        return False
    return features


def _query_names(table: TableSnapshot, query: QueryParams) -> list[str] | None | bool:
    raw = query.get("features")
    names = [f.strip() for f in raw.split(",") if f.strip()] if raw is not None else None
    return _names(table, names)


async def _customer(scope: dict[str, Any], customer_id: str
                    ) -> tuple[bytes, TableSnapshot] | None:
    query = QueryParams(scope["query_string"]) if scope["query_string"] else None
    table = await _view(scope, "customer_features", query.get("as_of") if query else None,
                        [customer_id])
    if table is None:
        return None
    names = _query_names(table, query) if query else None
    i = table.index.get(customer_id)
    if names is False or i is None or type(i) is not int:
        return None
    return customer_body(table, customer_id, i, names), table


async def _batch(scope: dict[str, Any], body: dict[str, Any]
                 ) -> tuple[bytes, TableSnapshot] | None:
    ids, as_of = body.get("customer_ids"), body.get("as_of")
    if (type(ids) is not list or len(ids) > MAX_BATCH or not all(type(c) is str for c in ids)
            or not (as_of is None or type(as_of) is str)):
        return None
    table = await _view(scope, "customer_features", as_of, ids)
    if table is None:
        return None
    names = _names(table, body.get("features"))
    if names is False:
        return None
    return batch_body(table, ids, names), table


def _entity(table: TableSnapshot, given: Any, names: list[str] | None
            ) -> tuple[dict[str, str], dict[str, Any] | None] | None:
    """(keys, row or None) of one entity; None when the route must answer (a key missing or
    empty, a value not a string)."""
    if type(given) is not dict or not all(type(v) is str for v in given.values()):
        return None
    if not all(given.get(k) for k in table.keys):
        return None
    keys = {k: given[k] for k in table.keys}
    return keys, table.lookup(keys, names or table.features)


async def _table_get(scope: dict[str, Any], name: str) -> tuple[bytes, TableSnapshot] | None:
    query = QueryParams(scope["query_string"])
    cid = query.get("customer_id")
    if not cid:
        return None
    table = await _view(scope, name, query.get("as_of"), [cid])
    if table is None:
        return None
    names = _query_names(table, query)
    found = _entity(table, dict(query), names) if names is not False else None
    if found is None or found[1] is None:
        return None
    return table_body(table, found[0], found[1]), table


async def _table_batch(scope: dict[str, Any], name: str, body: dict[str, Any]
                       ) -> tuple[bytes, TableSnapshot] | None:
    entities, as_of = body.get("entities"), body.get("as_of")
    if (type(entities) is not list or len(entities) > MAX_BATCH
            or not (as_of is None or type(as_of) is str)
            or not all(type(e) is dict and type(e.get("customer_id")) is str for e in entities)):
        return None
    table = await _view(scope, name, as_of, [e["customer_id"] for e in entities])
    if table is None:
        return None
    names = _names(table, body.get("features"))
    if names is False:
        return None
    results = []
    for given in entities:
        found = _entity(table, given, names)
        if found is None:
            return None
        results.append({"keys": found[0], "found": found[1] is not None, "features": found[1]})
    return table_batch_body(table, results), table


def _json_body(raw: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any] | None:
    """The request body as a JSON object when FastAPI would read it as one, else None."""
    for key, value in headers:
        if key == b"content-type":
            if value.split(b";", 1)[0].strip().lower() != b"application/json":
                return None
            break
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return body if type(body) is dict else None


class HotPathMiddleware:
    """Answers the plain feature lookups before FastAPI routing (see the module doc)."""

    def __init__(self, app, routes: list[Any]) -> None:
        self.app = app
        declared = {(method, route.path): route for route in routes
                    if isinstance(route, APIRoute) for method in route.methods}
        self.routes = {key: declared[key] for key in HOT_ROUTES}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        answer, template = None, None
        try:
            if method == "GET" and path.endswith("/features"):
                if path.startswith("/customers/"):
                    customer_id = path[len("/customers/"):-len("/features")]
                    if customer_id and "/" not in customer_id:
                        template = "/customers/{customer_id}/features"
                        answer = await _customer(scope, customer_id)
                elif path.startswith("/tables/"):
                    name = path[len("/tables/"):-len("/features")]
                    if "/" not in name and _TABLE_NAME.match(name) and len(name) <= 128:
                        template = "/tables/{table}/features"
                        answer = await _table_get(scope, name)
            elif method == "POST" and (path == "/features/batch" or (
                    path.startswith("/tables/") and path.endswith("/batch"))):
                messages, raw = await _read(receive)
                receive = _replay(messages, receive)  # the route reads it if it answers
                if raw is not None:
                    body = _json_body(raw, scope["headers"])
                    if body is not None:
                        if path == "/features/batch":
                            template = "/features/batch"
                            answer = await _batch(scope, body)
                        else:
                            name = path[len("/tables/"):-len("/batch")]
                            if "/" not in name and _TABLE_NAME.match(name) and len(name) <= 128:
                                template = "/tables/{table}/batch"
                                answer = await _table_batch(scope, name, body)
        except FeatureStoreError:  # an error: the declared route words it
            answer = None
        if answer is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.routes[(method, template)]  # metrics count it under its template
        body, table = answer
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            (_AS_OF, table.as_of.encode()),
            (_GENERATION, str(table.generation).encode())]})
        await send({"type": "http.response.body", "body": body})


async def _read(receive) -> tuple[list[dict[str, Any]], bytes | None]:
    """Every message of the request body, and the body (None if the client went away)."""
    messages, chunks = [], []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replay(messages: list[dict[str, Any]], receive):
    """A ``receive`` handing back the messages already read, then the server's next ones."""
    pending = iter(messages)

    async def replay():
        return next(pending, None) or await receive()

    return replay
