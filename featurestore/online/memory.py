"""Embedded online store: the latest as-of of each feature table in memory, swapped atomically.

A :class:`TableSnapshot` holds one ``as_of`` partition as columnar numpy arrays plus a dict
``customer_id -> row`` (for ``customer_product_features``: ``customer_id -> (start, stop)`` over
rows sorted most viewed first). A lookup is one dict get and a few array reads; memory stays near
the decoded column size (no per-row Python objects besides the index keys).

:class:`OnlineStore` holds one reference to the current :class:`OnlineSnapshot`. ``refresh()``
builds a new snapshot off to the side and replaces that reference in one assignment, so a request
that reads ``online.snapshot`` once sees exactly one snapshot. Older as-of dates are read from
parquet on demand through a small LRU cache. This module never imports the API.

Each table snapshot carries the partition's committed generation (:mod:`.generations`), read
*before* its files: a refresh reloads the latest as-of when its generation changes (a rewrite,
not only a newer date) and drops cached older as-of dates whose generation changed, so a
rewritten partition is served from the next poll on. Because the generation is read first, a
snapshot labelled g holds g's files or newer ones (a rewrite published but not yet committed),
never older ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from .._exceptions import InvalidInputError, NotFoundError, clip
from ..generations import read_generations
from ..layout import is_published
from ..storage import Store
from .poller import Poller

__all__ = ["TableSnapshot", "OnlineSnapshot", "OnlineStore", "SERVED_TABLES", "LoadPlan",
           "plan_load", "read_partition", "snapshot_of", "load_table", "plan_refresh",
           "JSON_CACHE_ROWS", "PRODUCT_ORDER"]

log = logging.getLogger(__name__)

#: Tables the online store serves; the first is the per-customer feature table.
SERVED_TABLES = ("customer_features", "customer_product_features")
#: Most rows per table snapshot whose JSON is kept (:meth:`TableSnapshot.row_json`): about
#: 300 bytes each, so at most ~40 MB per table however many customers it holds.
JSON_CACHE_ROWS = 100_000
#: Sort order of ``customer_product_features`` rows within a customer: most viewed first.
PRODUCT_ORDER = (("product_views_30d", False), ("product_views_7d", False), ("product_id", True))


def checked_features(table: str, columns: list[str], dtypes: dict[str, Any],
                     features: list[str] | None) -> list[str]:
    """The features a request asks of a served table (all of them when it names none).

    Args:
        table: the table's name, for the message.
        columns: its feature columns, in order.
        dtypes: its feature names (keys) with their types.
        features: the requested names, or None.

    Returns:
        The names to answer.

    Raises:
        NotFoundError: naming the unknown ones (client input clipped) and the available ones.
    """
    if not features:
        return list(columns)
    unknown = [f for f in features if f not in dtypes]
    if unknown:
        raise NotFoundError(
            f"unknown feature(s) {clip(', '.join(unknown))} in table {table!r}; "
            f"available: {', '.join(columns)}")
    return list(features)


@dataclass
class TableSnapshot:
    """One ``as_of`` partition of one table, columnar, indexed by customer id."""

    table: str
    as_of: str
    columns: list[str]  # feature columns (customer_id excluded), in file order
    dtypes: dict[str, str]
    arrays: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]  # column -> True where null (only columns that have nulls)
    labels: dict[str, np.ndarray]  # string column -> distinct values; arrays hold int32 codes
    index: dict[str, Any]  # customer_id -> row (int) or (start, stop) for multi-row tables
    rows: int
    nbytes: int
    blocks: list[tuple[list[str], np.ndarray]] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # columns outside the numeric blocks
    loaded_at: float = field(default_factory=time.time)
    generation: int = 0  # committed generation read before the files (0: none recorded)
    keys: list[str] = field(default_factory=lambda: ["customer_id"])  # entity keys
    # row -> the JSON of its full feature dict, filled on first read (see row_json)
    _json: dict[int, bytes] = field(default_factory=dict, repr=False)

    def _value(self, name: str, i: int) -> Any:
        mask = self.masks.get(name)
        if mask is not None and mask[i]:
            return None
        values = self.arrays[name]
        labels = self.labels.get(name)
        if labels is not None:  # dictionary-encoded string column
            return labels[values[i]]
        value = values[i]
        return value.item() if isinstance(value, np.generic) else value  # lists as they are

    def row(self, i: int, features: list[str] | None = None) -> dict[str, Any]:
        """Row ``i`` as ``{feature: python value}`` (int, float, str or None).

        Numeric columns live in row-major blocks (the per-column arrays are views into them),
        so one ``tolist()`` converts a whole row: a lookup is a dict get plus a few array reads.
        """
        out: dict[str, Any] = {}
        for names, block in self.blocks:
            out.update(zip(names, block[i].tolist()))
        for name in self.others:
            out[name] = self._value(name, i)
        for name, mask in self.masks.items():
            if mask[i]:
                out[name] = None
        return {name: out[name] for name in (features or self.columns)}

    def row_json(self, i: int) -> bytes:
        """Row ``i`` with every feature, as the JSON of :meth:`row` (``{feature: value}``).

        Serialized on the first read and kept (up to :data:`JSON_CACHE_ROWS` rows per
        snapshot, so memory follows the customers actually requested, not the table size): a
        repeated lookup is one dict get, no dict building or encoding.

        Args:
            i: the row number (a value of :attr:`index`).

        Returns:
            UTF-8 JSON bytes.
        """
        blob = self._json.get(i)
        if blob is None:
            blob = orjson.dumps(self.row(i))
            if len(self._json) < JSON_CACHE_ROWS:  # a full cache stops growing
                self._json[i] = blob
        return blob

    def rows_json(self, rows: list[int]) -> list[bytes]:
        """:meth:`row_json` of several rows; the rows not yet serialized are read with one
        gather per column (the batch path).

        Args:
            rows: row numbers.

        Returns:
            One JSON object (bytes) per row, in order.
        """
        cache = self._json
        out = [cache.get(i) for i in rows]
        missing = [i for i, blob in zip(rows, out) if blob is None]
        if not missing:
            return out  # type: ignore[return-value]
        fresh = {i: orjson.dumps(row)
                 for i, row in zip(missing, self.rows_at(missing, self.columns))}
        room = JSON_CACHE_ROWS - len(cache)
        if room > 0:
            cache.update(fresh if len(fresh) <= room else dict(list(fresh.items())[:room]))
        return [blob if blob is not None else fresh[i] for i, blob in zip(rows, out)]

    def column_values(self, name: str, rows: np.ndarray) -> list[Any]:
        """Python values of one column at ``rows`` (vectorised gather, nulls as None)."""
        values = self.arrays[name][rows]
        labels = self.labels.get(name)
        out = labels[values].tolist() if labels is not None else values.tolist()
        mask = self.masks.get(name)
        if mask is not None:
            for k in np.flatnonzero(mask[rows]).tolist():
                out[k] = None
        return out

    def rows_at(self, rows: list[int], features: list[str]) -> list[dict[str, Any]]:
        """Rows as dicts, one gather per column: the batch path."""
        if not rows:
            return []
        idx = np.asarray(rows, dtype=np.int64)
        columns = [self.column_values(name, idx) for name in features]
        return [dict(zip(features, values)) for values in zip(*columns)]

    def get(self, customer_id: str, features: list[str] | None = None) -> dict[str, Any] | None:
        """Features of one customer, or None when the customer has no row."""
        i = self.index.get(customer_id)
        if i is None or isinstance(i, tuple):
            return None if i is None else self.rows_of(customer_id, features=features)[0]
        return self.row(i, features)

    def rows_of(self, customer_id: str, top: int | None = None,
                features: list[str] | None = None) -> list[dict[str, Any]]:
        """All rows of a customer (multi-row tables), in stored order, at most ``top``."""
        span = self.index.get(customer_id)
        if span is None:
            return []
        start, stop = span if isinstance(span, tuple) else (span, span + 1)
        if top is not None:
            stop = min(stop, start + top)
        return [self.row(i, features) for i in range(start, stop)]

    @property
    def features(self) -> list[str]:
        """The feature columns: every column but the entity keys."""
        return [c for c in self.columns if c not in self.keys]

    def lookup(self, keys: dict[str, str], features: list[str]) -> dict[str, Any] | None:
        """The row whose entity keys equal ``keys`` (every key of the table), or None.

        Args:
            keys: key column -> value, e.g. ``{"customer_id": "C1", "product_id": "P2"}``.
            features: the feature columns to return.

        Returns:
            ``{feature: value}`` of the row, or None when no row has those keys.
        """
        span = self.index.get(keys["customer_id"])
        if span is None:
            return None
        if not isinstance(span, tuple):
            return self.row(span, features)
        rest = [k for k in self.keys if k != "customer_id"]
        for i in range(*span):  # a customer's rows: a handful, scanned
            if all(self._value(k, i) == keys[k] for k in rest):
                return self.row(i, features)
        return None

    def check_features(self, features: list[str] | None) -> list[str]:
        """The requested features, validated (:func:`checked_features`)."""
        return checked_features(self.table, self.columns, self.dtypes, features)


@dataclass
class OnlineSnapshot:
    """The latest as-of of every served table, loaded together and swapped as one reference."""

    tables: dict[str, TableSnapshot]
    loaded_at: float = field(default_factory=time.time)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tables.values())


def _column_arrays(col: pa.ChunkedArray
                   ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Arrow column -> (values, null mask or None, labels or None).

    Integers with nulls keep int64 values plus a mask; strings are dictionary-encoded (int32
    codes + one Python string per distinct value) so repeated ids cost 4 bytes a row.
    """
    mask = None
    if col.null_count:
        mask = col.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            col = col.fill_null(0)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        encoded = col.combine_chunks().dictionary_encode()
        codes = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int32)
        labels = np.asarray(encoded.dictionary.to_pylist() or [""], dtype=object)
        return codes, mask, labels
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        # top_k (SPEC §3a): one Python list per row, served as a JSON array
        values = np.empty(len(col), dtype=object)
        for i, v in enumerate(col.to_pylist()):
            values[i] = v
        return values, mask, None
    values = col.to_numpy()
    if values.dtype.kind == "f" and np.isnan(values).any():
        # NaN is not JSON: serve it as null, like a missing value
        nan = np.isnan(values)
        mask = nan if mask is None else (mask | nan)
        values = np.where(nan, 0.0, values)
    return values, mask, None


