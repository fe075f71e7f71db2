"""How the Redis online store lays out a table, pure: key names, the slot metadata, the packed
rows, and the read-side view the API builds its answers from.

Per table, under a hash tag so every key of a table lands on one Redis Cluster slot::

    {fs:<namespace>:<table>}:ptr        "<slot>|<push id>": the served slot (a or b)
    {fs:<namespace>:<table>}:<slot>:meta    JSON :class:`SlotMeta` of the slot
    {fs:<namespace>:<table>}:<slot>:rows    hash customer_id -> packed row(s)

A packed row is the JSON array of the row's values in column order (every column but
``customer_id``); a table with more keys packs a customer's rows as an array of such arrays,
in the memory store's order. Recency columns (``aggregation: recency``, the ``days_since_*``
features) are stored as the day number of the event (days since 1970-01-01) and turned back
into days before the served as-of when read, so a customer with no new activity keeps the same
packed value from one day to the next and a push does not rewrite it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from .memory import checked_features

__all__ = ["TableKeys", "SlotMeta", "RowsView", "SLOTS", "READ_SCRIPT", "FLIP_SCRIPT",
           "epoch_day", "unpack", "other_slot"]

SLOTS = ("a", "b")
_EPOCH = dt.date(1970, 1, 1)

#: Read the pointer, the served slot's metadata (only when the caller's cached pointer
#: differs) and the rows of the given ids, in one atomic script: one generation per answer.
#: KEYS: ptr, a:meta, a:rows, b:meta, b:rows; ARGV: the cached pointer, then customer ids.
READ_SCRIPT = """
local p = redis.call('GET', KEYS[1])
if not p then return {false} end
local mk, rk = KEYS[2], KEYS[3]
if string.sub(p, 1, 1) == 'b' then mk, rk = KEYS[4], KEYS[5] end
local meta = false
if p ~= ARGV[1] then
  meta = redis.call('GET', mk)
  if not meta then return {p, false, false, 1} end
end
if #ARGV < 2 then return {p, meta, {}} end
return {p, meta, redis.call('HMGET', rk, unpack(ARGV, 2))}
"""

#: Mark a slot complete and point readers at it, in one atomic script (the push's commit).
#: KEYS: ptr, the slot's meta; ARGV: the new pointer, the slot's complete metadata.
FLIP_SCRIPT = """
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


def epoch_day(as_of: str) -> int:
    """``YYYY-MM-DD`` as days since 1970-01-01."""
    return (dt.date.fromisoformat(as_of) - _EPOCH).days


def other_slot(slot: str | None) -> str:
    """The slot a push writes: the one not served (``a`` when none is)."""
    return "b" if slot == "a" else "a"


@dataclass(frozen=True)
class TableKeys:
    """The Redis keys of one table of one offline store.

    Attributes:
        namespace: the store's namespace (from its online record): two stores share a Redis.
        table: the table.
    """

    namespace: str
    table: str

    @property
    def tag(self) -> str:
        return f"{{fs:{self.namespace}:{self.table}}}"

    @property
    def ptr(self) -> str:
        return f"{self.tag}:ptr"

    def meta(self, slot: str) -> str:
        return f"{self.tag}:{slot}:meta"

    def rows(self, slot: str) -> str:
        return f"{self.tag}:{slot}:rows"

    def script_keys(self) -> list[str]:
        """The keys :data:`READ_SCRIPT` takes."""
        return [self.ptr, self.meta("a"), self.rows("a"), self.meta("b"), self.rows("b")]


