"""The per-customer running state behind ``customer_features``: one partition per as-of date.

``_state/customer/as_of=D/part-0.arrow`` (Arrow IPC) has a row for every customer with a
counted hit on or before D (the row set of the customer tables) and, per customer:

* ``last_<filter>``: the latest event date (proleptic ordinal) with a hit matching a recency
  filter, 0 when there is none;
* ``cum_<column>``: the running total, from the first event date to D, of every daily
  aggregate column (``hits_*``, ``pairs_*``, ``sum_*``);
* ``days_<filter>``: the running count of days with a hit matching each hit filter.

A window of w days ending on D is then ``cum(D) - cum(D - w)``: two state partitions instead of
w daily ones, so a new day costs the same however long the history and whatever the window.

Rows are in order of first appearance (ties by customer id), never reordered: the customers of
the state of D - w are the first rows of the state of D, so an older state lines up with a
newer one by position, without looking a single id up. The state of D is the state of D-1 plus
the daily aggregates of D, always computed in that order from the first event date (or from a
stored partition that was), so it is the same bits on every run: a resumed or repeated run
writes identical tables. Float totals (revenue) give window sums within a few ulps of the total
of the history; an empty window is exactly 0.

Stored as a delta chain (issue #18, item 2), so a day writes what changed, not every customer
ever seen: the file of D is either *full* (every row; the format of older stores, which are
read as they are) or a *delta* holding only the rows D changed (the customers active on D,
new ones last) with their positions and new values, and naming the full state it chains from
(its *base*). A state is written full when it has no base, when its base is
:data:`MAX_CHAIN_DAYS` days old, or when the chain's rows would exceed
:data:`COMPACT_FRACTION` of the state's rows; the rule depends only on the chain, so every run
makes the same choice. Reading state(D) maps its base and applies at most
:data:`MAX_CHAIN_DAYS` small deltas; a state a window back is read a column at a time, as the
snapshot asks for it (:class:`_ChainColumns`), so a worker never holds it whole.

What a day costs follows its active customers (issue #18, item 3): a state keeps its rows' id
order (``id_order``: positions in customer-id order, stored with a full state and merged with
the chain's new customers on reading), so the day's customers are found by a binary search
over it (:func:`_lookup`, k log N) instead of hashing every id, and the advance keeps the
earlier state's columns under an overlay of the changed rows (:class:`_Overlay`) instead of
copying every column.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import layout
from ..storage import Store
from ._io import large_strings, read_ipc, write_ipc
from .daily import DailyPlan
from .strings import descents, search_sorted

__all__ = ["COMPACT_FRACTION", "CUSTOMER_STATE", "MAX_CHAIN_DAYS", "STATE_FORMAT",
           "CustomerState", "daily_columns", "id_ranks", "state_columns", "load_state",
           "state_exists",
           "stored_rows", "write_state"]

CUSTOMER_STATE = layout.CUSTOMER_STATE
#: Bumped when the layout changes, so older stored states are rebuilt rather than misread
#: (2: rows in order of first appearance, ``last_*`` 0 for none; 3: Arrow IPC, not parquet).
#: (Delta chains keep 3: a full file is the format-3 file, so older stores' states are read as
#: bases, with no rebuild.)
STATE_FORMAT = 3
#: The longest chain of deltas after a full state: bounds the reads of state(D).
MAX_CHAIN_DAYS = 30
#: A full state is written instead of a delta once the chain's rows would exceed this fraction
#: of the state's rows (a day that touches most customers costs a full write anyway).
COMPACT_FRACTION = 0.5
_KIND, _BASE, _ROWS, _CHAIN = b"fs_state_kind", b"fs_state_base", b"fs_state_rows", b"fs_chain"
#: The column of a full state file holding its rows' id order (absent in older files: sorted
#: on reading instead).
_ORDER = "id_order"


#: Sorted runs of needles :func:`_bisect` still merges (each run restarts one search).
_RUNS = 8


def _bisect(ids: pa.Array, order: np.ndarray, needles: pa.Array) -> np.ndarray:
    """Per needle, how many of ``ids`` are less than it (its insertion point in id order).

    Args:
        ids: the ids (large_string).
        order: positions of ``ids`` in id order.
        needles: the ids to place (large_string).

    Returns:
        int64 ranks in ``[0, len(ids)]`` (Arrow's byte order, the order of ``sort_indices``),
        never a hash of all ids. Needles in a few sorted runs (daily rows, pair windows) go
        to :func:`.strings.search_sorted`, a merge over the raw bytes; others to a
        vectorised binary search, k log N compares of gathered strings.
    """
    if len(needles) and not (ids.null_count or needles.null_count) \
            and descents(needles) <= _RUNS + len(needles) // 64:
        return search_sorted(ids, order, needles)  # sorted runs: a merge over the bytes
    lo = np.zeros(len(needles), dtype="int64")
    hi = np.full(len(needles), len(order), dtype="int64")
    live = np.flatnonzero(lo < hi)
    while len(live):
        mid = (lo[live] + hi[live]) // 2
        less = pc.less(ids.take(pa.array(order[mid])), needles.take(pa.array(live)))
        less = less.to_numpy(zero_copy_only=False)
        lo[live[less]] = mid[less] + 1
        hi[live[~less]] = mid[~less]
        live = live[lo[live] < hi[live]]
    return lo


def _lookup(ids: pa.Array, order: np.ndarray, needles: pa.Array) -> np.ndarray:
    """Positions of ``needles`` in ``ids`` (-1: absent), by :func:`_bisect` over ``order``."""
    ranks = _bisect(ids, order, needles)
    out = np.full(len(needles), -1, dtype="int64")
    inside = np.flatnonzero(ranks < len(order))
    if len(inside):
        at = order[ranks[inside]]
        same = pc.equal(ids.take(pa.array(at)), needles.take(pa.array(inside)))
        same = same.to_numpy(zero_copy_only=False)
        out[inside[same]] = at[same]
    return out


def _merged_order(ids: pa.Array, order: np.ndarray, fresh: pa.Array,
                  first: int) -> np.ndarray:
    """The id order once ``fresh`` (new ids, at positions ``first``, ``first + 1``, ...) are
    appended to ``ids`` (whose id order is ``order``): one insert, no sort of the old ids."""
    if not len(fresh):
        return order
    by_id = pc.sort_indices(fresh).to_numpy()
    at = _bisect(ids, order, fresh)
    return np.insert(order, at[by_id], first + by_id.astype("int64"))


def _numbers(table: pa.Table, name: str) -> np.ndarray:
    """A numeric column without nulls as numpy."""
    return table.column(name).to_numpy()


def _take_rows(columns: Mapping, name: str, at: np.ndarray) -> np.ndarray:
    """``columns[name]`` at positions ``at`` (all inside), without building the column when
    the mapping can take rows itself."""
    if isinstance(columns, (_Overlay, _ChainColumns)):
        return columns.take(name, at)
    return np.asarray(columns[name])[at]


def daily_columns(plan: DailyPlan) -> list[str]:
    """The daily customer aggregate columns the plan produces, in a fixed order."""
    return ([f"hits_{f.key}" for f in plan.hit_filters]
            + [f"pairs_{f.key}" for f in plan.pair_filters]
            + [f"sum_{fld}_{f.key}" for fld, f in plan.sums])


def state_columns(plan: DailyPlan) -> list[str]:
    return ([f"last_{f.key}" for f in plan.recency_filters]
            + [f"cum_{c}" for c in daily_columns(plan)]
            + [f"days_{f.key}" for f in plan.hit_filters])


def _dtype(column: str) -> str:
    return "float64" if column.startswith("cum_sum_price") else "int64"


@dataclasses.dataclass
class CustomerState:
    """Customer ids (Arrow strings, in order of first appearance) and one numpy column per
    state column, row-aligned with them.

    How it is stored (see the module docstring): ``changed`` are the rows its day changed
    (sorted positions; None: unknown, store it full), ``base`` the date of the full state its
    chain rests on (None: none yet) and ``chain_rows`` the rows of the deltas since that base,
    this state's included; ``full`` says it is (to be) stored whole. ``order``: the rows'
    positions in customer-id order (None: not known yet, sorted when first asked for)."""

    ids: pa.Array
    columns: Mapping[str, np.ndarray]
    changed: np.ndarray | None = None
    base: dt.date | None = None
    chain_rows: int = 0
    full: bool = True
    order: np.ndarray | None = None

    @classmethod
    def empty(cls, plan: DailyPlan) -> CustomerState:
        return cls(pa.array([], pa.large_string()),
                   {c: np.zeros(0, dtype=_dtype(c)) for c in state_columns(plan)},
                   order=np.zeros(0, dtype="int64"))

    def __len__(self) -> int:
        return len(self.ids)

    def id_order(self) -> np.ndarray:
        """The rows' positions in customer-id order (kept with the state; sorted only for a
        state read from an older file)."""
        if self.order is None:
            self.order = pc.sort_indices(self.ids).to_numpy().astype("int64")
        return self.order

    def take(self, column: str, at: np.ndarray) -> np.ndarray:
        """``column`` at positions ``at``; positions past this state's rows (customers that
        came later): 0. Builds nothing whole."""
        out = np.zeros(len(at), dtype=_dtype(column))
        inside = at < len(self)
        if inside.any():
            out[inside] = _take_rows(self.columns, column, at[inside])
        return out

    def advance(self, plan: DailyPlan, day: dt.date,
                daily: pa.Table | pd.DataFrame) -> CustomerState:
        """The state after ``day`` from this one (before it) and the day's customer rows
        (Arrow or pandas; one row per customer active that day, sorted by id). Costs the
        day's customers (a binary search each, see :func:`_lookup`), not the history: the
        columns stay shared with this state under an overlay of the changed rows."""
        if not len(daily):
            return CustomerState(self.ids, self.columns, order=self.order)._chained(
                self, day, np.zeros(0, dtype="int64"))
        if isinstance(daily, pd.DataFrame):
            daily = pa.Table.from_pandas(daily, preserve_index=False)
        day_ids = large_strings(daily["customer_id"])
        order = self.id_order()
        positions = _lookup(self.ids, order, day_ids)
        new = positions < 0
        ids = self.ids
        if new.any():  # customers never seen before: appended, in the day's (id) order
            fresh = day_ids.filter(pa.array(new))
            positions[new] = len(ids) + np.arange(len(fresh))
            order = _merged_order(ids, order, fresh, len(ids))
            ids = pa.concat_arrays([ids, fresh])
        by_position = np.argsort(positions, kind="stable")
        changed = positions[by_position]
        ordinal = day.toordinal()
        values: dict[str, np.ndarray] = {}
        for f in plan.recency_filters:
            name = f"last_{f.key}"
            seen = _numbers(daily, f"hits_{f.key}")[by_position] > 0
            values[name] = np.where(seen, ordinal, self.take(name, changed)).astype("int64")
        for c in daily_columns(plan):
            name = f"cum_{c}"
            values[name] = (self.take(name, changed)
                            + _numbers(daily, c).astype(_dtype(name), copy=False)[by_position])
        for f in plan.hit_filters:
            name = f"days_{f.key}"
            values[name] = (self.take(name, changed)
                            + (_numbers(daily, f"hits_{f.key}")[by_position] > 0))
        columns = _Overlay.over(self, len(ids), changed, values)
        return CustomerState(ids, columns, order=order)._chained(self, day, changed)

    def _chained(self, before: CustomerState, day: dt.date,
                 changed: np.ndarray) -> CustomerState:
        """This state (of ``day``) with how it is stored, chained after ``before`` (the state
        of the day before): a delta of ``changed`` unless the rule asks for a full state."""
        rows = before.chain_rows + len(changed)
        full = (before.base is None or (day - before.base).days >= MAX_CHAIN_DAYS
                or rows > COMPACT_FRACTION * len(self.ids))
        self.changed = changed
        self.base, self.chain_rows, self.full = ((day, 0, True) if full
                                                 else (before.base, rows, False))
        return self

    def lagged(self, older: CustomerState | None, column: str) -> np.ndarray:
        """``column`` of an older state lined up with this one's rows (later customers: 0)."""
        out = np.zeros(len(self.ids), dtype=_dtype(column))
        if older is not None:
            values = older.columns[column]
            out[:len(values)] = values
        return out

    def to_arrow(self) -> pa.Table:
        return pa.table({"customer_id": self.ids, **self.columns})