@dataclass(frozen=True)
class LoadPlan:
    """What loading one partition into memory reads (pure: see :func:`plan_load`).

    Attributes:
        table: the table.
        as_of: the partition's date.
        files: the published parquet files' paths, in listing order.
        keys: the table's entity keys.
        order: with more than one key, the sort within a customer (column, ascending);
            empty for a single key.
    """

    table: str
    as_of: str
    files: tuple[str, ...]
    keys: tuple[str, ...]
    order: tuple[tuple[str, bool], ...]


def plan_load(table: str, as_of: str, folder: str, names: list[str],
              keys: list[str] | None = None) -> LoadPlan:
    """Plan loading ``<table>/as_of=<as_of>`` from a listing of its folder, no I/O.

    Args:
        table: a served table name.
        as_of: the partition's date, ``YYYY-MM-DD``.
        folder: the partition's path (filesystem path, no protocol).
        names: the names listed in it.
        keys: the table's entity keys (default ``customer_id``, and ``customer_id,
            product_id`` for ``customer_product_features``).

    Returns:
        The plan.

    Raises:
        NotFoundError: no published parquet file in the listing.
    """
    if keys is None:
        keys = ["customer_id", "product_id"] if table == "customer_product_features" \
            else ["customer_id"]
    files = tuple(f"{folder}/{f}" for f in names if is_published(f))
    if not files:
        raise NotFoundError(f"table {table!r} has no partition as_of={as_of}")
    order: tuple[tuple[str, bool], ...] = ()
    if len(keys) > 1:
        order = PRODUCT_ORDER if table == "customer_product_features" else tuple(
            (k, True) for k in keys[1:])
    return LoadPlan(table, as_of, files, tuple(keys), tuple(order))


