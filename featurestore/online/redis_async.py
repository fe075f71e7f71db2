"""The API's Redis connection for reads: one pipelined asyncio connection per event loop, replies
parsed by hiredis (C), commands packed by hiredis, no connection pool.

Why not ``redis.asyncio``: a request's whole answer is one ``EVALSHA`` of the read script
(:data:`.redis_codec.READ_SCRIPT`). redis-py spends about 100 us of Python per command around it
(the pool's acquire and release, each argument encoded in Python, an ``asyncio.wait_for`` per
read and per write): as much CPU as a whole hello-world answer (``benchmarks/serve.py
--online-store redis``). Here concurrent requests share one connection: each writes its packed
command to the transport and awaits a future; replies come back in order (Redis answers a
connection's commands in order) and complete the futures first in, first out.

Failures: a connection refused, reset or silent for :data:`TIMEOUT` seconds fails every pending
read with :class:`ConnectionError` (the store answers 503) and the next read connects anew.
"""

from __future__ import annotations

import asyncio
import collections
import ssl as ssl_mod
import time
from typing import Any
from urllib.parse import unquote, urlparse

__all__ = ["AsyncRedis", "supported"]

#: Seconds a reply may take (the oldest pending one) before the connection is dropped.
TIMEOUT = 5.0


def supported(url: str) -> bool:
    """Whether :class:`AsyncRedis` takes ``url`` (``redis://``, ``rediss://`` or ``unix://``
    without query options; anything else keeps redis-py's client)."""
    parsed = urlparse(url)
    return parsed.scheme in ("redis", "rediss", "unix") and not parsed.query


class _Protocol(asyncio.Protocol):
    """One connection: replies complete the pending futures in order."""

    def __init__(self) -> None:
        import hiredis

        self.reader = hiredis.Reader()
        self.waiting: collections.deque[tuple[asyncio.Future, float]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.outbox: list[bytes] = []  # commands of this loop iteration, sent together

    def flush(self) -> None:
        """Send the commands queued in this loop iteration in one write (one system call for
        the requests a loop iteration runs together, and their replies come back in one
        read)."""
        out, self.outbox = self.outbox, []
        if out and self.transport is not None and not self.closed:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        reader, waiting = self.reader, self.waiting
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except Exception as exc:  # noqa: BLE001 - hiredis.ProtocolError (imported lazily)
                self.fail(ConnectionError(f"Redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not waiting:  # a reply nobody asked for: the stream is out of step
                self.fail(ConnectionError("Redis sent an unexpected reply"))
                return
            future = waiting.popleft()[0]
            if not future.done():
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(ConnectionError(f"Redis closed the connection ({exc or 'EOF'})"))

    def fail(self, exc: Exception) -> None:
        """Fail every pending read and close (the next read connects anew)."""
        self.closed = True
        self.outbox = []
        while self.waiting:
            future = self.waiting.popleft()[0]
            if not future.done():
                future.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


class AsyncRedis:
    """Pipelined Redis reads on the running event loop (see the module docstring).

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS, the system's
            certificates) or ``unix://path[?db]``.
        timeout: seconds before a connection attempt or a pending reply fails.
    """

    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        parsed = urlparse(url)
        self.url = url
        self.timeout = timeout
        self.unix = parsed.path if parsed.scheme == "unix" else None
        self.host = parsed.hostname or "localhost"
        self.port = parsed.port or 6379
        self.tls = parsed.scheme == "rediss"
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        db = parsed.path.strip("/") if parsed.scheme != "unix" else ""
        self.db = int(db) if db else 0
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop it serves (the caller's)
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Future | None = None
        self._watch: asyncio.TimerHandle | None = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self.unix:
            make = loop.create_unix_connection(_Protocol, self.unix)
        else:
            ssl = ssl_mod.create_default_context() if self.tls else None
            make = loop.create_connection(_Protocol, self.host, self.port, ssl=ssl)
        _, proto = await asyncio.wait_for(make, self.timeout)
        hello = []
        if self.password:
            hello.append(("AUTH", self.username, self.password) if self.username
                         else ("AUTH", self.password))
        if self.db:
            hello.append(("SELECT", self.db))
        from hiredis import pack_command

        for command in hello:
            reply = await asyncio.wait_for(self._send(proto, pack_command(command)),
                                           self.timeout)
            if isinstance(reply, Exception):
                proto.fail(ConnectionError(str(reply)))
                raise ConnectionError(f"Redis refused {command[0]}: {reply}")
        return proto

    async def _connection(self) -> _Protocol:
        proto = self._proto
        if proto is not None and not proto.closed:
            return proto
        if self._connecting is None:  # one attempt shared by every waiting request
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            proto = await asyncio.shield(connecting)
        finally:
            if self._connecting is connecting and connecting.done():
                self._connecting = None
        self._proto = proto
        return proto

    def _send(self, proto: _Protocol, packed: bytes) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        proto.waiting.append((future, time.monotonic()))
        if not proto.outbox:
            loop.call_soon(proto.flush)
        proto.outbox.append(packed)
        if self._watch is None:
            self._watch = loop.call_later(self.timeout / 4, self._check)
        return future

    def _check(self) -> None:
        """Drop a connection whose oldest pending reply is older than the timeout (one timer
        for all requests, not one per request)."""
        self._watch = None
        proto = self._proto
        if proto is None or not proto.waiting:
            return
        if time.monotonic() - proto.waiting[0][1] > self.timeout:
            proto.fail(ConnectionError(f"Redis did not answer within {self.timeout:g} s"))
            return
        self._watch = asyncio.get_running_loop().call_later(self.timeout / 4, self._check)

    async def execute(self, packed: bytes) -> Any:
        """Send one packed command (:func:`hiredis.pack_command`) and return its reply.

        Returns:
            The reply; an error reply is returned as a :class:`hiredis.ReplyError`, not raised.

        Raises:
            ConnectionError, OSError, asyncio.TimeoutError: Redis unreachable or silent.
        """
        proto = await self._connection()
        if proto.closed:
            raise ConnectionError("Redis connection closed")
        return await self._send(proto, packed)

    async def aclose(self) -> None:
        """Close the connection (pending reads fail)."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self._proto is not None:
            self._proto.fail(ConnectionError("client closed"))
            self._proto = None
