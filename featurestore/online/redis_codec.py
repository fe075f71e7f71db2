"""How the Redis online store lays out a table, pure: key names, the slot metadata, the packed
rows, and the read-side view the API builds its answers from.

Per table, under a hash tag so every key of a table lands on one Redis Cluster slot::

    {fs:<namespace>:<table>}:ptr        "<slot>|<push id>": the served view: a base slot (a,
                                        b) alone, or an overlay slot (x, y) over its base
    {fs:<namespace>:<table>}:<slot>:meta    JSON :class:`SlotMeta` of the slot
    {fs:<namespace>:<table>}:<a|b>:rows:<b>    hash customer_id -> packed row(s), one of the
                                               base's ``buckets`` hashes
    {fs:<namespace>:<table>}:<x|y>:rows:<o>    hash customer_id -> "<base bucket>|<packed>"
                                               ("<base bucket>|": deleted), one of the
                                               overlay's ``overlay`` hashes (o = b mod it)

A base's rows are spread over small hashes (buckets): customer ``c`` lives in bucket
``crc32(c) mod buckets`` (:func:`bucket_of`), ``buckets`` chosen by a whole push from the row
count so a bucket holds about :data:`BUCKET_ROWS` customers and recorded in the slot's
metadata. Small hashes keep Redis's compact listpack encoding (``hash-max-listpack-entries``
128) and a constant per-field cost: one hash of millions of fields cost 3-9 µs a field to write
and about twice the memory. A slot whose metadata says ``buckets: 0`` (written before buckets)
is one hash ``<slot>:rows``. An overlay holds a push's changes since its base's generation,
sized for them (about :data:`BUCKET_ROWS` a bucket); readers ask it first
(:data:`READ_SCRIPT`), and the push folds it into the base after the flip
(:data:`FOLD_SCRIPT`).

A packed row is the JSON array of the row's values in column order (every column but
``customer_id``); a table with more keys packs a customer's rows as an array of such arrays,
in the memory store's order. Recency columns (``aggregation: recency``, the ``days_since_*``
features) are stored as the day number of the event (days since 1970-01-01) and turned back
into days before the served as-of when read, so a customer with no new activity keeps the same
packed value from one day to the next and a push does not rewrite it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from .memory import checked_features

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["TableKeys", "SlotMeta", "RowsView", "ViewShape", "SLOTS", "READ_SCRIPT", "FLIP_SCRIPT",
           "READ_SHA", "FOLD_SCRIPT", "UNLAY_SCRIPT", "OVERLAYS", "epoch_day", "unpack", "other_slot", "bucket_of", "buckets_of", "bucket_count",
           "BUCKET_ROWS"]

SLOTS = ("a", "b")
#: The overlay slots: a push that writes only what changed since the served generation writes
#: the one not served, then folds it into the base it overlays.
OVERLAYS = ("x", "y")
_EPOCH = dt.date(1970, 1, 1)

#: Customers per bucket a whole push aims at (under ``hash-max-listpack-entries``, 128).
BUCKET_ROWS = 100

#: Read the pointer and, when it is the caller's cached one, the rows of the given ids of the
#: view it names, in one atomic script: one generation per answer. A view is a base slot's
#: buckets, under an overlay (a push's changes since the base's generation) that is consulted
#: first: an overlay value is ``<base bucket>|<packed row>``, empty after the bar for a customer
#: deleted. When the pointer moved, the metadata of the slot it names comes back instead of rows
#: and the caller asks again with that view's keys and buckets.
#: KEYS: ptr (``<tag>:ptr``: the metadata key is ``<tag>:<slot>:meta``, same hash tag); ARGV:
#: the cached pointer, the base's rows key (bucket ``n`` is ``<rows key>:n``), the overlay's
#: rows key (empty: no overlay), the overlay's bucket count (an id of base bucket ``b`` is in
#: overlay bucket ``b mod count``), the ids' base bucket numbers joined by commas (empty: a
#: base of one hash, the rows key itself), then the ids. The buckets travel as one
#: argument: redis-py encodes every argument in Python (~0.5 us each), and a bucket key per id
#: made a batch of 100 cost 20% more server CPU.
READ_SCRIPT = """
local p = redis.call('GET', KEYS[1])
if not p then return {false} end
if p ~= ARGV[1] then
  local tag = string.sub(KEYS[1], 1, -5)
  local meta = redis.call('GET', tag .. ':' .. string.sub(p, 1, 1) .. ':meta')
  if not meta then return {p, false, false, 1} end
  return {p, meta, false}
end
local out = {}
local base, ov = ARGV[2], ARGV[3]
if ARGV[5] == '' then
  for i = 6, #ARGV do out[i - 5] = redis.call('HGET', base, ARGV[i]) end
  return {p, false, out}
