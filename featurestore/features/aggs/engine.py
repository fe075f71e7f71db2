"""The SPEC §3a engine: daily partials, a chained per-customer state and window tiles.

Features the original engine serves (every SPEC §3 shape, :func:`..definitions.is_extended`)
never come here. For the others, per event date D:

* ingest writes each file's partial states of D (:func:`write_ext_partials`,
  ``_partials/ext/event_date=D/part-<file id>-<fp>.arrow``), committed with the file;
* materialization combines them into the day's states (``_daily/ext/event_date=D/
  part-<fp>.arrow``; from the stored events when a file has none, e.g. after ``apply``);
* the chained state of D (``_state/ext/<fp>/as_of=D.arrow``) holds, per customer, the
  windowed count / moment states (slid: + day D, - day D-w) and every lifetime state
  (merged with day D);
* min, max, first, last, distinct, approx_distinct and top_k over a window of w days use a
  two-stack queue on blocks of w days aligned on day ordinals: the back stack is the running
  merge of the current block (in the chained state), the front stack the suffix merges of
  the previous block (``_state/ext_tiles/<fp>/w<w>/<day>.arrow``: day .. block end, built
  backwards when the block's last day is advanced). The window ending on D is front[D-w+1]
  merged with the back stack: two merges a day whatever w (plus w merges once per block).

Every output is a pure function of the day states, written under deterministic names with the
store's atomic publish; the state chain restarts wherever the original engine's does (the same
plan), so late data and crashes are handled as there.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ... import layout
from ...storage import Store
from .._io import read_ipc, write_ipc
from ..definitions import (
    Feature,
    FeatureRepo,
    declared_columns,
    feature_type,
    field_type,
    is_extended,
)
from . import language
from .kernels import (
    StateKey,
    build_partial,
    empty_column,
    empty_state,
    finalize,
    merge,
    negate,
    state_columns,
)

__all__ = [
    "EXT_FORMAT",
    "ExtPlan",
    "advance_ext",
    "block_end",
    "block_ends",
    "build_suffixes",
    "ext_columns",
    "ext_daily",
    "ext_plan",
    "stack_window",
    "write_ext_partials",
    "write_ext_state",
]

# 2: set / counts / sketch values dictionary-coded; 3: first/last order as int64 hit time and
# a file-id dictionary, not a padded string (kernels)
EXT_FORMAT = 3
_KIND = {"count": "count", "sum": "moments", "mean": "moments", "stddev": "moments",
         "min": "min", "max": "max", "first": "first", "last": "last", "distinct": "set",
         "approx_distinct": "sketch", "top_k": "counts", "recency": "max"}


@dataclasses.dataclass(frozen=True)
class Spec:
    """One extended aggregate feature of a customer table."""

    table: str
    name: str
    aggregation: str
    key: StateKey
    window: int | None
    k: int | None

    @property
    def mode(self) -> str:
        if self.window is None:
            return "life"
        return "slide" if self.key.kind in ("count", "moments") else "tile"

    @functools.cached_property
    def prefix(self) -> str:
        return f"{self.key.name}@{self.window or 'L'}"


@dataclasses.dataclass(frozen=True)
class ExtPlan:
    """Every extended feature of the weblog customer tables and the types of the columns
    their filters and fields read."""

    specs: tuple[Spec, ...]
    expressions: tuple[tuple[str, str, str], ...]  # (table, feature, expression)
    types: tuple[tuple[str, str], ...]  # column -> type (where conditions, fields)
    outputs: tuple[tuple[str, str, str], ...]  # (table, feature, output type)

    @property
    def keys(self) -> list[StateKey]:
        return sorted({s.key for s in self.specs}, key=lambda k: k.name)

    @property
    def empty(self) -> bool:
        return not self.specs and not self.expressions

    @functools.cached_property
    def partial_fp(self) -> str:
        """What a partial / day state holds (the state keys)."""
        # the column types too: a condition reads its column as its declared type
        blob = json.dumps([[dataclasses.asdict(k) for k in self.keys], self.types],
                          sort_keys=True)
        return hashlib.sha1(f"{blob}/{EXT_FORMAT}".encode()).hexdigest()[:12]

    @functools.cached_property
    def state_fp(self) -> str:
        """What a chained state / tile holds (keys, windows, modes)."""
        blob = json.dumps(sorted({(s.prefix, s.mode) for s in self.specs}))
        return hashlib.sha1(f"{self.partial_fp}/{blob}".encode()).hexdigest()[:12]

    def chained(self) -> list[tuple[StateKey, str]]:
        """(key, prefix) of the chained state: slid windows and lifetime states."""
        return sorted({(s.key, s.prefix) for s in self.specs if s.mode != "tile"},
                      key=lambda p: p[1])

    def tiled(self) -> list[StateKey]:
        return sorted({s.key for s in self.specs if s.mode == "tile"}, key=lambda k: k.name)

    def stacked(self) -> dict[int, list[StateKey]]:
        """Window length -> the keys of the windowed non-invertible features (two stacks)."""
        out: dict[int, set[StateKey]] = {}
        for s in self.specs:
            if s.mode == "tile":
                out.setdefault(s.window, set()).add(s.key)
        return {w: sorted(keys, key=lambda k: k.name) for w, keys in sorted(out.items())}

    def chained_all(self) -> list[tuple[StateKey, str]]:
        """(key, prefix) of everything the chained state holds: slid windows, lifetime
        states and the back stack (the running merge of the current block) per window."""
        back = [(k, f"{k.name}@B{w}") for w, keys in self.stacked().items() for k in keys]
        return sorted([*self.chained(), *back], key=lambda p: p[1])

    def slide_windows(self) -> list[int]:
        return sorted({s.window for s in self.specs if s.mode == "slide"})

    def max_tile_window(self) -> int:
        return max((s.window for s in self.specs if s.mode == "tile"), default=0)

    def where_types(self) -> dict[str, str]:
        return dict(self.types)


def ext_plan(repo: FeatureRepo | None) -> ExtPlan:
    """The extended features of a repository's weblog customer tables (empty plan: none).

    Args:
        repo: the repository (None: empty).

    Returns:
        The plan; deterministic for a repository.
    """
    specs, exprs, outputs = [], [], []
    types: dict[str, str] = dict(language.WHERE_BUILTINS)
    if repo is None:
        return ExtPlan((), (), (), ())
    for tname, table in repo.tables_for("weblog").items():
        if len(repo.keys(tname)) != 1:
            continue
        declared = declared_columns(repo, table.source)
        types.update(declared)
        for fname, f in table.features.items():
            if not is_extended(f, "weblog"):
                continue
            outputs.append((tname, fname, feature_type(f, declared)))
            if f.expression is not None:
                exprs.append((tname, fname, f.expression))
                continue
            specs.append(Spec(tname, fname, f.aggregation, _state_key(f, declared),
                              f.window_days, f.k))
    return ExtPlan(tuple(specs), tuple(exprs), tuple(sorted(types.items())), tuple(outputs))


def _state_key(f: Feature, declared: dict[str, str]) -> StateKey:
    field = "event_date" if f.aggregation == "recency" else f.field
    ftype = "date" if f.aggregation == "recency" else field_type(f, declared)
    pairs = (field in language.PAIR_FIELDS) or (f.aggregation == "count" and
                                                f.unit == "product")
    filt = json.dumps(f.filter.model_dump(), sort_keys=True)
    return StateKey(_KIND[f.aggregation], field, ftype, pairs, filt)


# -- partials and day states -----------------------------------------------------------------
def _day(day: dt.date | str) -> str:
    return f"event_date={day if isinstance(day, str) else day.isoformat()}"


def partial_of(plan: ExtPlan, events: pa.Table, file_id: str,
               rows: np.ndarray | None = None, share=None) -> pa.Table:
    """One file's partial states of one day (see :func:`.kernels.build_partial`; ``share``:
    the task's :class:`..daily.HitShare` of ``events``, or None)."""
    from ..daily import _mask, _products

    return build_partial(plan.keys, events, file_id, rows, _mask, _products,
                         plan.where_types(), share)


