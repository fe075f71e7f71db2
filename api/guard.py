"""The door of the API: the token check and the body limit, before any route reads a byte.

``GuardMiddleware`` is pure ASGI (``BaseHTTPMiddleware`` would cost the GET hot path of
``benchmarks/serve.py`` a task and a queue per request). In order, for each HTTP request:

1. the bearer token, for write routes and (with ``api_require_token_for_reads``) every route but
   the public ones: an anonymous request is answered 401 before its body is parsed, so a
   malformed or oversized anonymous body gets 401, never 413/422;
2. the body size: a ``Content-Length`` over ``api_max_body_bytes`` is answered 413 at once; a
   body without one (chunked) is read up to the limit and answered 413 as soon as it passes it,
   without reading the rest.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import HTTPException
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials

from featurestore.settings import Settings

from .deps import _check_token, require_token

__all__ = ["GuardMiddleware", "PUBLIC_PATHS", "write_routes"]

#: Open even with ``api_require_token_for_reads``: probes, scraping and the API's own docs.
PUBLIC_PATHS = frozenset({"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/redoc",
                          "/docs/oauth2-redirect"})


def write_routes(routes: list[Any]) -> list[tuple[frozenset[str], str, re.Pattern]]:
    """The routes that depend on the write token, as (methods, literal prefix, path regex).

    Args:
        routes: the app's routes.

    Returns:
        One entry per write route; the prefix (the path up to its first parameter) lets the
        middleware skip the regex for most requests.
    """
    out = []
    for route in routes:
        if isinstance(route, APIRoute) and any(
                d.call is require_token for d in route.dependant.dependencies):
            out.append((frozenset(route.methods), route.path.split("{", 1)[0], route.path_regex))
    return out


def _bearer(scope: dict[str, Any]) -> HTTPAuthorizationCredentials | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
    return None


async def _answer(send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           (b"connection", b"close")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Token check before body parsing, then the request-body limit (see the module doc)."""

    def __init__(self, app, settings: Settings, writes: list[tuple[frozenset[str], str,
                                                                   re.Pattern]]) -> None:
        self.app = app
        self.settings = settings
        self.limit = settings.api_max_body_bytes
        self.writes = writes

    def _needs_token(self, method: str, path: str) -> bool:
        if self.settings.api_require_token_for_reads and path not in PUBLIC_PATHS:
            return True
        return any(method in methods and path.startswith(prefix) and regex.match(path)
                   for methods, prefix, regex in self.writes)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._needs_token(scope["method"], scope["path"]):
            try:
                _check_token(self.settings, _bearer(scope))
            except HTTPException as exc:
                await _answer(send, exc.status_code, exc.detail, exc.headers)
                return
        length = chunked = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = value
        if length is not None:
            # the server already enforces Content-Length, so a declared size is the real size
            if not length.isdigit():
                await _answer(send, 400, "invalid Content-Length header")
                return
            if int(length) > self.limit:
                await _answer(send, 413, self._too_large(f"{int(length):,} bytes"))
                return
        elif chunked is not None:
            receive = await self._buffer(receive, send)
            if receive is None:
                return
        await self.app(scope, receive, send)

    def _too_large(self, size: str) -> str:
        return (f"request body of {size} is over the limit of {self.limit:,} bytes "
                "(FEATURESTORE_API_MAX_BODY_BYTES); send a smaller request, e.g. split a batch")

    async def _buffer(self, receive, send):
        """Read a body of unknown size up to the limit; None when it passed it (413 sent)."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # client went away: let the app see it
                chunks.append(message)
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await _answer(send, 413, self._too_large(f"more than {self.limit:,} bytes"))
                return None
            chunks.append(message)
            more = message.get("more_body", False)
        messages = iter(chunks)

        async def replay():
            # hand the buffered messages back, then whatever the server has next (disconnect)
            return next(messages, None) or await receive()

        return replay