end
local nov = tonumber(ARGV[4])
local i = 6
for b in string.gmatch(ARGV[5], '[^,]+') do
  local v = false
  local hit = false
  if ov ~= '' then
    local o = redis.call('HGET', ov .. ':' .. (tonumber(b) % nov), ARGV[i])
    if o then
      hit = true
      v = string.sub(o, string.find(o, '|', 1, true) + 1)
      if v == '' then v = false end
    end
  end
  if not hit then v = redis.call('HGET', base .. ':' .. b, ARGV[i]) end
  out[i - 5] = v
  i = i + 1
end
return {p, false, out}
"""

#: The SHA-1 of :data:`READ_SCRIPT` (``EVALSHA``; a server without it is sent ``EVAL`` once).
READ_SHA = hashlib.sha1(READ_SCRIPT.encode()).hexdigest()

#: Mark a slot complete and point readers at it, in one atomic script (the push's commit).
#: KEYS: ptr, the slot's meta; ARGV: the new pointer, the slot's complete metadata.
FLIP_SCRIPT = """
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

#: After the fold: point readers at the base alone (one ``HGET`` a customer instead of two),
#: when the pointer is still the overlay's. KEYS: ptr; ARGV: the overlay's pointer, the base's.
UNLAY_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

#: Fold one overlay bucket into its base: every value goes to its base bucket (``HSET``, a run
#: of consecutive fields of one base bucket in one call: the push writes an overlay bucket's
#: fields in base-bucket order, which a small hash keeps), a deleted customer is removed
#: (``HDEL``). Readers of the overlay's view see no change (the overlay still answers for
#: every field it holds), so a push folds after its flip, in as many script calls as the
#: overlay has buckets (each is short: readers wait for one bucket at most). Idempotent: a
#: fold that died is run again. KEYS: the overlay bucket; ARGV: the base's rows key. Returns
#: the fields folded.
FOLD_SCRIPT = """
local kv = redis.call('HGETALL', KEYS[1])
local pre = ARGV[1] .. ':'
local find, sub = string.find, string.sub
local cur, args, n = nil, {}, 0
for i = 1, #kv, 2 do
  local v = kv[i + 1]
  local cut = find(v, '|', 1, true)
  local b = sub(v, 1, cut - 1)
  if b ~= cur or n >= 400 then
    if n > 0 then redis.call('HSET', pre .. cur, unpack(args, 1, n)) end
    cur, n = b, 0
  end
  if cut == #v then
    redis.call('HDEL', pre .. b, kv[i])
  else
    args[n + 1] = kv[i]
    args[n + 2] = sub(v, cut + 1)
    n = n + 2
  end
end
if n > 0 then redis.call('HSET', pre .. cur, unpack(args, 1, n)) end
return #kv / 2
"""


def epoch_day(as_of: str) -> int:
    """``YYYY-MM-DD`` as days since 1970-01-01."""
    return (dt.date.fromisoformat(as_of) - _EPOCH).days