def write_ext_partials(store: Store, plan: ExtPlan, day: dt.date, file_id: str,
                       events: pa.Table, rows: np.ndarray | None = None,
                       share=None) -> None:
    """Publish one file's partial states of ``day`` (even when empty), before its ledger
    record, like :func:`..partials.write_partials`.

    Args:
        store: the store.
        plan: the extended plan (not empty).
        day: the event date of every row of ``events``.
        file_id: the raw file's id.
        events: the file's hits of ``day`` (Arrow).
        rows: the hits' positions in the file (their line order).
        share: the task's :class:`..daily.HitShare` of ``events`` (None: none), which the
            default partials built after this one then use too.
    """
    table = _without_empty(partial_of(plan, events, file_id, rows, share))
    write_ipc(store, table, layout.EXT_PARTIALS, _day(day),
              layout.partial_name(file_id, plan.partial_fp))


def _without_empty(table: pa.Table) -> pa.Table:
    """A partial without its columns that hold nothing: all null, or (a count / moments
    component) all exactly zero. The merge reads a missing column as exactly that
    (:func:`.kernels.merge` completes its inputs), so the day's states are unchanged; a key
    whose filter or column matches nothing in a file (a declared column the drop lacks, a
    rare event) costs no bytes to write or to read back."""
    if not table.num_rows:
        return table
    keep = [i for i in range(table.num_columns) if i == 0 or not _is_empty(table, i)]
    return table.select(keep) if len(keep) < table.num_columns else table