class _Overlay(Mapping):
    """The columns of a state advanced in memory: an earlier state's columns (``below``, of
    ``below_rows`` rows, shared, never written to) with new values at ``rows`` (sorted
    positions; those past ``below_rows`` are new customers). A column is built whole only
    when asked for (a full state's write, a recency column); a snapshot takes the rows it
    needs (:meth:`take`). Advancing an overlay overlays its base again (never an overlay of
    an overlay), and builds the columns whole once the changed rows pass
    :data:`COMPACT_FRACTION` of the state."""

    def __init__(self, below: Mapping, below_rows: int, rows: np.ndarray,
                 values: dict[str, np.ndarray], size: int) -> None:
        self.below, self.below_rows, self.rows, self.values = below, below_rows, rows, values
        self.size = size

    @classmethod
    def over(cls, state: CustomerState, size: int, changed: np.ndarray,
             values: dict[str, np.ndarray]) -> Mapping:
        """``state``'s columns grown to ``size`` rows with ``values`` at ``changed``."""
        below, below_rows, rows = state.columns, len(state), changed
        if isinstance(below, _Overlay):  # one level: merge the earlier changed rows in
            rows = np.union1d(below.rows, changed)
            merged = {}
            for name, new in values.items():
                column = state.take(name, rows)
                column[np.searchsorted(rows, changed)] = new
                merged[name] = column
            below, below_rows, values = below.below, below.below_rows, merged
        overlay = cls(below, below_rows, rows, values, size)
        if len(rows) > COMPACT_FRACTION * size:  # most rows changed: plain columns
            return {name: overlay[name] for name in values}
        return overlay

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.values:
            raise KeyError(name)
        out = np.zeros(self.size, dtype=_dtype(name))
        if isinstance(self.below, _ChainColumns):  # built in place: one pass, not two
            self.below.fill(name, out)
        else:
            out[:self.below_rows] = self.below[name]
        out[self.rows] = self.values[name]
        return out

    def take(self, name: str, at: np.ndarray) -> np.ndarray:
        out = np.zeros(len(at), dtype=_dtype(name))
        below = at < self.below_rows
        if below.any():
            out[below] = _take_rows(self.below, name, at[below])
        _overwrite(out, at, self.rows, self.values[name])
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def _overwrite(out: np.ndarray, at: np.ndarray, rows: np.ndarray, values) -> None:
    """``out[i] = values[j]`` wherever ``at[i] == rows[j]`` (``rows`` sorted)."""
    if not len(rows) or not len(at):
        return
    j = np.minimum(np.searchsorted(rows, at), len(rows) - 1)
    hit = rows[j] == at
    if hit.any():
        out[hit] = np.asarray(values)[j[hit]]


