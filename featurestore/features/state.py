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

__all__ = ["COMPACT_FRACTION", "CUSTOMER_STATE", "MAX_CHAIN_DAYS", "STATE_FORMAT",
           "CustomerState", "daily_columns", "state_columns", "load_state", "state_exists",
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
    this state's included; ``full`` says it is (to be) stored whole."""

    ids: pa.Array
    columns: Mapping[str, np.ndarray]
    changed: np.ndarray | None = None
    base: dt.date | None = None
    chain_rows: int = 0
    full: bool = True

    @classmethod
    def empty(cls, plan: DailyPlan) -> CustomerState:
        return cls(pa.array([], pa.large_string()),
                   {c: np.zeros(0, dtype=_dtype(c)) for c in state_columns(plan)})

    def __len__(self) -> int:
        return len(self.ids)

    def advance(self, plan: DailyPlan, day: dt.date, daily: pd.DataFrame) -> CustomerState:
        """The state after ``day`` from this one (before it) and the day's customer frame
        (one row per customer active that day, sorted by id)."""
        if not len(daily):
            return self._stored_as(day, np.zeros(0, dtype="int64"), dict(self.columns))
        day_ids = large_strings(daily["customer_id"].array)
        found = pc.index_in(day_ids, value_set=self.ids)
        new = found.is_null().to_numpy(zero_copy_only=False)
        positions = found.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64")
        ids = self.ids
        if new.any():  # customers never seen before: appended, in the day's (id) order
            positions[new] = len(ids) + np.arange(int(new.sum()))
            ids = pa.concat_arrays([ids, day_ids.filter(pa.array(new))])
        size = len(ids)
        columns = {}
        for name, values in self.columns.items():
            grown = np.zeros(size, dtype=values.dtype)
            grown[:len(values)] = values
            columns[name] = grown
        ordinal = day.toordinal()
        for f in plan.recency_filters:
            seen = daily[f"hits_{f.key}"].to_numpy() > 0
            columns[f"last_{f.key}"][positions[seen]] = ordinal
        for c in daily_columns(plan):
            total = columns[f"cum_{c}"]
            total[positions] += daily[c].to_numpy(dtype=total.dtype)
        for f in plan.hit_filters:
            columns[f"days_{f.key}"][positions] += daily[f"hits_{f.key}"].to_numpy() > 0
        return CustomerState(ids, columns)._chained(self, day, np.sort(positions))

    def _stored_as(self, day: dt.date, changed: np.ndarray,
                   columns: dict[str, np.ndarray]) -> CustomerState:
        return CustomerState(self.ids, columns)._chained(self, day, changed)

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


def _path(day: dt.date) -> tuple[str, str, str]:
    return CUSTOMER_STATE, f"as_of={day.isoformat()}", "part-0.arrow"


def state_exists(store: Store, day: dt.date) -> bool:
    return store.exists(*_path(day))


def write_state(store: Store, state: CustomerState, day: dt.date) -> None:
    """Publish the state of ``day``: whole, or only the rows its day changed (see the module
    docstring; ``state.full`` decides).

    Args:
        store: the store.
        state: the state of ``day`` (from :meth:`CustomerState.advance` or :func:`load_state`).
        day: its date.
    """
    if state.full or state.changed is None or state.base is None:
        table = state.to_arrow()
        meta = {_KIND: b"full"}
    else:
        take = pa.array(state.changed)
        table = pa.table({"customer_id": state.ids.take(take), "position": state.changed,
                          **{c: np.asarray(v)[state.changed] for c, v in state.columns.items()}})
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
    whole state."""

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
        out = np.zeros(self.rows, dtype=_dtype(name))
        out[:self.base.num_rows] = self.base.column(name).to_numpy()
        for delta, positions in zip(self.deltas, self.positions, strict=True):
            out[positions] = delta.column(name).to_numpy()
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
        ids: also read the customer ids.

    Returns:
        The state. A full file's columns are views of the mapped file; a delta's are built
        per column on access from its base and the deltas between.
    """
    columns = state_columns(plan)
    wanted = (["customer_id"] if ids else []) + columns
    table = read_ipc(store, *_path(day))
    meta = table.schema.metadata or {}
    if meta.get(_KIND, b"full") == b"full":
        table = table.select(wanted)
        # views, not copies: a state is never changed in place (advance builds new columns)
        values = {c: table.column(c).to_numpy().astype(_dtype(c), copy=False) for c in columns}
        ids_array = table.column("customer_id").combine_chunks().cast(pa.large_string()) \
            if ids else pa.nulls(table.num_rows, pa.large_string())
        return CustomerState(ids_array, values, base=day)
    base_day = dt.date.fromisoformat(meta[_BASE].decode())
    rows = int(meta[_ROWS])
    base = read_ipc(store, *_path(base_day), columns=wanted)
    deltas = [read_ipc(store, *_path(base_day + dt.timedelta(n)))
              for n in range(1, (day - base_day).days)] + [table]
    for n, delta in enumerate(deltas, 1):  # a chain is written whole, day after day
        kind = (delta.schema.metadata or {}).get(_BASE)
        if kind != meta[_BASE]:
            raise ValueError(f"customer state of {base_day + dt.timedelta(n)} is not in the "
                             f"chain of {day} from {base_day}")
    ids_array = pa.nulls(rows, pa.large_string())
    if ids:
        before = base.num_rows
        parts = [base.column("customer_id").combine_chunks().cast(pa.large_string())]
        for delta in deltas:  # each delta's new customers, appended in position order
            positions = delta.column("position").to_numpy()
            new = positions >= before
            if new.any():
                parts.append(delta.column("customer_id").combine_chunks()
                             .filter(pa.array(new)).cast(pa.large_string()))
                before = int(positions[new].max()) + 1
        ids_array = pa.concat_arrays(parts)
    return CustomerState(ids_array, _ChainColumns(base, deltas, rows, columns), base=base_day,
                         chain_rows=int(meta[_CHAIN]), full=False,
                         changed=deltas[-1].column("position").to_numpy())