def _is_empty(table: pa.Table, i: int) -> bool:
    """Whether column ``i`` (one chunk) holds nothing: all null, or a count / moments
    component all exactly +0 (what :func:`.kernels.empty_column` rebuilds)."""
    col = table.column(i)
    if col.num_chunks != 1:
        return False
    if col.null_count == len(col):
        return True
    if table.schema.field(i).name.rsplit(".", 1)[1] in ("n", "s", "ss") and \
            not col.null_count and col.type.bit_width == 64:
        bits = np.frombuffer(col.chunk(0).buffers()[1], np.int64, len(col),
                             8 * col.chunk(0).offset)
        return not bits.any()  # +0 only (a -0.0 sum is kept: its bits are not zero)
    return False


# A day state or chained state file leaves out its empty columns and stores a column that is
# another's very buffers once (a first day's chained state is the day state under several
# prefixes: 218 -> ~115 MB on the sparse drop); its metadata has the whole schema.
_WHOLE = b"featurestore.state.schema"
_SAME = b"featurestore.state.same"


def _buffers_key(arr: pa.Array) -> tuple:
    """What an array is made of: its type, bounds and buffers' addresses (children and
    dictionaries included). Equal keys: the same memory, so the same values."""
    key: tuple = (str(arr.type), arr.offset, len(arr), arr.null_count,
                  tuple(None if b is None else (b.address, b.size) for b in arr.buffers()))
    if pa.types.is_dictionary(arr.type):
        key += (_buffers_key(arr.dictionary),)
    elif pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        key += (_buffers_key(arr.values),)
    return key


def _dictionary_values(arr: pa.Array) -> bool:
    """Whether a dictionary of ``arr`` (its own or its lists') holds values: then an all-null
    column is not rebuilt as :func:`.kernels.empty_column` (a one-file day keeps its partial's
    first/last file dictionary), so it is kept as it is."""
    if pa.types.is_dictionary(arr.type):
        return len(arr.dictionary) > 0
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        return _dictionary_values(arr.values)
    return False