def _path(day: dt.date) -> tuple[str, str, str]:
    return CUSTOMER_STATE, f"as_of={day.isoformat()}", "part-0.arrow"


def state_exists(store: Store, day: dt.date) -> bool:
    return store.exists(*_path(day))


def write_state(store: Store, state: CustomerState, day: dt.date) -> None:
    """Publish the state of ``day``: whole (with its id order), or only the rows its day
    changed (see the module docstring; ``state.full`` decides).

    Args:
        store: the store.
        state: the state of ``day`` (from :meth:`CustomerState.advance` or :func:`load_state`).
        day: its date.
    """
    if state.full or state.changed is None or state.base is None:
        table = state.to_arrow().append_column(_ORDER, pa.array(state.id_order()))
        meta = {_KIND: b"full"}
    else:
        take = pa.array(state.changed)
        table = pa.table({"customer_id": state.ids.take(take), "position": state.changed,
                          **{c: state.take(c, state.changed) for c in state.columns}})
        meta = {_KIND: b"delta", _BASE: state.base.isoformat().encode(),
                _ROWS: str(len(state.ids)).encode(), _CHAIN: str(state.chain_rows).encode()}
    write_ipc(store, table.replace_schema_metadata(meta), *_path(day))


def stored_rows(store: Store, day: dt.date) -> tuple[str, int]:
    """What the stored state of ``day`` holds: ``("full" | "delta", rows in the file)``."""
    table = read_ipc(store, *_path(day), columns=[])
    meta = table.schema.metadata or {}
    return meta.get(_KIND, b"full").decode(), table.num_rows