def bucket_count(rows: int) -> int:
    """The buckets a whole push spreads ``rows`` customers over (about :data:`BUCKET_ROWS`
    each; at least 1)."""
    return max(1, -(-int(rows) // BUCKET_ROWS))


def bucket_of(customer_id: str, buckets: int) -> int:
    """The bucket of one customer: CRC-32 of its UTF-8 id, modulo ``buckets``."""
    return zlib.crc32(customer_id.encode()) % buckets


def _crc_table() -> np.ndarray:
    """CRC-32's byte table (zlib's polynomial), built on first use: numpy is a push-side
    import, never the API's."""
    import numpy as np

    global _CRC_TABLE
    if _CRC_TABLE is None:
        table = np.arange(256, dtype=np.uint32)
        for _ in range(8):
            table = np.where(table & 1, (table >> 1) ^ np.uint32(0xEDB88320), table >> 1)
        _CRC_TABLE = table.astype(np.uint32)
    return _CRC_TABLE


_CRC_TABLE: np.ndarray | None = None


def buckets_of(ids: pa.Array, buckets: int) -> np.ndarray:
    """:func:`bucket_of` of every id of an Arrow string array, vectorized (numpy CRC-32, one
    pass per byte position, no Python object per id).

    Args:
        ids: the customer ids (no nulls).
        buckets: the slot's bucket count.

    Returns:
        int64 bucket numbers, one per id.
    """
    import numpy as np
    import pyarrow as pa

    crc_table = _crc_table()
    ids = ids.cast(pa.string())
    n = len(ids)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32)[ids.offset:ids.offset + n + 1]
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8) if ids.buffers()[2] is not None \
        else np.zeros(0, dtype=np.uint8)
    starts = offsets[:-1].astype(np.int64)
    lengths = (offsets[1:] - offsets[:-1]).astype(np.int64)
    crc = np.full(n, 0xFFFFFFFF, dtype=np.uint32)
    width = int(lengths.max())
    if width and int(lengths.min()) == width:  # fixed width (the usual ids): no masks
        for k in range(width):
            byte = data[starts + k]
            crc = crc_table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    else:
        for k in range(width):
            live = lengths > k
            byte = data[np.where(live, starts + k, 0)]
            nxt = crc_table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
            crc = np.where(live, nxt, crc)
    return ((crc ^ np.uint32(0xFFFFFFFF)) % np.uint32(buckets)).astype(np.int64)


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

    def rows(self, slot: str, bucket: int | None = None) -> str:
        """The hash of one bucket of a slot (``bucket`` None: the one hash of a slot written
        without buckets)."""
        base = f"{self.tag}:{slot}:rows"
        return base if bucket is None else f"{base}:{bucket}"

    @staticmethod
    def bucket_list(buckets: int, ids: list[str]) -> str:
        """Each id's bucket in a slot of ``buckets`` buckets, joined by commas (what
        :data:`READ_SCRIPT` takes; empty for a slot of one hash)."""
        if not buckets:
            return ""
        crc = zlib.crc32
        return ",".join([str(crc(i.encode()) % buckets) for i in ids])

    def view_args(self, slot: str, meta: SlotMeta) -> list[str]:
        """:data:`READ_SCRIPT`'s view arguments for the served ``slot``: the base's rows key,
        the overlay's rows key (empty: none) and the overlay's bucket count."""
        if slot in OVERLAYS:
            return [self.rows(meta.base_slot), self.rows(slot), str(meta.overlay)]
        return [self.rows(slot), "", "0"]


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
        buckets: the hashes the slot's rows are spread over (0: one hash, an older layout).
        stale: bucket keys ``0..stale-1`` may hold rows of an earlier content of the slot
            (set by a whole rewrite before it clears them, so a rewrite that died is cleared
            whole by the next one).
        base_slot: an overlay slot's (``x``, ``y``) base: the base slot (``a``, ``b``) whose
            buckets it overlays; ``buckets`` is then that base's bucket count.
        overlay: an overlay slot's bucket count (0 for a base slot).
        folding: a base slot's: the push whose overlay is being folded into it (``state`` is
            then ``folding`` and ``as_of``/``generation`` those the fold brings it to).
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
    buckets: int = 0
    stale: int = 0
    base_slot: str = ""
    overlay: int = 0
    folding: str = ""

    def dumps(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def loads(cls, raw: bytes | str | None) -> SlotMeta | None:
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
            known = cls.__dataclass_fields__
            # keys a newer push added are ignored (a reader one release behind still reads)
            return cls(**{k: v for k, v in data.items() if k in known})
        except (orjson.JSONDecodeError, TypeError, AttributeError):
            return None  # a foreign value: treated as an empty slot


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


class ViewShape:
    """What every answer of one served slot shares, derived once from its metadata (not per
    request): columns, types, keys, the recency positions and the served day."""

    __slots__ = (
        "as_of",
        "columns",
        "day",
        "dtypes",
        "generation",
        "keys",
        "multi",
        "pushed_at",
        "recency",
    )

    def __init__(self, meta: SlotMeta) -> None:
        self.as_of = meta.as_of
        self.generation = meta.generation
        self.columns = list(meta.columns)
        self.dtypes = dict(meta.dtypes)
        self.keys = list(meta.keys)
        self.pushed_at = meta.pushed_at
        self.multi = len(meta.keys) > 1
        self.recency = [meta.columns.index(c) for c in meta.recency if c in meta.columns]
        self.day = epoch_day(meta.as_of)


class RowsView:
    """The rows of a few customers of one generation of a table, read from Redis: what the API
    builds its answers from, with the reads of :class:`~featurestore.online.TableSnapshot`
    (``index``, ``row``, ``row_json``, ``rows_json``, ``rows_at``, ``rows_of``, ``lookup``,
    ``check_features``), so the same body builders serve both stores.
    """

    def __init__(self, meta: SlotMeta | ViewShape, table: str, rows: list[list[Any]],
                 index: dict[str, Any]) -> None:
        shape = meta if isinstance(meta, ViewShape) else ViewShape(meta)
        self.table = table
        self.as_of = shape.as_of
        self.generation = shape.generation
        self.columns = shape.columns  # shared by the slot's views: read only
        self.dtypes = shape.dtypes
        self.keys = shape.keys
        self.index = index
        self.loaded_at = shape.pushed_at
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
    def build(cls, meta: SlotMeta | ViewShape, table: str, ids: list[str],
              values: list[bytes | None]) -> RowsView:
        """The view of the packed values the read script answered for ``ids``.

        Args:
            meta: the served slot's metadata (or its :class:`ViewShape`).
            table: the table.
            ids: the requested customer ids.
            values: one packed value or None (no row) per id.

        Returns:
            The view: ``index`` maps each found id to its row (or span of rows).
        """
        shape = meta if isinstance(meta, ViewShape) else ViewShape(meta)
        multi, recency, day = shape.multi, shape.recency, shape.day
        rows: list[list[Any]] = []
        index: dict[str, Any] = {}
        for cid, raw in zip(ids, values):
            if raw is None or cid in index:
                continue
            got = unpack(raw, multi, recency, day)
            index[cid] = (len(rows), len(rows) + len(got)) if multi else len(rows)
            rows.extend(got)
        return cls(shape, table, rows, index)