def load_table(store: Store, table: str, as_of: str, generation: int = 0,
               keys: list[str] | None = None) -> TableSnapshot:
    """Read ``<table>/as_of=<as_of>`` into a :class:`TableSnapshot`: plan
    (:func:`plan_load`), read (:func:`read_partition`), build (:func:`snapshot_of`); the
    commit is the caller's one reference swap (:meth:`OnlineStore.refresh`).

    Args:
        store: the offline store.
        table: a served table name.
        as_of: the partition's date, ``YYYY-MM-DD``.
        generation: the partition's committed generation, read by the caller before this
            call (so the label is never newer than the files).
        keys: the table's entity keys (default ``customer_id``, and ``customer_id,
            product_id`` for ``customer_product_features``). A table with more than one key
            is indexed by ``customer_id`` to the span of its rows.

    Returns:
        The columnar snapshot of the partition.
    """
    plan = plan_load(table, as_of, store.path(table, f"as_of={as_of}"),
                     store.listdir(table, f"as_of={as_of}"), keys)
    return snapshot_of(plan, read_partition(store, plan), generation)


def read_partition(store: Store, plan: LoadPlan) -> pa.Table:
    """The planned files as one Arrow table, without ``as_of``.

    Args:
        store: the offline store.
        plan: the plan.

    Returns:
        The rows.
    """
    arrow = pa.concat_tables(
        [pq.read_table(f, filesystem=store.fs) for f in plan.files]
    ) if len(plan.files) > 1 else pq.read_table(plan.files[0], filesystem=store.fs)
    return arrow.drop_columns([c for c in arrow.column_names if c == "as_of"])