@dataclass(frozen=True)
class SlotMeta:
    """What one slot of a table holds.

    Attributes:
        state: ``complete`` (every row of ``as_of``/``generation``) or ``writing`` (a push
            into it started and has not flipped: never served, redone by the next push).
        push_id: the push that wrote it (part of the pointer).
        as_of: the partition's date.
        generation: the partition's committed generation.
        columns: the packed columns (every column but ``customer_id``), in order.
        dtypes: column -> Arrow type name.
        keys: the table's entity keys.
        recency: the columns stored as event day numbers.
        base: while ``writing``: the (as-of, generation) the slot held before, which the
            push's difference was taken against; None: a full rewrite.
        pushed_at: when the push started (epoch seconds): the served data's age.
    """

    state: str
    push_id: str
    as_of: str
    generation: int
    columns: list[str]
    dtypes: dict[str, str]
    keys: list[str]
    recency: list[str] = field(default_factory=list)
    base: list[Any] | None = None
    pushed_at: float = 0.0

    def dumps(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def loads(cls, raw: bytes | str | None) -> SlotMeta | None:
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
            return cls(**data)
        except (orjson.JSONDecodeError, TypeError):
            return None  # a foreign or older value: treated as an empty slot


def unpack(raw: bytes, multi: bool, recency: list[int], day: int) -> list[list[Any]]:
    """The rows of one packed value, recency turned into days before ``day``.

    Args:
        raw: the packed value (JSON).
        multi: the table has more than one key (the value is a list of rows).
        recency: the positions of recency columns.
        day: the served as-of as a day number.

    Returns:
        The rows, each a list of values in column order.
    """
    value = orjson.loads(raw)
    rows = value if multi else [value]
    if recency:
        for row in rows:
            for k in recency:
                if row[k] is not None:
                    row[k] = day - row[k]
    return rows


class RowsView:
    """The rows of a few customers of one generation of a table, read from Redis: what the API
    builds its answers from, with the reads of :class:`~featurestore.online.TableSnapshot`
    (``index``, ``row``, ``row_json``, ``rows_json``, ``rows_at``, ``rows_of``, ``lookup``,
    ``check_features``), so the same body builders serve both stores.
    """

    def __init__(self, meta: SlotMeta, table: str, rows: list[list[Any]],
                 index: dict[str, Any]) -> None:
        self.table = table
        self.as_of = meta.as_of
        self.generation = meta.generation
        self.columns = list(meta.columns)
        self.dtypes = dict(meta.dtypes)
        self.keys = list(meta.keys)
        self.index = index
        self.loaded_at = meta.pushed_at
        self._rows = rows
        self.rows = len(rows)

    @property
    def features(self) -> list[str]:
        return [c for c in self.columns if c not in self.keys]

    def row(self, i: int, features: list[str] | None = None) -> dict[str, Any]:
        out = dict(zip(self.columns, self._rows[i]))
        return out if not features else {name: out[name] for name in features}

    def row_json(self, i: int) -> bytes:
        return orjson.dumps(self.row(i))

    def rows_json(self, rows: list[int]) -> list[bytes]:
        return [self.row_json(i) for i in rows]

    def rows_at(self, rows: list[int], features: list[str]) -> list[dict[str, Any]]:
        return [self.row(i, features) for i in rows]

    def get(self, customer_id: str, features: list[str] | None = None) -> dict[str, Any] | None:
        i = self.index.get(customer_id)
        if i is None:
            return None
        return self.row(i if not isinstance(i, tuple) else i[0], features)

    def rows_of(self, customer_id: str, top: int | None = None,
                features: list[str] | None = None) -> list[dict[str, Any]]:
        span = self.index.get(customer_id)
        if span is None:
            return []
        start, stop = span if isinstance(span, tuple) else (span, span + 1)
        if top is not None:
            stop = min(stop, start + top)
        return [self.row(i, features) for i in range(start, stop)]

    def lookup(self, keys: dict[str, str], features: list[str]) -> dict[str, Any] | None:
        span = self.index.get(keys["customer_id"])
        if span is None:
            return None
        if not isinstance(span, tuple):
            return self.row(span, features)
        rest = [(self.columns.index(k), keys[k]) for k in self.keys if k != "customer_id"]
        for i in range(*span):
            row = self._rows[i]
            if all(row[j] == v for j, v in rest):
                return self.row(i, features)
        return None

    def check_features(self, features: list[str] | None) -> list[str]:
        """The requested features, validated as the memory store does."""
        return checked_features(self.table, self.columns, self.dtypes, features)

    @classmethod
    def build(cls, meta: SlotMeta, table: str, ids: list[str],
              values: list[bytes | None]) -> RowsView:
        """The view of the packed values HMGET answered for ``ids``.

        Args:
            meta: the served slot's metadata.
            table: the table.
            ids: the requested customer ids.
            values: one packed value or None (no row) per id.

        Returns:
            The view: ``index`` maps each found id to its row (or span of rows).
        """
        multi = len(meta.keys) > 1
        recency = [meta.columns.index(c) for c in meta.recency if c in meta.columns]
        day = epoch_day(meta.as_of)
        rows: list[list[Any]] = []
        index: dict[str, Any] = {}
        for cid, raw in zip(ids, values):
            if raw is None or cid in index:
                continue
            got = unpack(raw, multi, recency, day)
            index[cid] = (len(rows), len(rows) + len(got)) if multi else len(rows)
            rows.extend(got)
        return cls(meta, table, rows, index)