def _write_state(store: Store, table: pa.Table, *parts: str) -> None:
    """Publish a day state or chained state without its empty or repeated columns
    (:func:`_read_state` rebuilds them)."""
    if not table.num_rows:
        write_ipc(store, table, *parts)
        return
    keep, same, seen = [0], {}, {}
    for i in range(1, table.num_columns):
        if _is_empty(table, i) and not _dictionary_values(table.column(i).chunk(0)):
            continue
        col = table.column(i)
        if col.num_chunks == 1:
            key = _buffers_key(col.chunk(0))
            if key in seen:
                same[table.schema.field(i).name] = seen[key]
                continue
            seen[key] = table.schema.field(i).name
        keep.append(i)
    if len(keep) == table.num_columns:
        write_ipc(store, table, *parts)
        return
    import base64

    slim = table.select(keep).replace_schema_metadata({
        _WHOLE: base64.b64encode(table.schema.serialize().to_pybytes()),
        _SAME: json.dumps(same).encode()})
    write_ipc(store, slim, *parts)


def _read_state(store: Store, *parts: str) -> pa.Table:
    """A state file written by :func:`_write_state`, whole again: a repeated column is the
    same array as its first, a left-out one zeros or nulls of its type."""
    table = read_ipc(store, *parts)
    meta = table.schema.metadata or {}
    if _WHOLE not in meta:
        return table
    import base64

    whole = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(meta[_WHOLE])))
    same = json.loads(meta[_SAME])
    have = set(table.column_names)
    cols = [table.column(f.name) if f.name in have else
            table.column(same[f.name]) if f.name in same else
            empty_column(f, table.num_rows) for f in whole]
    return pa.Table.from_arrays(cols, schema=whole)


def _all_keys(plan: ExtPlan) -> list[tuple[StateKey, str]]:
    return [(k, k.name) for k in plan.keys]


def _events_day(store: Store, plan: ExtPlan, day: dt.date) -> pa.Table:
    """The day's states from its stored events (no partials: a file ingested before these
    definitions). Each live file is one partial, in file order."""
    import pyarrow.parquet as pq

    from ...events_compaction import live_events

    view = live_events(store, day)
    parts = []
    for name in view.files:
        path = store.path(layout.EVENTS, _day(day), name)
        table = pq.read_table(path, filesystem=store.fs)
        table = table.append_column("event_date", pa.array(
            np.full(table.num_rows, day.toordinal() - 719163, np.int32)).cast(pa.date32()))
        ids = sorted(view.file_ids.get(name, ())) or [name]
        parts.append(partial_of(plan, table, ids[0]))
    return merge(parts, _all_keys(plan))


def ext_daily(store: Store, plan: ExtPlan, day: dt.date, recompute: bool) -> pa.Table:
    """The day's combined states: stored, or (re)built from the files' partials (the events
    when a file lacks one) and published.

    Args:
        store: the store.
        plan: the plan.
        day: the event date.
        recompute: rebuild even when a stored one exists (a touched date).

    Returns:
        The day's state table (every key; sorted by customer_id).
    """
    name = f"part-{plan.partial_fp}.arrow"
    if not recompute:
        try:
            return _read_state(store, layout.EXT_DAILY, _day(day), name)
        except FileNotFoundError:
            pass
    from ...events_compaction import live_file_ids

    events = live_file_ids(store, day)
    suffix = f"-{plan.partial_fp}.arrow"
    have = {n[len("part-"):-len(suffix)] for n in store.listdir(layout.EXT_PARTIALS, _day(day))
            if n.startswith("part-") and n.endswith(suffix)}
    if not events:
        table = empty_state([f for k, p in _all_keys(plan) for f in state_columns(k, p)])
    elif events <= have:
        table = merge([read_ipc(store, layout.EXT_PARTIALS, _day(day), f"part-{fid}{suffix}")
                       for fid in sorted(events)], _all_keys(plan))
    else:
        table = _events_day(store, plan, day)
    _write_state(store, table, layout.EXT_DAILY, _day(day), name)
    return table