def snapshot_of(plan: LoadPlan, arrow: pa.Table, generation: int = 0) -> TableSnapshot:
    """The columnar in-memory snapshot of a partition's rows.

    Args:
        plan: the load plan (table, as-of, keys, sort).
        arrow: the rows (:func:`read_partition`).
        generation: the partition's committed generation.

    Returns:
        The snapshot.
    """
    table, as_of, keys = plan.table, plan.as_of, list(plan.keys)
    multi = len(keys) > 1
    if multi:
        arrow = arrow.sort_by([("customer_id", "ascending")] + [
            (c, "ascending" if asc else "descending") for c, asc in plan.order])
    ids = arrow.column("customer_id").to_pylist()
    columns = [c for c in arrow.column_names if c != "customer_id"]
    arrays: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}
    for name in columns:
        values, mask, distinct = _column_arrays(arrow.column(name))
        arrays[name] = values
        if mask is not None:
            masks[name] = mask
        if distinct is not None:
            labels[name] = distinct
        dtypes[name] = str(arrow.schema.field(name).type)
    index: dict[str, Any] = {}
    if multi:
        for i, cid in enumerate(ids):
            span = index.get(cid)
            index[cid] = (i, i + 1) if span is None else (span[0], i + 1)
    else:
        index = {cid: i for i, cid in enumerate(ids) if cid is not None}
    blocks = []
    for kind in (np.int64, np.float64):
        names = [c for c in columns if c not in labels and arrays[c].dtype == kind]
        if names:
            dtype = _narrow(kind, [arrays[c] for c in names])
            block = np.empty((len(ids), len(names)), dtype=dtype)
            for j, name in enumerate(names):
                block[:, j] = arrays[name]
                arrays[name] = block[:, j]  # a view: no second copy of the column
            blocks.append((names, block))
    in_blocks = {n for names, _ in blocks for n in names}
    others = [c for c in columns if c not in in_blocks]
    nbytes = _measure(arrays, masks, labels, index)
    return TableSnapshot(table, as_of, columns, dtypes, arrays, masks, labels, index, len(ids),
                         nbytes, blocks, others, generation=generation, keys=list(keys))


