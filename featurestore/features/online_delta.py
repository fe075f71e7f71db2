"""The handover to a shared online store: per table, the rows of the latest as-of date whose
value may have changed since the day before and the day before that.

A web-log table's row of customer c at as-of D differs from its row at D - 1 only when c has
an event on D (running totals, lifetime values, the last dates recency is computed from) or on
D - w for a window w of the table (the day leaving that window). Recency is served as
``as_of - last date`` and the online store keeps the date, so nothing else moves. The
customers with a counted hit on a day are the day's aggregates (``_daily/customer``, one row
per customer active that day), so the set is read from at most ``2 x (1 + windows)`` day
files: it grows with the customers active in those days, never with the history.

The set covers both D - 1 -> D and D - 2 -> D (a push that failed yesterday brings the online
store from D - 2); its rows carry a flag ``_near``: the customer is active on D or a day leaving a
window at D (D - w), the part that may have changed since D - 1, all a push from D - 1 writes
(``featurestore.online.redis_push``: the day's overlay). The as-of task that builds D writes the rows of the
set, already in memory (:func:`write_delta`, published like a partition); the commit records
which generations of D, D - 1 and D - 2 they were taken against (:func:`commit_deltas`, after
the generations, before the materialization record). A crash before the record leaves an older
record that names another generation: the push then diffs or rewrites instead.

Only tables whose every feature follows the rule above get a delta: SPEC §3 features of the
web-log source (count, sum and distinct over windows, recency). A table with a SPEC §3a
feature (an expression may read a recency value, which moves every day) gets none and the push
falls back to its difference.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import layout
from ..storage import Store
from ._io import write_arrow
from .definitions import FeatureRepo, is_extended
from .strings import descents, sorted_members

__all__ = ["DELTA_ROOT", "DELTA_RECORD", "delta_windows", "delta_days", "candidates",
           "write_delta", "commit_deltas", "delta_name", "NEAR", "sorted_union"]

DELTA_ROOT = layout.ONLINE_DELTA
DELTA_RECORD = layout.ONLINE_DELTA_RECORD
#: The delta's flag column: the row may have changed since D - 1 (not only since D - 2).
NEAR = "_near"


def delta_windows(repo: FeatureRepo, table: str) -> list[int] | None:
    """The window lengths of ``table`` when it can have a delta (see the module docstring),
    else None.

    Args:
        repo: the feature repository.
        table: a table of the repository.

    Returns:
        The distinct window lengths (empty: no windowed feature), or None.
    """
    if table not in repo.tables_for("weblog"):
        return None
    feats = repo.tables[table].features.values()
    if any(is_extended(f) for f in feats):
        return None
    return sorted({f.window_days for f in feats if f.window_days})


def delta_days(as_of: dt.date, windows: list[int], back: tuple[int, ...] = (0, 1)
               ) -> list[dt.date]:
    """The days whose active customers may have a changed row between D - 2 and D: D and
    D - 1 and, per window w, D - w and D - 1 - w (``back=(0,)``: between D - 1 and D, only D
    and D - w)."""
    return sorted({as_of - dt.timedelta(b + w) for b in back for w in (0, *windows)})


def candidates(store: Store, days: list[dt.date]) -> pa.Array:
    """The distinct customer ids with a counted hit on any of ``days`` (their daily
    aggregates' ``customer_id`` column only; a day without a partition has none), sorted
    (:func:`write_delta` then merges them with a table's sorted ids instead of hashing)."""
    import pyarrow.parquet as pq

    chunks = []
    for day in days:
        path = store.path(layout.DAILY_CUSTOMER, f"event_date={day.isoformat()}",
                          "part-0.parquet")
        try:
            col = pq.read_table(path, columns=["customer_id"], filesystem=store.fs)
        except FileNotFoundError:
            continue
        chunks.append(col.column(0).combine_chunks().cast(pa.string()))
    if not chunks:
        return pa.array([], pa.string())
    if len(chunks) == 1 and not descents(chunks[0]):  # one day's ids: sorted, distinct
        return chunks[0]
    ids = pc.unique(pa.chunked_array(chunks, type=pa.string()))
    return ids.take(pc.sort_indices(ids))


def sorted_union(near: pa.Array, far: pa.Array) -> pa.Array:
    """The distinct ids of two :func:`candidates` answers, sorted (as each of them is).

    Args:
        near: sorted distinct ids.
        far: sorted distinct ids.

    Returns:
        Their union, sorted.
    """
    if not len(far):
        return near
    ids = pc.unique(pa.chunked_array([near, far], pa.string()).combine_chunks())
    return ids.take(pc.sort_indices(ids))


def delta_name(as_of: str) -> str:
    """The file name of the delta of ``as_of`` (under ``DELTA_ROOT/<table>``)."""
    return f"as_of={as_of}.parquet"


def write_delta(store: Store, table: str, as_of: dt.date | str, out: pa.Table,
                ids: pa.Array, near: pa.Array | None = None, *,
                unique: tuple[str, ...] = ("customer_id",), encoded: bytes | None = None) -> int:
    """Publish the rows of ``out`` (the whole table at ``as_of``) whose customer is in ``ids``,
    and the ids without a row (the online store deletes them).

    Args:
        store: the offline store.
        table: the table.
        as_of: its as-of date.
        out: the table's rows at ``as_of`` as published.
        ids: the customers whose row may have changed since D - 2 (distinct).
        near: the part of ``ids`` whose row may have changed since D - 1 (a column ``_near``
            flags their rows; the ids without a row are listed apart, ``deleted_near``);
            None: not known (a push from D - 1 then writes every row).
        unique: the columns with a distinct value per row (:func:`._io.write_arrow`).
        encoded: ``out`` as the partition's parquet bytes, written with the same ``unique``:
            the delta's bytes when it holds every row and no ``_near`` column.

    Returns:
        The rows written.
    """
    iso = as_of if isinstance(as_of, str) else as_of.isoformat()
    found, hit = _members(out.column("customer_id"), ids.cast(pa.string()))
    every = bool(found.all())
    rows = out if every else out.filter(pa.array(found))
    gone = ids.filter(pa.array(~hit)) if len(ids) else pa.array([], pa.string())
    info = {"as_of": iso, "rows": rows.num_rows, "customers": len(ids),
            "deleted": sorted(gone.cast(pa.string()).to_pylist())}
    if near is not None:
        near = near.cast(pa.string())
        # ``near`` is part of ``ids`` (distinct): of the same length, it is all of them, and
        # every row kept is near (a store's first day: no second merge of 1.3 M rows)
        flags = np.ones(rows.num_rows, dtype=bool) if len(near) == len(ids) else \
            _members(rows.column("customer_id"), near)[0]
        rows = rows.append_column(NEAR, pa.array(flags))
        # the deleted ids among ``near``: a merge of two sorted id lists (issue #27: a set of
        # 500 k Python strings cost the pair table's delta ~0.15 s on a store's first day)
        info["deleted_near"] = sorted(gone.filter(pa.array(_members(gone, near)[0]))
                                      .cast(pa.string()).to_pylist()) if info["deleted"] else []
        encoded = None  # the rows gained a column
    store.write_json(info, DELTA_ROOT, table, f"as_of={iso}.json")
    if every and encoded is not None:
        store.write_bytes(encoded, DELTA_ROOT, table, delta_name(iso))
    else:
        write_arrow(store, rows, DELTA_ROOT, table, delta_name(iso), unique=unique)
    return rows.num_rows


def _members(key: pa.ChunkedArray | pa.Array, ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(per row, whether its customer is in ``ids``; per id, whether some row has it).

    Sorted keys (every table is sorted by customer id) and sorted ids take one merge of the
    strings (:func:`.strings.sorted_members`); a dictionary-typed key is looked up once per
    dictionary value. Anything else is hashed."""
    if isinstance(key, pa.ChunkedArray):
        key = key.combine_chunks() if key.num_chunks != 1 else key.chunk(0)
    if pa.types.is_dictionary(key.type):
        values = key.dictionary.cast(pa.string())
        merged = sorted_members(values, ids)
        indices = key.indices.to_numpy(zero_copy_only=False)
        if merged is not None and not key.null_count:
            found = merged[0][indices]
            used = np.zeros(len(values), dtype=bool)
            used[indices[found]] = True
            return found, sorted_members(ids, values.filter(pa.array(used)))[0]
        key = key.cast(key.type.value_type)
    key = key.cast(pa.string())
    merged = sorted_members(key, ids)
    if merged is not None:
        return merged
    found = pc.is_in(key, value_set=ids).to_numpy(zero_copy_only=False)
    present = pc.unique(key.filter(pa.array(found)))
    return found, pc.is_in(ids, value_set=present).to_numpy(zero_copy_only=False)


def commit_deltas(store: Store, deltas: dict[str, str], first: dt.date | None = None) -> None:
    """Record the deltas this commit published, against the generations just committed, and
    remove the older delta files of those tables (call it after ``commit_generations``).

    Args:
        store: the offline store (lease held).
        deltas: table -> the as-of date (ISO) its delta was written for.
        first: the first event date (no base before it).
    """
    if not deltas:
        return
    from ..generations import read_generations

    gens = read_generations(store)
    try:
        record: dict[str, Any] = store.read_json(DELTA_RECORD)
    except (FileNotFoundError, ValueError):
        record = {}
    for table, iso in deltas.items():
        day = dt.date.fromisoformat(iso)
        bases = {}
        for back in (1, 2):
            base = (day - dt.timedelta(back)).isoformat()
            if first is None or base >= first.isoformat():
                bases[base] = int(gens.get(table, {}).get(base, 0))
        record[table] = {"as_of": iso, "generation": int(gens.get(table, {}).get(iso, 0)),
                         "bases": bases, "near_base": (day - dt.timedelta(1)).isoformat()}
    store.write_json(record, DELTA_RECORD)
    for table, iso in deltas.items():  # older deltas are never read again
        for name in store.listdir(DELTA_ROOT, table):
            if name.startswith("as_of=") and not name.startswith(f"as_of={iso}."):
                store.remove(DELTA_ROOT, table, name)
