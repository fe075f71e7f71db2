"""The Redis online store (``online_store: redis://[:password@]host:port/db`` or ``rediss://``
for TLS): many API processes serve the latest as-of of every table from one Redis.

Reads only: the run that commits a partition pushes it (:mod:`.redis_push`). A request reads
the table's pointer and the rows of its customers from the served slot's buckets in one atomic
Lua script (:data:`.redis_codec.READ_SCRIPT`; when the pointer moved, the new slot's metadata
comes back first and the read is asked again with its buckets), so every answer, a batch of 100 included, comes from one generation. Older as-of dates are read from
the offline store, as with ``memory``.

Failures: Redis unreachable or loading raises :class:`OnlineStoreUnavailableError` (the API
answers 503 and recovers by itself: the connection pool reconnects on the next request). A
table the offline record says was pushed but whose pointer is gone (Redis emptied, or
restarted without persistence) is the same 503 and ``/ready`` says so, never "customer not
found".
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from typing import Any

try:  # the redis extra (redis-py with hiredis); without it the constructor says what to install
    from hiredis import ReplyError, pack_command
except ImportError:  # pragma: no cover - the extra is missing
    ReplyError = pack_command = None

from .._exceptions import NotFoundError, OnlineStoreUnavailableError
from ..layout import ONLINE_RECORD
from ..storage import Store
from .memory import SERVED_TABLES, OnlineSnapshot, OnlineStore
from .poller import Poller
from .redis_async import AsyncRedis, supported  # hiredis is imported there on first use
from .redis_codec import READ_SCRIPT, READ_SHA, RowsView, SlotMeta, TableKeys, ViewShape

__all__ = ["RedisOnlineStore", "redis_client", "read_record", "redact"]

log = logging.getLogger(__name__)

#: Seconds a Redis command may take before the request answers 503 (not a hung worker).
TIMEOUT = 5.0
#: Script calls one read makes at most (each pointer move costs one: the new slot's buckets).
READ_TRIES = 4
#: Least seconds between two re-reads of the offline push record by a reader.
RECORD_EVERY = 1.0


def redact(url: str) -> str:
    """``url`` without its password (for messages and records)."""
    head, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{head}{sep}{user + ':' if user else ':'}***@{host}"


def redis_client(url: str, *, asynchronous: bool = False, protocol: int | None = None) -> Any:
    """A redis-py client for ``url`` (password, database and TLS from the URL).

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL.
        asynchronous: a ``redis.asyncio`` client (the API's event loop) instead.
        protocol: the RESP version (the push's writers ask for 2: no push messages between
            replies, so they count replies on the socket); None: redis-py's default.

    Returns:
        The client; connections are made on first use and remade after a failure.

    Raises:
        ConfigError: redis-py is not installed (``pip install 'featurestore[redis]'``).
    """
    try:
        if asynchronous:
            import redis.asyncio as redis_mod
        else:
            import redis as redis_mod
    except ImportError:
        from .._exceptions import ConfigError

        raise ConfigError("online_store is a Redis URL but redis-py is not installed: "
                          "pip install 'featurestore[redis]'") from None
    extra = {"protocol": protocol} if protocol is not None else {}
    return redis_mod.Redis.from_url(url, socket_timeout=TIMEOUT,
                                    socket_connect_timeout=TIMEOUT, retry_on_timeout=False,
                                    **extra)


def read_record(store: Store) -> dict[str, Any] | None:
    """The offline store's record of the last push (namespace, per table as-of, generation and
    push id), or None before the first push."""
    if not store.exists(ONLINE_RECORD):
        return None
    return store.read_json(ONLINE_RECORD)


class _Served:
    """What a read of one table sends while its pointer is the cached one, built once per
    pointer: the keys, the fixed arguments, the packed command's head, the answers' shape."""

    __slots__ = ("buckets", "command", "head", "meta", "pointer", "ptr", "shape")

    def __init__(self, keys: TableKeys, pointer: bytes, meta: SlotMeta) -> None:
        slot = pointer[:1].decode()
        self.pointer = pointer
        self.meta = meta
        self.shape = ViewShape(meta)
        self.ptr = keys.ptr
        self.head = [pointer, *keys.view_args(slot, meta)]
        self.buckets = meta.buckets
        self.command = ("EVALSHA", READ_SHA, 1, self.ptr, *self.head)


def _redis_errors() -> tuple[type[BaseException], ...]:
    import redis

    return (redis.exceptions.RedisError, OSError)


class RedisOnlineStore:
    """Serves every table's latest as-of from Redis (see the module docstring).

    Args:
        store: the offline store (its push record names the namespace; older as-of dates).
        poll_seconds: how often the background thread re-reads the push record and checks
            Redis (for ``/ready`` and logs; requests never wait for it).
        tables: the tables served.
        keys: table -> entity keys.
        url: the Redis URL (the ``online_store`` setting).
    """

    in_process = False

    def __init__(self, store: Store, *, poll_seconds: float = 30.0,
                 tables: tuple[str, ...] = SERVED_TABLES,
                 keys: dict[str, list[str]] | None = None, url: str | None = None) -> None:
        if not url:
            from .._exceptions import ConfigError

            raise ConfigError("the Redis online store needs a URL: set online_store to "
                              "redis://[:password@]host:port/db (rediss:// for TLS)")
        self.store = store
        self.url = url
        self.poll_seconds = poll_seconds
        self.tables = tuple(tables)
        self.keys = dict(keys or {})
        self.snapshot: OnlineSnapshot | None = None  # rows live in Redis, not here
        self.last_error: str | None = None
        self._offline = OnlineStore(store, tables=self.tables, keys=self.keys)  # older as-of
        self._record: dict[str, Any] | None = None
        self._keys: dict[str, TableKeys] = {}
        self._record_at = 0.0
        self._known: dict[str, tuple[bytes, SlotMeta]] = {}  # table -> (pointer, its meta)
        self._served: dict[str, _Served] = {}  # table -> what a read of its pointer sends
        self._fast_ok = pack_command is not None and supported(url)
        self._fast_conns: dict[int, AsyncRedis] = {}  # event loop id -> connection
        self._sync: Any = None
        self._async: dict[int, Any] = {}  # event loop id -> client
        self._poller = Poller(
            "online-redis", self.refresh,
            lambda: self.poll_seconds if self._record else min(self.poll_seconds, 1.0))

    def __repr__(self) -> str:
        return f"RedisOnlineStore({redact(self.url)!r})"

    # -- clients and the push record --------------------------------------------------------
    def _client(self) -> Any:
        if self._sync is None:
            self._sync = redis_client(self.url)
        return self._sync

    def _aclient(self) -> Any:
        loop = id(asyncio.get_running_loop())
        client = self._async.get(loop)
        if client is None:
            client = self._async[loop] = redis_client(self.url, asynchronous=True)
        return client

    def _load_record(self, force: bool = False) -> dict[str, Any] | None:
        now = time.monotonic()
        if force or now - self._record_at >= RECORD_EVERY:
            self._record_at = now
            self._record = read_record(self.store)
        return self._record

    def _table_keys(self, table: str) -> TableKeys | None:
        record = self._record
        if not record:
            return None
        keys = self._keys.get(table)
        if keys is None or keys.namespace != record["namespace"]:
            keys = self._keys[table] = TableKeys(record["namespace"], table)
            self._served.pop(table, None)  # another namespace: its pointer is read anew
        return keys

    # -- lifecycle --------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Re-read the push record and check every table in Redis (sets :attr:`last_error`).

        Returns:
            True when the served generations changed since the last check.
        """
        before = {t: k[0] for t, k in self._known.items()}
        self._load_record(force=True)
        try:
            self._check_all()
            self.last_error = None
        except (OnlineStoreUnavailableError, NotFoundError) as exc:
            self.last_error = str(exc)
        return {t: k[0] for t, k in self._known.items()} != before

    def _check_all(self) -> None:
        """Read every table's pointer (raises when Redis is unreachable or a table is lost)."""
        for table in self.tables:
            try:
                self.view(table)
            except NotFoundError:
                continue

    def start(self) -> None:
        """Read the push record and check Redis now and then (a daemon thread)."""
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        """Close the connections of the calling event loop's client (the API's shutdown)."""
        loop = id(asyncio.get_running_loop())
        client = self._async.pop(loop, None)
        self._ascript = None
        if client is not None:
            await client.aclose()
        fast = self._fast_conns.pop(loop, None)
        if fast is not None:
            await fast.aclose()

    # -- reads ------------------------------------------------------------------------------
    def _args(self, table: str, ids: list[str]) -> tuple[list[str], list[Any]]:
        """The script's keys and arguments: the rows of every id in the view of the cached
        pointer (no ids before a pointer is cached: that call fetches it)."""
        known = self._served.get(table)
        if known is None:
            return [self._table_keys(table).ptr], [b""]
        return [known.ptr], [*known.head, TableKeys.bucket_list(known.buckets, ids), *ids]

    def _packed(self, table: str, ids: list[str]) -> bytes:
        """:meth:`_args` as one packed ``EVALSHA`` (hiredis, C): the API's read."""
        known = self._served.get(table)
        if known is None:
            return pack_command(("EVALSHA", READ_SHA, 1, self._table_keys(table).ptr, ""))
        if not known.buckets:
            return pack_command((*known.command, "", *ids))
        crc = zlib.crc32
        n = known.buckets
        return pack_command((*known.command, ",".join([str(crc(i.encode()) % n) for i in ids]),
                             *ids))

    def _answer(self, table: str, ids: list[str], reply: list[Any]) -> RowsView | None:
        """The view the script's reply gives, or None when the pointer moved (the new slot's
        metadata is cached now: ask again, with its view's keys)."""
        if not reply or reply[0] is None:
            self._missing(table)
        if len(reply) > 3:
            raise OnlineStoreUnavailableError(
                f"the online store's pointer of table {table!r} names a slot without "
                "metadata (Redis partly emptied?): run featurestore online push")
        pointer = reply[0]
        if reply[1] is not None:
            meta = SlotMeta.loads(reply[1])
            if meta is None or meta.state != "complete":
                raise OnlineStoreUnavailableError(
                    f"the online store's served slot of table {table!r} is not complete: "
                    "run featurestore online push")
            self._known[table] = (pointer, meta)
            self._served[table] = _Served(self._table_keys(table), pointer, meta)
            if ids:
                return None
            return RowsView.build(self._served[table].shape, table, [], [])
        known = self._served.get(table)
        if known is None or known.pointer != pointer:  # cannot happen: the script sends meta
            raise OnlineStoreUnavailableError(f"online store changed under a read of {table!r}")
        return RowsView.build(known.shape, table, ids, reply[2] or [])

    def _missing(self, table: str) -> None:
        """No pointer for ``table``: never pushed (404, as memory) or lost (503)."""
        if table not in self.tables:
            raise NotFoundError(f"no feature table {table!r} is served; served: "
                                f"{', '.join(self.tables)}")
        record = self._record
        if record and table in record.get("tables", {}):
            pushed = record["tables"][table]
            raise OnlineStoreUnavailableError(
                f"the online store has lost table {table!r} (as of {pushed['as_of']}, "
                f"generation {pushed['generation']} was pushed): Redis was emptied or restarted "
                "without persistence; run featurestore online push (the next ingest or "
                "run-daily also does)")
        raise NotFoundError(
            f"table {table!r} has no as_of partition in the online store yet; ingest data "
            "first (featurestore ingest) or backfill (featurestore backfill), or push "
            "committed partitions (featurestore online push)")

    def _unavailable(self, exc: BaseException) -> OnlineStoreUnavailableError:
        self.last_error = (f"online store unreachable ({type(exc).__name__}: {exc}); "
                           "answers resume when Redis is back")
        return OnlineStoreUnavailableError(self.last_error)

    def view(self, table: str, ids: list[str] | None = None) -> RowsView:
        """The rows of ``ids`` in the served generation of ``table`` (one round trip).

        Args:
            table: a served table.
            ids: customer ids (None or empty: only the table's as-of and columns).

        Returns:
            The view (``index`` holds the ids found).

        Raises:
            NotFoundError: no such table, or nothing pushed yet.
            OnlineStoreUnavailableError: Redis unreachable, or the table's data lost.
        """
        ids = list(ids or [])
        if self._table_keys(table) is None and self._load_record() is None:
            self._missing(table)
        for _ in range(READ_TRIES):
            keys, args = self._args(table, ids)
            try:
                reply = self._client().eval(READ_SCRIPT, len(keys), *keys, *args)
            except _redis_errors() as exc:
                raise self._unavailable(exc) from None
            if reply and reply[0] is None:
                self._load_record()  # a push may have started using another namespace
            view = self._answer(table, ids, reply)
            if view is not None:
                return view
        raise OnlineStoreUnavailableError(f"the online store's table {table!r} changed "
                                          f"{READ_TRIES} times under one read; try again")

    async def aview(self, table: str, ids: list[str] | None = None) -> RowsView:
        """:meth:`view` on the event loop: one ``EVALSHA`` on the loop's pipelined connection
        (:mod:`.redis_async`; redis-py's async client for a URL with query options)."""
        ids = list(ids) if ids else []
        if self._record is None:
            await asyncio.to_thread(self._load_record)
            if self._record is None:
                self._missing(table)
        for _ in range(READ_TRIES):
            try:
                reply = await self._aeval(table, ids)
            except _redis_errors() as exc:
                raise self._unavailable(exc) from None
            if reply and reply[0] is None and time.monotonic() - self._record_at >= RECORD_EVERY:
                await asyncio.to_thread(self._load_record)
            view = self._answer(table, ids, reply)
            if view is not None:
                return view
        raise OnlineStoreUnavailableError(f"the online store's table {table!r} changed "
                                          f"{READ_TRIES} times under one read; try again")

    async def _aeval(self, table: str, ids: list[str]) -> Any:
        """One read script call on the event loop (``EVAL`` once when Redis lacks the
        script, e.g. after a restart); an error reply raises a RedisError."""
        fast = self._fast()
        if fast is None:  # a URL AsyncRedis does not take: redis-py's client
            keys, args = self._args(table, ids)
            return await self._script()(keys=keys, args=args, client=self._aclient())
        reply = await fast.execute(self._packed(table, ids))
        if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
            keys, args = self._args(table, ids)
            reply = await fast.execute(pack_command(("EVAL", READ_SCRIPT, len(keys), *keys,
                                                     *args)))
        if isinstance(reply, ReplyError):
            import redis

            raise redis.exceptions.ResponseError(str(reply))
        return reply

    def _fast(self) -> AsyncRedis | None:
        """The running loop's pipelined connection (None: the URL needs redis-py)."""
        if not self._fast_ok:
            return None
        loop = asyncio.get_running_loop()
        conn = self._fast_conns.get(id(loop))
        if conn is None or conn.loop is not loop:  # a new loop (an id may be reused)
            conn = self._fast_conns[id(loop)] = AsyncRedis(self.url, timeout=TIMEOUT)
            conn.loop = loop
        return conn

    def _script(self) -> Any:
        script = getattr(self, "_ascript", None)
        if script is None:
            script = self._ascript = self._aclient().register_script(READ_SCRIPT)
        return script

    async def served(self) -> OnlineSnapshot | None:
        """The served as-of and generation of every pushed table, read now (``/ready``);
        None with :attr:`last_error` set when Redis is unreachable or a pushed table is lost."""
        tables: dict[str, Any] = {}
        try:
            await asyncio.to_thread(self._load_record)
            for table in self.tables:
                try:
                    tables[table] = await self.aview(table)
                except NotFoundError:
                    continue
        except OnlineStoreUnavailableError as exc:
            self.last_error = str(exc)
            return None
        self.last_error = None
        return OnlineSnapshot(tables)

    def table(self, table: str, as_of: str | None = None,
              snapshot: OnlineSnapshot | None = None) -> Any:
        """The latest as-of of ``table`` (a view without rows: use :meth:`view` with the ids
        to read) or an older as-of, read from the offline store."""
        if as_of is None:
            return self.view(table)
        return self._offline.table(table, as_of)