def plan_refresh(served: dict[str, tuple[str, int]], latest: dict[str, str | None],
                 generations: dict[str, dict[str, int]]) -> list[tuple[str, str, int]]:
    """Which tables a refresh reloads, no I/O: those whose latest as-of is newer than the
    served one, or the same date with another committed generation (a rewrite).

    Args:
        served: table -> (as-of, generation) of its snapshot now served.
        latest: table -> its latest published as-of (None: no partition), in served order.
        generations: the committed generations (read before any file).

    Returns:
        (table, as-of, generation) to load, in table order.
    """
    loads = []
    for table, as_of in latest.items():
        if as_of is None:
            continue
        generation = generations.get(table, {}).get(as_of, 0)
        old = served.get(table)
        if old is None or as_of > old[0] or (as_of == old[0] and generation != old[1]):
            loads.append((table, as_of, generation))
    return loads


def _narrow(kind: type, columns: list[np.ndarray]) -> type:
    """Smallest integer dtype holding every value (counts fit int16/int32): same Python ints
    out of ``tolist()``, a quarter of the memory. Floats stay float64 (exact values)."""
    if kind is not np.int64 or not columns or not len(columns[0]):
        return kind
    low = min(int(c.min()) for c in columns)
    high = max(int(c.max()) for c in columns)
    for small in (np.int8, np.int16, np.int32):
        info = np.iinfo(small)
        if info.min <= low and high <= info.max:
            return small
    return kind


def _measure(arrays: dict[str, np.ndarray], masks: dict[str, np.ndarray],
             labels: dict[str, np.ndarray], index: dict[str, Any]) -> int:
    """Resident bytes: numeric buffers, distinct strings, and the index (dict + keys + spans)."""
    total = sum(a.nbytes for a in arrays.values()) + sum(m.nbytes for m in masks.values())
    # (a block column view reports its own nbytes, so the blocks are counted exactly once)
    for distinct in labels.values():
        total += distinct.nbytes + sum(sys.getsizeof(v) for v in distinct)
    total += sys.getsizeof(index) + sum(sys.getsizeof(k) for k in index)
    total += sum(sys.getsizeof(v) for v in index.values() if isinstance(v, tuple))
    return total