class _ChainColumns(Mapping):
    """The columns of a delta state, each built on access from its base (memory-mapped when
    local) and the deltas after it, in order: one column at a time in memory, never the
    whole state; :meth:`take` reads a few rows without building the column."""

    def __init__(self, base: pa.Table, deltas: list[pa.Table], rows: int,
                 names: list[str]) -> None:
        self.base, self.deltas, self.rows, self.names = base, deltas, rows, names
        self.positions = [d.column("position").to_numpy() for d in deltas]

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise KeyError(name)
        if self.rows == self.base.num_rows and not any(len(p) for p in self.positions):
            # quiet days since the base: its mapped column as it is (never written to)
            return self.base.column(name).to_numpy().astype(_dtype(name), copy=False)
        return self.fill(name, np.zeros(self.rows, dtype=_dtype(name)))

    def fill(self, name: str, out: np.ndarray) -> np.ndarray:
        """Write the column into ``out[:rows]`` (zeroed beyond the base's rows)."""
        out[:self.base.num_rows] = self.base.column(name).to_numpy()
        for delta, positions in zip(self.deltas, self.positions, strict=True):
            out[positions] = delta.column(name).to_numpy()
        return out

    def take(self, name: str, at: np.ndarray) -> np.ndarray:
        out = np.zeros(len(at), dtype=_dtype(name))
        inside = at < self.base.num_rows
        if inside.any():
            out[inside] = self.base.column(name).to_numpy()[at[inside]]
        for delta, positions in zip(self.deltas, self.positions, strict=True):
            _overwrite(out, at, positions, delta.column(name).to_numpy())
        return out

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def load_state(store: Store, plan: DailyPlan, day: dt.date, *,
               ids: bool = True) -> CustomerState:
    """The stored state of ``day``; ``ids=False`` skips the id column (enough for a state a
    window back, which lines up by position).

    Args:
        store: the store.
        plan: the daily plan (which columns).
        day: the date of the state.
        ids: also read the customer ids (and their id order).

    Returns:
        The state. A full file's columns are views of the mapped file; a delta's are built
        per column on access from its base and the deltas between.
    """
    columns = state_columns(plan)
    wanted = (["customer_id"] if ids else []) + columns
    table = read_ipc(store, *_path(day))
    meta = table.schema.metadata or {}
    if meta.get(_KIND, b"full") == b"full":
        order = (table.column(_ORDER).to_numpy()
                 if ids and _ORDER in table.column_names else None)
        table = table.select(wanted)
        # views, not copies: a state is never changed in place (advance builds new columns)
        values = {c: table.column(c).to_numpy().astype(_dtype(c), copy=False) for c in columns}
        ids_array = table.column("customer_id").combine_chunks().cast(pa.large_string()) \
            if ids else pa.nulls(table.num_rows, pa.large_string())
        return CustomerState(ids_array, values, base=day, order=order)
    base_day = dt.date.fromisoformat(meta[_BASE].decode())
    rows = int(meta[_ROWS])
    base = read_ipc(store, *_path(base_day))
    base_order = (base.column(_ORDER).to_numpy()
                  if ids and _ORDER in base.column_names else None)
    base = base.select(wanted)
    deltas = [read_ipc(store, *_path(base_day + dt.timedelta(n)))
              for n in range(1, (day - base_day).days)] + [table]
    for n, delta in enumerate(deltas, 1):  # a chain is written whole, day after day
        kind = (delta.schema.metadata or {}).get(_BASE)
        if kind != meta[_BASE]:
            raise ValueError(f"customer state of {base_day + dt.timedelta(n)} is not in the "
                             f"chain of {day} from {base_day}")
    ids_array, order = pa.nulls(rows, pa.large_string()), None
    if ids:
        before = base.num_rows
        base_ids = base.column("customer_id").combine_chunks().cast(pa.large_string())
        parts = []
        for delta in deltas:  # each delta's new customers, appended in position order
            positions = delta.column("position").to_numpy()
            new = positions >= before
            if new.any():
                parts.append(delta.column("customer_id").combine_chunks()
                             .filter(pa.array(new)).cast(pa.large_string()))
                before = int(positions[new].max()) + 1
        if base_order is None:  # an older file: sorted once here
            base_order = pc.sort_indices(base_ids).to_numpy().astype("int64")
        fresh = pa.concat_arrays(parts) if parts else pa.array([], pa.large_string())
        order = _merged_order(base_ids, base_order, fresh, base.num_rows)
        ids_array = pa.concat_arrays([base_ids, *parts])
    return CustomerState(ids_array, _ChainColumns(base, deltas, rows, columns), base=base_day,
                         chain_rows=int(meta[_CHAIN]), full=False,
                         changed=deltas[-1].column("position").to_numpy(), order=order)


def id_ranks(state: CustomerState, ids: pa.Array) -> np.ndarray:
    """The ranks in id order (the row of a snapshot) of ``ids``, all in ``state``.

    Args:
        state: a state with its ids.
        ids: customer ids of the state (large_string).

    Returns:
        int64 ranks, by binary search over the state's id order (k log N).
    """
    return _bisect(state.ids, state.id_order(), ids)