def _read_daily(store: Store, plan: ExtPlan, day: dt.date) -> pa.Table:
    try:
        return _read_state(store, layout.EXT_DAILY, _day(day), f"part-{plan.partial_fp}.arrow")
    except FileNotFoundError:  # no events that day (or before the first): nothing
        return empty_state([f for k, p in _all_keys(plan) for f in state_columns(k, p)])


def _renamed(table: pa.Table, pairs: list[tuple[StateKey, str]]) -> pa.Table:
    """Day-state columns ``<key>.<c>`` renamed to the state prefixes ``<key>@<w>.<c>``."""
    cols = {"customer_id": table.column("customer_id")}
    for key, prefix in pairs:
        for f in state_columns(key, key.name):
            cols[f"{prefix}.{f.name.rsplit('.', 1)[1]}"] = table.column(f.name)
    return pa.table(cols)


# -- the chained state -----------------------------------------------------------------------
def state_exists(store: Store, plan: ExtPlan, day: dt.date) -> bool:
    return store.exists(layout.EXT_STATE, plan.state_fp, f"as_of={day.isoformat()}.arrow")


def load_ext_state(store: Store, plan: ExtPlan, day: dt.date) -> pa.Table:
    return _read_state(store, layout.EXT_STATE, plan.state_fp, f"as_of={day.isoformat()}.arrow")


def advance_ext(store: Store, plan: ExtPlan, prior: pa.Table | dt.date | None, day: dt.date,
                recompute: bool, today: pa.Table | None = None,
                leaving: dict[int, pa.Table] | None = None, suffixes: bool = True,
                write: bool = True) -> pa.Table:
    """The chained state of ``day`` from that of the day before; also publishes it, the day's
    combined states and, on a block's last day, the block's front stack (unless the caller
    does: see ``today``, ``suffixes`` and ``write``).

    Args:
        store: the store.
        plan: the plan.
        prior: the state of the day before (a table, a stored one's date, or None: empty).
        day: the as-of date.
        recompute: whether the day's states are rebuilt (a touched date).
        today: the day's combined states when the caller built them (:func:`ext_daily`),
            else built or read here.
        leaving: window -> the combined states of the day leaving it, when the caller has
            them (the others are read from the store).
        suffixes: build a completed block's front stack here (False: the caller runs
            :func:`build_suffixes` as its own task, off the state chain).
        write: publish the state here (False: the caller does, :func:`write_ext_state`).

    Returns:
        The state of ``day``.
    """
    chained = plan.chained()
    everything = plan.chained_all()
    fields = [f for k, p in everything for f in state_columns(k, p)]
    if isinstance(prior, dt.date):
        prior = load_ext_state(store, plan, prior)
    if prior is None:
        prior = empty_state(fields)
    if today is None:
        today = ext_daily(store, plan, day, recompute)
    leaving = leaving or {}
    parts = [prior, _renamed(today, chained)]
    for w in plan.slide_windows():
        names = [(k, p) for k, p in chained if p.endswith(f"@{w}")]
        gone = leaving.get(w)
        if gone is None:
            gone = _read_daily(store, plan, day - dt.timedelta(w))
        if gone.num_rows:
            parts.append(negate(_renamed(gone, names), names))
    state = merge(parts, chained) if chained else empty_state([])
    # the back stack of each windowed non-invertible aggregation: the merge of the block of w
    # days (aligned on ordinals) up to today; a new block starts from today alone
    for w, keys in plan.stacked().items():
        pairs = [(k, f"{k.name}@B{w}") for k in keys]
        names = [f.name for k, p in pairs for f in state_columns(k, p)]
        start = day.toordinal() % w == 0
        sources = [_renamed(today, pairs)] if start else [prior, _renamed(today, pairs)]
        state = _join(state, merge(sources, pairs).select(["customer_id", *names]), fields)
        if suffixes and block_ends(day, w):  # the block is complete: its front stack
            build_suffixes(store, plan, w, day)
    if write:
        write_ext_state(store, plan, state, day)
    return state