class OnlineStore:
    """The in-memory online store (``online_store: memory``): the current snapshot reference,
    its background refresher and the older-as-of cache."""

    def __init__(self, store: Store, *, poll_seconds: float = 30.0,
                 tables: tuple[str, ...] = SERVED_TABLES, cache_size: int = 8,
                 keys: dict[str, list[str]] | None = None) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.tables = tuple(tables)
        self.keys = dict(keys or {})  # table -> entity keys (default: see load_table)
        self.snapshot: OnlineSnapshot | None = None
        self.last_error: str | None = None
        self._cache: OrderedDict[tuple[str, str], TableSnapshot] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()  # one refresh at a time; readers never take it
        self._cache_lock = threading.Lock()  # older-as-of LRU only (not the hot path)
        self._poller = Poller(
            "online-refresh", self._poll_once,
            lambda: self.poll_seconds if self.snapshot else min(self.poll_seconds, 1.0))

    # -- snapshot lifecycle -----------------------------------------------------------------
    def latest_as_of(self, table: str) -> str | None:
        """The newest ``as_of`` partition holding a published parquet file, or None.

        Checks partitions newest first: two listings per poll, not one per partition.
        """
        names = [n for n in self.store.listdir(table) if n.startswith("as_of=")]
        for name in sorted(names, reverse=True):
            if any(is_published(f)
                   for f in self.store.listdir(table, name)):
                return name.split("=", 1)[1]
        return None

    def refresh(self) -> bool:
        """Reload every table whose latest as-of is newer than the served one or was rewritten
        (its generation changed), and swap once; drop cached older as-of dates that were
        rewritten.

        Returns:
            True if the snapshot reference was swapped.
        """
        with self._lock:
            # read before any file: a partition loaded below is at least this generation
            generations = read_generations(self.store)
            current = self.snapshot
            tables = dict(current.tables) if current else {}
            loads = plan_refresh({t: (s.as_of, s.generation) for t, s in tables.items()},
                                 {t: self.latest_as_of(t) for t in self.tables}, generations)
            for table, latest, generation in loads:
                tables[table] = load_table(self.store, table, latest, generation,
                                           self.keys.get(table))
            changed = bool(loads)
            self._drop_rewritten(generations)
            if changed or (current is None and tables):
                self.snapshot = OnlineSnapshot(tables)  # the one atomic swap
                log.info("online snapshot: %s", {t: f"{s.as_of} (generation {s.generation})"
                                                 for t, s in tables.items()})
                return True
            return False

    def _drop_rewritten(self, generations: dict[str, dict[str, int]]) -> None:
        """Forget cached older as-of dates whose committed generation changed: the next
        request for one reads the rewritten partition (requests holding the old one finish
        with it)."""
        with self._cache_lock:
            for key, cached in list(self._cache.items()):
                table, as_of = key
                if generations.get(table, {}).get(as_of, 0) != cached.generation:
                    del self._cache[key]

    def _poll_once(self) -> None:
        try:
            self.refresh()
            self.last_error = None
        except Exception as exc:  # keep serving the old snapshot; report on /ready
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("snapshot refresh failed")

    def start(self) -> None:
        """Load the first snapshot and keep polling, in a daemon thread."""
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()

    # -- reads -------------------------------------------------------------------------------
    #: Rows live in this process: a reader may take ``snapshot`` directly (the API's hot path).
    in_process = True

    def view(self, table: str, ids: list[str] | None = None) -> TableSnapshot:
        """The latest as-of of ``table``, holding (at least) the rows of the customers ``ids``:
        here the whole snapshot.

        Args:
            table: a served table.
            ids: the customer ids the caller will look up (unused: every row is in memory).

        Returns:
            The snapshot.

        Raises:
            NotFoundError: no such table, or no partition loaded yet.
        """
        return self.table(table)

    async def aview(self, table: str, ids: list[str] | None = None) -> TableSnapshot:
        """:meth:`view` for the event loop (no I/O here)."""
        return self.table(table)

    async def served(self) -> OnlineSnapshot | None:
        """What ``/ready`` reports: the served snapshot of every table, or None (see
        :attr:`last_error`)."""
        return self.snapshot

    def table(self, table: str, as_of: str | None = None,
              snapshot: OnlineSnapshot | None = None) -> TableSnapshot:
        """The snapshot of ``table`` at ``as_of`` (latest when None): memory, else parquet (LRU)."""
        snapshot = snapshot or self.snapshot
        current = snapshot.tables.get(table) if snapshot else None
        if as_of is None or (current is not None and current.as_of == as_of):
            if current is None:
                if table not in self.tables:
                    raise NotFoundError(f"no feature table {clip(table)} is served; served: "
                                        f"{', '.join(self.tables)}")
                raise NotFoundError(
                    f"table {table!r} has no as_of partition loaded yet; "
                    "ingest data first (featurestore ingest) or backfill (featurestore "
                    "backfill)")
            return current
        try:
            dt.date.fromisoformat(as_of)
        except ValueError:
            # malformed (422), unlike a well-formed date the store has no partition of (404)
            raise InvalidInputError(f"as_of {clip(as_of)} is not a date; use YYYY-MM-DD, e.g. "
                                    "2026-03-02") from None
        key = (table, as_of)
        with self._cache_lock:  # requests run in a thread pool: guard the OrderedDict
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        if as_of not in self.store.partitions(table, "as_of"):
            dates = self.store.partitions(table, "as_of")
            span = f"{dates[0]} .. {dates[-1]}" if dates else "none"
            raise NotFoundError(f"no {clip(table)} features as of {as_of}; available as-of dates: {span}")
        generation = read_generations(self.store).get(table, {}).get(as_of, 0)  # before the files
        loaded = load_table(self.store, table, as_of, generation, self.keys.get(table))
        with self._cache_lock:
            self._cache[key] = loaded
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return loaded