def write_ext_state(store: Store, plan: ExtPlan, state: pa.Table, day: dt.date) -> None:
    """Publish the chained state of ``day``."""
    _write_state(store, state, layout.EXT_STATE, plan.state_fp, f"as_of={day.isoformat()}.arrow")


def block_ends(day: dt.date, w: int) -> bool:
    """Whether ``day`` is the last day of its block of ``w`` days (aligned on ordinals)."""
    return day.toordinal() % w == w - 1


def block_end(day: dt.date, w: int) -> dt.date:
    """The last day of the block of ``w`` days (aligned on ordinals) that holds ``day``."""
    return dt.date.fromordinal(day.toordinal() // w * w + w - 1)


def _join(state: pa.Table, extra: pa.Table, fields: list[pa.Field]) -> pa.Table:
    """``state`` with the columns of ``extra`` (both sorted by customer_id), on the union of
    their customers; missing values are zero (counts, sums) or null."""
    from .kernels import _align, _whole, positions, same_rows

    ids = _whole(state.column("customer_id"))
    more = _whole(extra.column("customer_id"))
    if not (len(more) == len(ids) and more.type == ids.type and more.equals(ids)):
        ids = pc.unique(pa.concat_arrays([ids, more])).sort()
    by_name = {f.name: f for f in fields}
    cols = {"customer_id": ids}
    tables = [state, extra]
    if len(ids) == state.num_rows:  # extra's customers are among state's: state as it is
        cols.update({n: state.column(n) for n in state.column_names if n != "customer_id"})
        tables = [extra]
    for table in tables:
        pos = positions(ids, table)  # once per table, not per column
        # the same customers in order (a first day's back stacks): the columns as they are
        same = same_rows(pos, table)
        for n in table.column_names:
            if n == "customer_id":
                continue
            prefix, comp = n.rsplit(".", 1)
            sub = pa.table({"customer_id": table.column("customer_id"), comp: table.column(n)})
            cols.update(_align(sub, ids, prefix, [by_name[n]], pos, same))
    return pa.table({k: cols[k] for k in ["customer_id", *(f.name for f in fields)]
                     if k in cols})


def _suffix_name(day: dt.date) -> str:
    return f"{day.isoformat()}.arrow"


def build_suffixes(store: Store, plan: ExtPlan, w: int, last: dt.date,
                   days: dict[dt.date, pa.Table] | None = None) -> bool:
    """The front stack of the block of ``w`` days ending on ``last``: for each day i of it,
    the merge of days i .. last (built backwards, one merge per day: w merges once every w
    days). Needs only the blocks' combined day states, not the chained state.

    Args:
        store: the store.
        plan: the plan.
        w: the window.
        last: the block's last day.
        days: combined day states the caller has (the others are read from the store).

    Returns:
        True (a token for the tasks that read the front stack).
    """
    keys = plan.stacked()[w]
    pairs = [(k, k.name) for k in keys]
    names = ["customer_id", *(f.name for k, p in pairs for f in state_columns(k, p))]
    days = days or {}
    suffix = None
    for back in range(w):
        day = last - dt.timedelta(back)
        daily = days.get(day)
        daily = (daily if daily is not None else _read_daily(store, plan, day)).select(names)
        suffix = daily if suffix is None else merge([daily, suffix], pairs)
        write_ipc(store, suffix, layout.EXT_TILES, plan.state_fp, f"w{w}", _suffix_name(day))
    return True


def _suffix(store: Store, plan: ExtPlan, w: int, keys: list[StateKey], day: dt.date,
            first: dt.date) -> pa.Table:
    """The front stack's entry for ``day`` (the merge of ``day`` .. the end of its block), or
    the merge of the days when it was never built (its block ended before the definitions)."""
    pairs = [(k, k.name) for k in keys]
    end = block_end(day, w)
    if end < first:  # the block is before history
        return empty_state([f for k, p in pairs for f in state_columns(k, p)])
    try:
        return read_ipc(store, layout.EXT_TILES, plan.state_fp, f"w{w}", _suffix_name(day))
    except FileNotFoundError:
        names = ["customer_id", *(f.name for k, p in pairs for f in state_columns(k, p))]
        return merge([_read_daily(store, plan, dt.date.fromordinal(o)).select(names)
                      for o in range(max(day.toordinal(), first.toordinal()),
                                     end.toordinal() + 1)],
                     pairs)


def stack_window(store: Store, plan: ExtPlan, as_of: dt.date, w: int, state: pa.Table,
                 first: dt.date) -> pa.Table:
    """A window of ``w`` days ending on ``as_of`` for the stacked keys: the back stack (the
    block so far, in ``state``) merged with the front stack's entry for the window's first
    day (the rest of the block before): two merges, whatever ``w``."""
    keys = plan.stacked()[w]
    pairs = [(k, k.name) for k in keys]
    back = pa.table({"customer_id": state.column("customer_id"), **{
        f"{k.name}.{f.name.rsplit('.', 1)[1]}": state.column(f.name)
        for k in keys for f in state_columns(k, f"{k.name}@B{w}")}})
    if as_of.toordinal() % w == w - 1:  # the block is the window
        return back
    front = _suffix(store, plan, w, keys, as_of - dt.timedelta(w - 1), first)
    return merge([front, back], pairs)


# -- the table's columns ---------------------------------------------------------------------
_PANDAS = {"int": "Int64", "float": "float64", "string": pd.StringDtype(), "bool": "boolean"}


def ext_columns(store: Store, plan: ExtPlan, table: str, as_of: dt.date, state: pa.Table,
                ids: pa.Array, first: dt.date) -> dict[str, pa.Array]:
    """The extended features of ``table`` at ``as_of`` for the rows ``ids`` (sorted).

    Args:
        store: the store.
        plan: the plan.
        table: the customer table.
        as_of: the as-of date.
        state: the chained state of ``as_of``.
        ids: the table's customer ids, sorted.
        first: the first event date.

    Returns:
        Feature name -> values (Arrow), aggregate features then expressions.
    """
    from .kernels import positions, same_rows

    ids = ids.cast(pa.large_string())
    out: dict[str, pa.Array] = {}
    windows: dict[int, tuple[pa.Table, pa.Array, bool]] = {}
    at = positions(ids, state)  # the rows of ids in the state: once for every feature
    same = same_rows(at, state)  # and whether they are its rows in order: once too
    for spec in plan.specs:
        if spec.table != table:
            continue
        if spec.mode == "tile":
            if spec.window not in windows:
                window = stack_window(store, plan, as_of, spec.window, state, first)
                where = positions(ids, window)
                windows[spec.window] = (window, where, same_rows(where, window))
            window, where, there = windows[spec.window]
            values = finalize(spec.key, spec.key.name, window, ids, spec.aggregation, spec.k,
                              as_of.toordinal(), where, there)
        else:
            values = finalize(spec.key, spec.prefix, state, ids, spec.aggregation, spec.k,
                              as_of.toordinal(), at, same)
        out[spec.name] = values
    return out


def expression_columns(plan: ExtPlan, table: str, columns: dict[str, object],
                       size: int) -> dict[str, pa.Array]:
    """The expression features of ``table`` over its other columns (float64, SPEC §3a).

    Args:
        plan: the plan.
        table: the table.
        columns: every other feature's values (Arrow or numpy), by name.
        size: rows.

    Returns:
        Feature name -> float64 values (null on a null operand or a zero divisor).
    """
    exprs = {n: language.parse_expression(e) for t, n, e in plan.expressions if t == table}
    done: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def numeric(name: str) -> tuple[np.ndarray, np.ndarray]:
        if name in done:
            return done[name]
        if name in exprs:
            refs = {r: numeric(r) for r in language.references(exprs[name])}
            done[name] = language.evaluate(exprs[name], refs, size)
            return done[name]
        col = columns[name]
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        if isinstance(col, pa.Array):
            valid = ~_null_mask(col)
            if pa.types.is_boolean(col.type):
                col = col.cast(pa.int64())
            vals = pc.fill_null(col.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False)
        else:
            arr = np.asarray(col)
            valid = np.ones(size, bool) if not hasattr(col, "mask") else ~np.asarray(col.mask)
            vals = arr.astype(np.float64)
        done[name] = (vals, valid)
        return done[name]

    out = {}
    for name in exprs:
        v, ok = numeric(name)
        out[name] = pa.array(v, mask=~ok, type=pa.float64())
    return out


def _null_mask(col: pa.Array) -> np.ndarray:
    return pc.is_null(col).to_numpy(zero_copy_only=False).astype(bool)


#: Feature types whose empty value is null: pandas reads their int columns as ``Int64``.
_NULLABLE = ("mean", "stddev", "min", "max", "first", "last", "recency")


def with_ext_columns(store: Store, repo: FeatureRepo, plan: ExtPlan, table: str,
                     as_of: dt.date, base: pa.Table, state: pa.Table,
                     first: dt.date) -> pa.Table:
    """``base`` (the original engine's columns of ``table``) with the SPEC §3a features added,
    every column in the repository's order, with pandas metadata (nullable ints as ``Int64``).

    Args:
        store: the store.
        repo: the repository.
        plan: the extended plan.
        table: the customer table.
        as_of: the as-of date.
        base: customer_id and the original features, sorted by customer_id.
        state: the chained SPEC §3a state of ``as_of``.
        first: the first event date.

    Returns:
        The whole table.
    """
    ids = base.column("customer_id").combine_chunks()
    if pa.types.is_dictionary(ids.type):
        ids = ids.dictionary_decode()
    from .kernels import _whole

    cols: dict[str, object] = {n: _whole(base.column(n))
                               for n in base.column_names if n != "customer_id"}
    cols.update(ext_columns(store, plan, table, as_of, state, ids, first))
    cols.update(expression_columns(plan, table, cols, len(ids)))
    feats = repo.tables[table].features
    arrays = {"customer_id": ids.cast(pa.large_string())}
    arrays.update({n: cols[n] for n in feats})
    out = pa.table(arrays)
    nullable_int = [n for n, f in feats.items() if is_extended(f) and (
        f.aggregation in _NULLABLE) and pa.types.is_integer(out.column(n).type)]
    base_types = _pandas_types(base)
    nullable_int += [n for n in base.column_names if n in feats and base_types.get(n) == "Int64"]
    return out.replace_schema_metadata(_pandas_meta(out.schema.remove_metadata(),
                                                    tuple(nullable_int)))


@functools.lru_cache(maxsize=16)
def _pandas_meta(schema: pa.Schema, nullable_int: tuple[str, ...]) -> dict:
    """The pandas metadata of a table of ``schema`` read back with ``nullable_int`` as
    nullable ``Int64``: the same for every as-of date of a table, so built once (an empty
    frame's round trip, ~10 ms a table and day)."""
    sample = schema.empty_table().to_pandas()
    for n in nullable_int:
        sample[n] = sample[n].astype("Int64")
    return pa.Schema.from_pandas(sample, preserve_index=False).metadata


def _pandas_types(table: pa.Table) -> dict[str, str | None]:
    """Column name -> its numpy type in ``table``'s pandas metadata (parsed once: the JSON
    names every column)."""
    meta = table.schema.pandas_metadata or {}
    return {col.get("name"): col.get("numpy_type") for col in meta.get("columns", ())}
