"""SPEC §3a aggregations as monoids over per-customer partial states (pure, Arrow in and out).

A *state key* (:class:`StateKey`) is what one or more features aggregate: a kind, a field, the
rows (hits, or the (hit, product) pairs of the product list) and a filter. Its partial state
lives in a wide table keyed by ``customer_id`` (sorted), in columns ``<key>.<component>``:

========  ===========================  =====================================================
kind      components                   merge (inverse)
========  ===========================  =====================================================
count     n int64                      add (subtract)
moments   n int64, s, ss float64/int   add (subtract): mean, stddev, sum
min/max   v (field type)               min / max
first     v, o int64 (hit time),       the value of the smallest / largest (o, f)
last      f dict<file id>
set       v list<dict<string>>         union (distinct)
counts    v list<dict<string>>,        per-value add (top_k)
          c list<int>
sketch    v list<dict<string>>,        union: exact up to 100 values, then an Apache
          h binary                     DataSketches HLL sketch (approx_distinct)
========  ===========================  =====================================================

A list's values are codes into its column's dictionary, which holds exactly the distinct
values present, sorted bytewise: each list is ascending, and a merge unifies the inputs' small
dictionaries once and then works on integer pairs (customer, value code), never on strings.

The order of first/last is SPEC's: hit time, then drop date and file name, then line (and the
product's position in the hit). A file's partial picks each customer's winner on (hit time,
line, position); what a merge compares is the winner's hit time ``o`` (int64) and its file
id ``f`` (dictionary-coded: a partial's dictionary is its one file), the file ids ordered as
``<file id>|`` bytewise (the drop date, then the name, as the earlier string key did).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..._exceptions import AggregationOverflowError
from . import language

__all__ = ["EXACT_LIMIT", "HLL_LG_K", "StateKey", "build_partial", "empty_state",
           "finalize", "merge", "negate", "state_columns"]

#: approx_distinct keeps the exact set up to this many values (SPEC §3a).
EXACT_LIMIT = 100
#: HLL sketch size: 2^13 buckets, relative standard error about 1.15% (docs/features.md).
HLL_LG_K = 13
_INT_LIMIT = 2.0 ** 63
#: A set / counts / sketch state's values: codes into a dictionary of the distinct values,
#: sorted bytewise (a code's order is its value's order), so merges sort integers.
_DICT = pa.dictionary(pa.int32(), pa.large_string())
_LIST = pa.list_(_DICT)
#: first/last: the winner's file id, a code into the distinct file ids present (few per state)
_FILE = pa.dictionary(pa.int32(), pa.large_string())
_ARROW_TYPES = {"string": pa.large_string(), "int": pa.int64(), "float": pa.float64(),
                "bool": pa.bool_(), "date": pa.date32()}


@dataclasses.dataclass(frozen=True)
class StateKey:
    """What a feature aggregates (features sharing one share the partial state)."""

    kind: str  # count moments min max first last set counts sketch
    field: str | None
    ftype: str | None
    pairs: bool  # over the (hit, product) pairs of matching hits
    filter_json: str  # the Filter's dump (conditions included), sorted keys

    @functools.cached_property  # asked for per column and day: hashed once per instance
    def name(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return "x" + hashlib.sha1(blob).hexdigest()[:10]

    @property
    def value_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.ftype or "string"]

    @property
    def sum_type(self) -> pa.DataType:
        return pa.int64() if self.ftype in ("int", "bool") else pa.float64()


def state_columns(key: StateKey, prefix: str) -> list[pa.Field]:
    """The state's Arrow fields for one key, named ``<prefix>.<component>``."""
    return list(_state_columns(key, prefix))


@functools.lru_cache(maxsize=4096)
def _state_columns(key: StateKey, prefix: str) -> tuple[pa.Field, ...]:
    """:func:`state_columns`, built once per (key, prefix): asked for per key on every
    merge, partial and feature."""
    k = key.kind
    if k == "count":
        comps = [("n", pa.int64())]
    elif k == "moments":
        comps = [("n", pa.int64()), ("s", key.sum_type), ("ss", pa.float64())]
    elif k in ("min", "max"):
        comps = [("v", key.value_type)]
    elif k in ("first", "last"):
        comps = [("v", key.value_type), ("o", pa.int64()), ("f", _FILE)]
    elif k == "set":
        comps = [("v", _LIST)]
    elif k == "counts":
        comps = [("v", _LIST), ("c", pa.list_(pa.int64()))]
    elif k == "sketch":
        comps = [("v", _LIST), ("h", pa.large_binary())]
    else:
        raise ValueError(f"unknown state kind {k!r}")
    return tuple(pa.field(f"{prefix}.{c}", t) for c, t in comps)


def empty_state(columns: list[pa.Field]) -> pa.Table:
    """A state table without rows."""
    return pa.schema([pa.field("customer_id", pa.large_string()), *columns]).empty_table()


# -- building a partial from hits ------------------------------------------------------------
def _where_mask(table: pa.Table, cond: dict, ctype: str) -> np.ndarray:
    """Which rows satisfy one ``where`` condition (a null satisfies only is_null)."""
    n = table.num_rows
    op = cond["op"]
    if cond["column"] not in table.column_names or \
            table.column(cond["column"]).null_count == n:  # a column this file lacks: null
        return np.full(n, op == "is_null")
    col = table.column(cond["column"])
    if ctype == "string" and pa.types.is_string(col.type):  # compared as it is: no cast
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    else:
        col = _typed(col, ctype)
    if op == "is_null":
        return _bools(pc.is_null(col))
    if op == "not_null":
        return _bools(pc.is_valid(col))
    raw = cond["value"]
    if op in ("in", "not_in"):
        values = pa.array([language.coerce(v, ctype) for v in raw], col.type)
        hit = _bools(pc.is_in(col, value_set=values))
        return hit if op == "in" else (~hit & _bools(pc.is_valid(col)))
    value = pa.scalar(language.coerce(raw, ctype), col.type)
    fn = {"eq": pc.equal, "ne": pc.not_equal, "gt": pc.greater, "ge": pc.greater_equal,
          "lt": pc.less, "le": pc.less_equal}.get(op)
    if op == "prefix":
        return _bools(pc.starts_with(col, value.as_py()))
    return _bools(fn(col, value))


def _typed(col, ctype: str):
    """A column as its declared Arrow type: typed columns pass; strings (a store whose events
    hold raw text) are parsed, a value that does not parse is null."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    want = _ARROW_TYPES[ctype]
    if col.type == want:
        return col
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        if ctype in ("string",):
            return col.cast(want)
        text = col.cast(pa.large_string())
        text = pc.if_else(pc.equal(text, "\\N"), None, text)
        text = pc.if_else(pc.equal(pc.utf8_trim_whitespace(text), ""), None, text)
        if ctype == "bool":
            low = pc.utf8_lower(text)
            true = pc.is_in(low, value_set=pa.array(["1", "true"], pa.large_string()))
            false = pc.is_in(low, value_set=pa.array(["0", "false"], pa.large_string()))
            return pc.if_else(true, True, pc.if_else(false, False, pa.scalar(None, pa.bool_())))
        values = []
        for v in text.to_pylist():  # rare path (events stored before the columns were typed)
            try:
                values.append(None if v is None else (int(v) if ctype == "int" else float(v)))
            except ValueError:
                values.append(None)
        return pa.array(values, want)
    return col.cast(want)


def _bools(values) -> np.ndarray:
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def build_partial(keys: list[StateKey], events: pa.Table, file_id: str,
                  rows: np.ndarray | None, mask_fn, products_fn,
                  where_types: dict[str, str], share=None) -> pa.Table:
    """One file's (or one day's) partial states of every key, per customer.

    Args:
        keys: the state keys.
        events: hits of one event date (built-in columns, ``event_date``, declared columns).
        file_id: the file's id (for the order keys of first/last).
        rows: each hit's line order in its file (None: its position in ``events``).
        mask_fn: ``(table, Filter) -> bool array``: the original filter conditions.
        products_fn: ``(table, needed) -> dict`` of the product list's pairs (daily._products).
        where_types: column -> type for ``where`` conditions and fields.
        share: the ingest task's :class:`..daily.HitShare` of ``events`` (None: none): its
            masks and product entries are used in place of ``mask_fn`` / ``products_fn``,
            and it is handed the customer coding (the default partials' first-seen coding
            is derived from it).

    Returns:
        The wide state table, one row per customer with a hit, sorted by customer_id.
    """
    from ..definitions import Filter

    if rows is not None:  # an Arrow or numpy array of positions
        rows = np.asarray(rows.to_numpy(zero_copy_only=False) if hasattr(rows, "to_numpy")
                          else rows, dtype=np.int64)
    events = events.combine_chunks()
    n = events.num_rows
    cust = events.column("customer_id").combine_chunks().cast(pa.large_string())
    named = None
    if cust.null_count:
        # hits without a customer are left out of every key's rows (masks), not filtered
        # out of the table: that would copy every column (~8 ms a file of 100 k hits)
        named = _bools(pc.is_valid(cust))
        if rows is None:  # positions among the hits with a customer
            rows = np.cumsum(named) - 1
        from ..strings import packed_codes

        # (no filtered copy of the ids; a file's customers are mostly distinct: sorted)
        packed = packed_codes(cust, keep=named, mostly_distinct=True)
        customers, named_codes = packed if packed is not None else \
            _rank(cust.filter(pa.array(named)))[::-1]
        codes = np.full(n, -1, np.int64)
        codes[named] = named_codes
    else:  # each row's customer code and the sorted customers: shared by every key
        codes, customers = _rank(cust, mostly_distinct=True)
        named_codes = codes
    if share is not None:
        share.customer_codes = (named, named_codes, len(customers))
        mask_fn, products_fn = share.mask, share.products
    rows = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
    masks: dict[str, np.ndarray] = {}
    for key in keys:
        if key.filter_json not in masks:
            spec = json.loads(key.filter_json)
            conds = spec.pop("where", None) or []
            mask = mask_fn(events, Filter(**spec)) if n else np.zeros(0, bool)
            for cond in conds:  # (new arrays: a shared mask is not changed)
                mask = mask & _where_mask(events, cond, where_types[cond["column"]])
            if named is not None:
                mask = mask & named
            masks[key.filter_json] = mask
    need = np.zeros(n, dtype=bool)
    for key in keys:
        if key.pairs:
            need |= masks[key.filter_json]
    prod = products_fn(events, need) if any(k.pairs for k in keys) else None
    hit_time = events.column("hit_time_gmt").to_numpy(zero_copy_only=False) if n else \
        np.zeros(0, np.int64)
    out = {"customer_id": customers}
    lists: dict[tuple, dict[str, pa.Array]] = {}  # set / counts / sketch keys of one value
    picked: dict[tuple, tuple] = {}  # keys over the same values (field, rows, filter)
    for key in keys:
        share = (key.field, key.ftype, key.pairs, key.filter_json)
        if share not in picked:
            rows_of, values, sel = _key_values(key, events, masks[key.filter_json], prod, n)
            picked[share] = (rows_of, values, sel, codes[rows_of])
        rows_of, values, sel, vcodes = picked[share]
        if key.kind in ("count", "moments"):
            out.update(_summed_partial(key, vcodes, len(customers), values))
            continue
        if key.kind in ("first", "last"):  # the winners by integer order, then their keys
            if key.pairs:
                prow = prod["row"]
                first_of = np.r_[0, np.flatnonzero(np.diff(prow) != 0) + 1] if len(prow) \
                    else np.zeros(0, np.int64)
                position = np.arange(len(prow)) - np.repeat(
                    first_of, np.diff(np.r_[first_of, len(prow)]))
                position = position[sel]
            else:
                position = np.zeros(len(rows_of), np.int64)
            out.update(_first_last_partial(key, vcodes, customers, values, file_id,
                                           hit_time[rows_of], rows[rows_of], position))
            continue
        if key.kind in ("set", "counts", "sketch"):
            # keys over the same values share their ranks and lists
            if share not in lists:
                lists[share] = _counted_lists(vcodes, len(customers), values)
            out.update(_partial_lists(key, customers, lists[share]))
            continue
        out.update(_coded_state(key, key.name, vcodes, customers, values, None))
    return pa.table(out)


def _key_values(key: StateKey, events: pa.Table, mask: np.ndarray, prod: dict | None,
                n: int) -> tuple[np.ndarray, pa.Array | None, np.ndarray | None]:
    """The rows a key aggregates (hits, or (hit, product) pairs: their hit rows) that have a
    value of its field (every matching row when it has no field), and those values, typed
    (None: no field); for pairs, which pairs were taken. Every kind skips null values, so
    they are dropped here once, before any copy, for all the keys over these values."""
    if key.pairs:
        prow = prod["row"] if prod is not None else np.zeros(0, np.int64)
        sel = mask[prow] if len(prow) else np.zeros(0, bool)
        values = None
        if key.field is not None:
            column = prod[key.field]
            if key.field == "product_id":
                if column.null_count:
                    sel = sel & _bools(pc.is_valid(column))
                # (every pair of an unfiltered key: no copy)
                values = column if sel.all() else column.filter(pa.array(sel))
            else:
                values = pa.array(column[sel])
                if values.null_count:
                    sel = sel.copy()
                    sel[np.flatnonzero(sel)[~_bools(pc.is_valid(values))]] = False
                    values = values.drop_null()
            values = values.cast(key.value_type)
        return prow[sel], values, sel
    values = None
    if key.field == "event_date":
        column = events.column("event_date").combine_chunks().cast(pa.date32())
    elif key.field is not None:
        raw = events.column(key.field) if key.field in events.column_names else None
        if raw is None or raw.null_count == n:  # (a column this file lacks): no typing
            return np.zeros(0, np.int64), pa.array([], key.value_type), None
        if key.ftype == "string" and pa.types.is_string(raw.type):
            # the rows first, then the cast of their strings only (most hits lack a
            # sparse column's value): the same values as casting every row, then taking
            raw = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
            if raw.null_count:
                mask = mask & _bools(pc.is_valid(raw))
            rows_of = np.flatnonzero(mask)
            values = raw if len(rows_of) == n else raw.take(pa.array(rows_of))
            return rows_of, values.cast(key.value_type), None
        column = _typed(raw, key.ftype)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
    if key.field is not None and column.null_count == n:  # (a column this file lacks)
        return np.zeros(0, np.int64), column.slice(0, 0), None
    if key.field is not None and column.null_count:
        mask = mask & _bools(pc.is_valid(column))
    rows_of = np.flatnonzero(mask)
    if key.field is not None:  # every hit (no filter, no null): no copy
        values = column if len(rows_of) == n else column.take(pa.array(rows_of))
    return rows_of, values, None


def _counted_lists(codes: np.ndarray, m: int, values: pa.Array) -> dict[str, pa.Array]:
    """Per customer code 0..m-1 its distinct values (``v``, a list of codes into a sorted
    dictionary) and how many rows had each (``n``): what a file's set, counts and sketch
    partials over the same values all start from (:func:`_list_state` of each)."""
    from .runs import distinct_grouped

    if not len(values):  # (a key matching nothing in this file: no list built)
        return {"v": pa.nulls(m, _LIST), "n": pa.nulls(m, pa.list_(pa.int64())), "longest": 0}
    vcode, dictionary = _rank(_as_strings(values))
    # the distinct (customer, value) pairs, sorted, each with its number of rows: a counting
    # sort by customer, then each customer's few values (no sort of all the pairs)
    counted = distinct_grouped(codes, vcode, np.ones(len(vcode), np.int64), m)
    lists = _coded_lists(counted, dictionary, m)
    offsets = lists["v"].offsets.to_numpy()  # (a customer without values: size 0)
    lists["longest"] = int(np.diff(offsets).max()) if m else 0
    return lists


def _partial_lists(key: StateKey, customers: pa.Array, lists: dict[str, pa.Array]
                   ) -> dict[str, pa.Array]:
    """A set / counts / sketch partial from :func:`_counted_lists`: the counted pairs'
    values are the distinct pairs (every count is at least 1)."""
    fields = state_columns(key, key.name)
    if key.kind == "sketch" and lists["longest"] <= EXACT_LIMIT:
        # every list exact (a file's customers rarely have more): what _sketchify gives
        return {fields[0].name: lists["v"], fields[1].name: pa.nulls(len(customers),
                                                                     fields[1].type)}
    return _list_columns(key.kind, fields, customers, lists, [])


def _list_columns(kind: str, fields: list[pa.Field], customers: pa.Array,
                  lists: dict[str, pa.Array], sketches: list[tuple[np.ndarray, pa.Array]]
                  ) -> dict[str, pa.Array]:
    """A set / counts / sketch state's columns from its per-customer lists (``v``, ``n``);
    a sketch also folds in ``sketches`` (:func:`_sketchify`)."""
    if kind == "set":
        return {fields[0].name: lists["v"]}
    if kind == "counts":
        return {fields[0].name: lists["v"], fields[1].name: lists["n"]}
    t = _sketchify(pa.table({"customer_id": customers, "v": lists["v"]}), sketches)
    return {f.name: t.column(f.name.rsplit(".", 1)[1]).cast(f.type) for f in fields}


#: A file's (line, product position) as one int64 ``line * _POSITIONS + position`` while the
#: line is below :data:`_LINES` (else the three parts are compared one by one).
_POSITIONS = 10 ** 5
_LINES = (2 ** 63 - 1) // _POSITIONS


def _first_last_partial(key: StateKey, codes: np.ndarray, customers: pa.Array,
                        values: pa.Array, file_id: str, hit: np.ndarray, row: np.ndarray,
                        position: np.ndarray) -> dict[str, pa.Array]:
    """A file's first / last state: per customer the value of its smallest (largest) (hit
    time, line, product position), ties to the earlier (later) row, with that hit time
    (``o``) and the file id (``f``: a dictionary of this one file) beside it."""
    hit = np.asarray(hit, np.int64)
    row = np.asarray(row, np.int64)
    position = np.asarray(position, np.int64)
    largest = key.kind == "last"
    if len(codes) and (int(position.min()) < 0 or int(position.max()) >= _POSITIONS
                       or int(row.min()) < 0 or int(row.max()) >= _LINES):
        win = _extreme_rows(codes, [hit, row, position], largest)
    else:  # (line, position) as one int64: one numba pass
        win = _extreme_rows(codes, [hit, row * _POSITIONS + position], largest)
    m = len(customers)
    fields = state_columns(key, key.name)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    # the winners' values (in customer code order) laid out on every customer
    v = _spread(values.take(pa.array(win)).cast(fields[0].type), codes[win], m)
    present = np.zeros(m, bool)
    present[codes[win]] = True
    # the hit times and file codes built from buffers: no take, one shared validity bitmap
    validity = None if len(win) == m else pa.py_buffer(np.packbits(present,
                                                                   bitorder="little"))
    times = np.zeros(m, np.int64)
    times[codes[win]] = hit[win]
    o = pa.Array.from_buffers(pa.int64(), m, [validity, pa.py_buffer(times)],
                              null_count=m - len(win))
    indices = pa.Array.from_buffers(pa.int32(), m, [validity, pa.py_buffer(
        np.zeros(m, np.int32))], null_count=m - len(win))
    f = pa.DictionaryArray.from_arrays(indices, pa.array([file_id], pa.large_string()))
    return {fields[0].name: v, fields[1].name: o, fields[2].name: f}


def _extreme_rows(codes: np.ndarray, keys: list[np.ndarray], largest: bool) -> np.ndarray:
    """Per customer code present (ascending), the row whose ``keys`` (compared in order) are
    smallest (largest); among equal rows the first (last), as a stable sort would give.
    A few ``ufunc.at`` passes over the candidates left: no sort."""
    if not len(codes):
        return np.zeros(0, np.int64)
    if len(keys) == 2:  # a file's first/last: one pass (numba)
        from .partial_kernels import extreme_rows

        return extreme_rows(codes, keys[0], keys[1], largest)
    m = int(codes.max()) + 1
    pick = np.maximum if largest else np.minimum
    cand = np.arange(len(codes))
    for k in [*keys, np.arange(len(codes))]:
        start = np.iinfo(np.int64).min if largest else np.iinfo(np.int64).max
        best = np.full(m, start, np.int64)
        pick.at(best, codes[cand], k[cand])
        cand = cand[k[cand] == best[codes[cand]]]
    # one row per code is left (the row index breaks every tie), in row order: by code
    return cand[np.argsort(codes[cand], kind="stable")]


# -- per-key states over shared customer codes (no string group-by per key) ------------------
def _place(gcodes: np.ndarray, m: int, columns: dict[str, pa.Array], prefix: str,
           fields: list[pa.Field]) -> dict[str, pa.Array]:
    """Per-group columns (one row per code in ``gcodes``) placed on every customer code
    0..m-1; a customer without a group is null (as :func:`_align` leaves it)."""
    gcodes = np.asarray(gcodes, np.int64)
    order = None
    if len(gcodes) > 1 and bool((gcodes[1:] < gcodes[:-1]).any()):
        order = np.argsort(gcodes, kind="stable")
        gcodes = gcodes[order]
    out = {}
    for field in fields:
        comp = field.name.rsplit(".", 1)[1]
        col = columns[comp]
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        col = col.cast(field.type)
        out[field.name] = _spread(col if order is None else col.take(pa.array(order)),
                                  gcodes, m)
    return out


_UINTS = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def _spread(col: pa.Array, gcodes: np.ndarray, m: int) -> pa.Array:
    """``col`` (one value per code of ``gcodes``, ascending, distinct) on every code 0..m-1,
    null elsewhere: fixed-width values and large strings are laid out from their buffers (no
    take over m masked indices); other types, or values with nulls, by a take."""
    k = len(gcodes)
    t = col.type
    if not k:
        return pa.nulls(m, t)
    if not col.null_count and (pa.types.is_large_string(t) or (
            pa.types.is_primitive(t) and t.bit_width in _UINTS)):
        present = np.zeros(m, bool)
        present[gcodes] = True
        validity = None if k == m else pa.py_buffer(np.packbits(present, bitorder="little"))
        bufs = col.buffers()
        if pa.types.is_large_string(t):
            offsets = np.frombuffer(bufs[1], np.int64, k + 1, 8 * col.offset)
            sizes = np.zeros(m, np.int64)
            sizes[gcodes] = np.diff(offsets)
            placed = np.zeros(m + 1, np.int64)
            np.cumsum(sizes, out=placed[1:])
            data = bufs[2][int(offsets[0]):int(offsets[-1])] if bufs[2] is not None \
                else pa.py_buffer(b"")
            return pa.Array.from_buffers(t, m, [validity, pa.py_buffer(placed), data],
                                         null_count=m - k)
        width = _UINTS[t.bit_width]
        values = np.zeros(m, width)
        values[gcodes] = np.frombuffer(bufs[1], width, k,
                                   col.offset * np.dtype(width).itemsize)
        return pa.Array.from_buffers(t, m, [validity, pa.py_buffer(values)],
                                     null_count=m - k)
    pos = np.full(m, -1, np.int64)
    pos[gcodes] = np.arange(k)
    return col.take(pa.array(pos, mask=pos < 0))


def _starts(sorted_codes: np.ndarray) -> np.ndarray:
    """The first row of each run of equal codes."""
    if not len(sorted_codes):
        return np.zeros(0, np.int64)
    return np.r_[0, np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1]


def _rank(strings, mostly_distinct: bool = False) -> tuple[np.ndarray, pa.Array]:
    """Each string's code in the sorted distinct strings, and those (the dictionary);
    ``mostly_distinct``: few strings repeat (see :func:`..strings.packed_codes`)."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    strings = strings.cast(pa.large_string())
    if strings.null_count:  # never in states or partials (nulls are dropped before)
        raise ValueError("a null value among a set's values")
    if not len(strings):
        return np.zeros(0, np.int64), pa.array([], pa.large_string())
    from ..strings import packed_codes

    packed = packed_codes(strings, mostly_distinct=mostly_distinct)  # ids of <= 8 bytes
    if packed is not None:
        return packed[1], packed[0]
    # one hash pass (the distinct values and each string's index among them), then only the
    # distinct values sorted: no second hash lookup of every string (pc.index_in)
    encoded = pc.dictionary_encode(strings)
    distinct = encoded.dictionary
    order = _string_order(distinct)
    rank = np.empty(len(distinct), np.int64)
    rank[order] = np.arange(len(distinct))
    return rank[encoded.indices.to_numpy(zero_copy_only=False)], distinct.take(pa.array(order))


def _string_order(values: pa.Array) -> np.ndarray:
    """The permutation that sorts distinct large strings bytewise (as ``pc.sort_indices``).
    When their first 8 bytes (zero-padded) already tell every two apart, as short ids'
    do, that is one numpy sort of 8-byte big-endian integers; otherwise Arrow's string sort."""
    n = len(values)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    offsets = np.frombuffer(values.buffers()[1], np.int64, n + 1, 8 * values.offset)
    data = np.frombuffer(values.buffers()[2], np.uint8) if values.buffers()[2] is not None \
        else np.zeros(0, np.uint8)
    lengths = np.minimum(np.diff(offsets), 8)
    inside = np.arange(8) < lengths[:, None]
    prefix = np.zeros((n, 8), np.uint8)
    prefix[inside] = data[(offsets[:-1, None] + np.arange(8))[inside]]
    keys = prefix.view(">u8").ravel()
    order = np.argsort(keys)  # (not stable: only used when the keys are distinct)
    ordered = keys[order]
    if (ordered[1:] == ordered[:-1]).any():  # a shared 8-byte prefix: compare whole strings
        return pc.sort_indices(values).to_numpy(zero_copy_only=False).astype(np.int64)
    return order


def _flat_codes(columns: list) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """The values of list columns (one per input, their rows concatenated in order) as codes
    into one sorted dictionary: (codes, each value's row, dictionary). Each input's own small
    dictionary is mapped once; a plain string list (a hand-built state) is encoded first."""
    dicts, idx, parents = [], [], []
    row = 0
    for column in columns:
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        for chunk in chunks:
            flat = pc.list_flatten(chunk)
            if len(flat):
                if not pa.types.is_dictionary(flat.type):
                    flat = pc.dictionary_encode(flat.cast(pa.large_string()))
                dicts.append(flat.dictionary.cast(pa.large_string()))
                idx.append(flat.indices.to_numpy(zero_copy_only=False).astype(np.int64))
                parents.append(pc.list_parent_indices(chunk).to_numpy(
                    zero_copy_only=False).astype(np.int64) + row)
            row += len(chunk)
    if not dicts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), pa.array([], pa.large_string())
    if len(dicts) == 1 and not dicts[0].null_count and _strictly_ascending(dicts[0]):
        return idx[0], parents[0], dicts[0]  # one input, its dictionary as it is (a state's)
    whole = pc.unique(pa.concat_arrays(dicts)).sort()
    if len(dicts) == 1 and whole.equals(dicts[0]):  # one input, its dictionary as it is
        return idx[0], parents[0], whole
    codes = [pc.index_in(d, value_set=whole).to_numpy(zero_copy_only=False).astype(np.int64)[i]
             for d, i in zip(dicts, idx, strict=True)]
    return np.concatenate(codes), np.concatenate(parents), whole


def _strictly_ascending(values: pa.Array) -> bool:
    """Whether large strings without nulls ascend strictly, bytewise (a state's dictionary
    does: then it is its own sorted distinct values, no hash and sort to find out)."""
    from .runs import strictly_ascending

    return strictly_ascending(*_string_buffers(values))


def _distinct_coded(codes: np.ndarray, vcode: np.ndarray, nv: int,
                    counts: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The distinct (customer code, value code) pairs sorted by customer then value, with
    ``counts`` summed per pair and zero sums dropped when given: ``c``, ``v`` (and ``n``).
    Two integers per pair: a sort instead of a hash group-by and a string sort per key;
    one or two sorted runs (a merge's inputs) are merged in one pass (:mod:`.runs`)."""
    if len(codes) > 64:
        from .runs import distinct_runs

        merged = distinct_runs(codes, vcode, counts)
        if merged is not None:
            return merged
    pair = codes * max(nv, 1) + vcode
    if counts is None:
        uniq = _sorted_unique(pair)
        return {"c": uniq // max(nv, 1), "v": uniq % max(nv, 1)}
    # a stable sort (timsort: merged states are sorted runs, O(n) to join), then run sums
    order = np.argsort(pair, kind="stable")
    ordered = pair[order]
    starts = _starts(ordered)
    uniq = ordered[starts]
    summed = np.add.reduceat(counts[order], starts) if len(starts) else np.zeros(0, np.int64)
    keep = summed != 0
    uniq, summed = uniq[keep], summed[keep]
    return {"c": uniq // max(nv, 1), "v": uniq % max(nv, 1), "n": summed}


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values, ascending: a stable sort (timsort, which joins the sorted runs a
    merge of states concatenates in linear time) then the run starts. numpy's own
    ``np.unique`` is 10-150x slower here (numpy 2.4)."""
    ordered = np.sort(values, kind="stable")
    return ordered[_starts(ordered)]


def _coded_lists(t: dict[str, np.ndarray], dictionary: pa.Array, m: int
                 ) -> dict[str, pa.Array]:
    """Pairs sorted by (c, v) as one list per customer code 0..m-1, built in place (null for
    a code without pairs, as :func:`_place` leaves it; no take): ``v`` as codes into the
    dictionary's values that remain (still sorted), ``n`` (when given) as ints."""
    c, v = t["c"], t["v"]
    sizes = np.bincount(c, minlength=m)
    offsets = pa.array(np.r_[0, np.cumsum(sizes)].astype(np.int32))
    none = pa.array(sizes == 0)
    used = np.zeros(len(dictionary), bool)
    used[v] = True
    if not used.all():  # the dictionary holds exactly the values present
        v = (np.cumsum(used) - 1)[v]
        dictionary = dictionary.filter(pa.array(used))
    values = pa.DictionaryArray.from_arrays(pa.array(v.astype(np.int32)),
                                            dictionary.cast(pa.large_string()))
    out = {"v": pa.ListArray.from_arrays(offsets, values, mask=none)}
    if "n" in t:
        out["n"] = pa.ListArray.from_arrays(offsets, pa.array(t["n"], pa.int64()), mask=none)
    return out


def _numeric_extreme(codes: np.ndarray, values: pa.Array, largest: bool
                     ) -> tuple[np.ndarray, pa.Array] | None:
    """Per customer code present, its smallest (largest) value, for int or float values
    without nulls: (codes, values); None for other types, or floats with a NaN or a -0.0,
    where only Arrow's own min/max rules give the same bits. One numba pass: no sort."""
    if values.null_count or not (pa.types.is_integer(values.type)
                                 or pa.types.is_floating(values.type)):
        return None
    x = values.to_numpy(zero_copy_only=False)
    if x.dtype.kind == "f" and (np.isnan(x).any() or (np.signbit(x) & (x == 0)).any()):
        return None
    if not len(x):
        return codes[:0], values
    from .partial_kernels import extreme_values

    extreme, has = extreme_values(codes, x, int(codes.max()) + 1, largest)
    present = np.flatnonzero(has)
    return present, pa.array(extreme[present], values.type)


def _coded_state(key: StateKey, prefix: str, codes: np.ndarray, customers: pa.Array,
                 values: pa.Array, order: pa.Array | None,
                 counts: pa.Array | None = None,
                 sketches: tuple[pa.Array, pa.Array] | None = None) -> dict[str, pa.Array]:
    """A min / max / set / sketch / counts state from rows (customer code, non-null value or
    count), on every customer: the values :func:`_aggregate` (a partial) or :func:`merge`
    (states) give, grouped on int codes instead of ids (first / last:
    :func:`_first_last_partial` and :func:`_first_last_merged`).

    Args:
        key: the state key.
        prefix: its column prefix.
        codes: each row's customer code (its position in ``customers``).
        customers: the sorted customer ids.
        values: each row's value (min/max) or string (set, sketch, counts).
        order: None (first/last order keys are not grouped here).
        counts: counts: each row's count (None: 1 each).
        sketches: sketch: (customer codes, sketch bytes) of states that hold one.

    Returns:
        The key's state columns, one value per customer.
    """
    k = key.kind
    m = len(customers)
    fields = state_columns(key, prefix)
    codes = np.asarray(codes, np.int64)
    if k in ("min", "max"):
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        win = _numeric_extreme(codes, values, k == "max")
        if win is not None:  # numbers: a numpy reduce, not an Acero plan per key
            return _place(win[0], m, {"v": win[1]}, prefix, fields)
        g = pa.table({"c": codes, "v": values}).group_by("c", use_threads=False).aggregate(
            [("v", k)])
        return _place(g.column("c").to_numpy(), m, {"v": g.column(f"v_{k}")}, prefix, fields)
    vcode, dictionary = _rank(_as_strings(values) if counts is None else values)
    return _list_state(key, prefix, codes, customers, vcode, dictionary,
                       None if counts is None else
                       pc.fill_null(counts.cast(pa.int64()), 0).to_numpy(zero_copy_only=False),
                       sketches)


def _list_state(key: StateKey, prefix: str, codes: np.ndarray, customers: pa.Array,
                vcode: np.ndarray, dictionary: pa.Array, counts: np.ndarray | None,
                sketches: tuple[np.ndarray, pa.Array] | None) -> dict[str, pa.Array]:
    """A set / sketch / counts state from rows (customer code, value code into the sorted
    ``dictionary``, count (counts; None: 1 each)), on every customer (see
    :func:`_coded_state`)."""
    k = key.kind
    m = len(customers)
    fields = state_columns(key, prefix)
    if k in ("set", "sketch"):
        lists = _coded_lists(_distinct_coded(codes, vcode, len(dictionary)), dictionary, m)
        # the exact lists on every customer (null: none), then (a sketch) big ones or ones
        # merged with a sketch become one HLL sketch
        extra = [sketches] if sketches is not None and len(sketches[0]) else []
        return _list_columns(k, fields, customers, lists, extra)
    # counts: per (customer, value) summed, zeros dropped, values ascending
    ones = counts if counts is not None else np.ones(len(codes), np.int64)
    lists = _coded_lists(_distinct_coded(codes, vcode, len(dictionary), ones), dictionary, m)
    return _list_columns(k, fields, customers, lists, [])


def _summed_partial(key: StateKey, codes: np.ndarray, m: int, values) -> dict[str, pa.Array]:
    """A count / moments key's partial from its matching rows' customer codes and values
    (as :func:`_aggregate` then :func:`_align`, without a string group-by): counts by
    ``np.bincount``; float sums by its weights (row order: the bits of Arrow's hash sum);
    int sums one value at a time in row order (numba), an overflow of int64 raising."""
    fields = state_columns(key, key.name)
    if key.kind == "count":
        return {fields[0].name: pa.array(np.bincount(codes, minlength=m), pa.int64())}
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        valid = _bools(pc.is_valid(values))
        codes, values = codes[valid], values.filter(pa.array(valid))
    f = values.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    # (types given: an empty bincount is int64 even with float weights)
    out = {fields[0].name: pa.array(np.bincount(codes, minlength=m), pa.int64())}
    if pa.types.is_floating(fields[1].type):
        out[fields[1].name] = pa.array(np.bincount(codes, weights=f, minlength=m),
                                       pa.float64())
    else:
        from .runs import add_sums

        total, wraps = np.zeros(m, np.int64), np.zeros(m, np.int64)
        add_sums(total, wraps, codes, values.cast(pa.int64()).to_numpy(zero_copy_only=False))
        if wraps.any():
            i = int(np.flatnonzero(wraps)[0])
            exact = int(total[i]) + int(wraps[i]) * 2 ** 64
            raise AggregationOverflowError(
                f"an int sum overflows int64 ({exact} is beyond +-9.2e18); sum a float column "
                "instead or narrow the feature's window/filter")
        out[fields[1].name] = pa.array(total, pa.int64())
    out[fields[2].name] = pa.array(np.bincount(codes, weights=f * f, minlength=m),
                                   pa.float64())
    return out


def _as_strings(values) -> pa.Array:
    if pa.types.is_date(values.type):
        return values.cast(pa.string()).cast(pa.large_string())
    if pa.types.is_boolean(values.type):
        return pc.if_else(values, "true", "false").cast(pa.large_string())
    return values.cast(pa.large_string())


def _codes(cust: pa.Array, customers: pa.Array) -> np.ndarray:
    """Each row's customer as its position in ``customers`` (sorted, unique, every row's
    customer among them): one hash lookup shared by every key's group-by."""
    if not len(cust):
        return np.zeros(0, np.int64)
    return pc.index_in(cust, value_set=customers).to_numpy(zero_copy_only=False).astype(
        np.int64, copy=False)


def _lists(t: pa.Table) -> pa.Table:
    """Sorted (customer, v) rows as one list of v per customer."""
    if not t.num_rows:
        return pa.table({"customer_id": pa.array([], pa.large_string()),
                         "v": pa.array([], pa.list_(pa.large_string()))})
    c = t.column("customer_id").combine_chunks()
    starts = np.r_[0, np.flatnonzero(_bools(pc.not_equal(c[1:], c[:-1]))) + 1] \
        if len(c) > 1 else np.zeros(1, np.int64)
    offsets = pa.array(np.r_[starts, len(c)].astype(np.int32))
    return pa.table({"customer_id": c.take(pa.array(starts)),
                     "v": pa.ListArray.from_arrays(offsets, t.column("v").combine_chunks())})


def _sketchify(t: pa.Table, sketches: list[tuple[np.ndarray, pa.Array]]) -> pa.Table:
    """Exact lists of at most EXACT_LIMIT values stay; a larger one, or a customer that has a
    sketch among ``sketches`` ((row of ``t``, sketch bytes) arrays), becomes one HLL sketch
    (the rows found with numpy: Python runs only per sketch built)."""
    n = t.num_rows
    lengths = pc.fill_null(pc.list_value_length(t.column("v")), 0).to_numpy(
        zero_copy_only=False) if n else np.zeros(0)
    big = lengths > EXACT_LIMIT
    rows = [np.asarray(r, np.int64) for r, _ in sketches]
    if not any(len(r) for r in rows) and not big.any():
        # every list exact and no sketch to merge (most partials): no Python loop per id
        return pa.table({"customer_id": t.column("customer_id"), "v": t.column("v"),
                         "h": pa.nulls(n, pa.large_binary())})
    import datasketches as ds

    extra: dict[int, list[bytes]] = {}  # row -> its sketches, in the inputs' order
    for r, blobs in zip(rows, (b for _, b in sketches), strict=True):
        for i, b in zip(r.tolist(), blobs.to_pylist(), strict=True):
            if b is not None:
                extra.setdefault(i, []).append(b)
                big[i] = True
    hs: list[bytes | None] = [None] * n
    vlists = t.column("v")
    if isinstance(vlists, pa.ChunkedArray):
        vlists = vlists.combine_chunks()
    todo = np.flatnonzero(big)
    # the big rows' values decoded in one call, then sliced per row
    chosen = vlists.take(pa.array(todo))
    values = pc.list_flatten(chosen)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    values = values.to_pylist()
    ends = np.cumsum(pc.fill_null(pc.list_value_length(chosen), 0).to_numpy(
        zero_copy_only=False)).tolist()
    for j, i in enumerate(todo.tolist()):
        union = ds.hll_union(HLL_LG_K)
        sk = ds.hll_sketch(HLL_LG_K, ds.tgt_hll_type.HLL_8)
        for value in values[ends[j - 1] if j else 0:ends[j]]:
            sk.update(value)
        union.update(sk)
        for blob in extra.get(i, ()):
            union.update(ds.hll_sketch.deserialize(blob))
        hs[i] = union.get_result(ds.tgt_hll_type.HLL_8).serialize_compact()
    # a sketch replaces the exact list: null (a take, not if_else on lists)
    v = vlists.take(pa.array(np.arange(n), mask=big))
    return pa.table({"customer_id": t.column("customer_id"), "v": v,
                     "h": pa.array(hs, pa.large_binary())})


def positions(customers: pa.Array, table: pa.Table) -> pa.Array:
    """For each of ``customers`` its row in ``table`` (null: none): what :func:`_align` takes
    with; computed once per table when many keys or features read it."""
    if not table.num_rows:
        return pa.nulls(len(customers), pa.int32())
    ids = _whole(table.column("customer_id"))
    customers = _whole(customers)
    if len(ids) == len(customers) and ids.type == customers.type and ids.equals(customers):
        return pa.array(np.arange(len(ids), dtype=np.int32))  # the same rows (a memcmp)
    if _is_text(ids.type) and _is_text(customers.type) and not ids.null_count \
            and not customers.null_count and len(customers):
        from .runs import sorted_positions

        # both sorted (states, tables): one merge-join pass, not a hash and a lookup each
        found = sorted_positions(*_string_buffers(customers), *_string_buffers(ids))
        if found is not None:
            return pa.array(found.astype(np.int32), mask=found < 0)
    return pc.index_in(customers, value_set=ids)


def same_rows(pos: pa.Array, table: pa.Table) -> bool:
    """Whether :func:`positions` ``pos`` are every row of ``table`` in order (then nothing
    is taken: the table's rows are the ids)."""
    return bool(table.num_rows and len(pos) == table.num_rows and not pos.null_count and
                (pos.to_numpy(zero_copy_only=False) == np.arange(len(pos))).all())


def _whole(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one array: its only chunk as it is (a memory-mapped state's: no copy of
    500 k rows per feature), else its chunks combined."""
    if isinstance(col, pa.ChunkedArray):
        return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_large_string(t) or pa.types.is_string(t)


def _align(part: pa.Table, customers: pa.Array, prefix: str,
           fields: list[pa.Field], pos: pa.Array | None = None,
           same: bool | None = None) -> dict[str, pa.Array]:
    """A key's per-customer columns placed on ``customers`` (missing: zero or null);
    ``pos``: :func:`positions` of ``customers`` in ``part`` when already known, ``same``:
    whether those are every row of ``part`` in order (:func:`same_rows`; None: checked
    here), when the caller aligns many columns over one ``pos``."""
    if pos is None:
        pos = positions(customers, part)
    if same is None:  # then nothing is taken: the part's rows are the customers
        same = same_rows(pos, part)
    out = {}
    for field in fields:
        comp = field.name.rsplit(".", 1)[1]
        col = _whole(part.column(comp)).cast(field.type) if part.num_rows else \
            pa.array([], field.type)
        taken = col if same else col.take(pos) if len(customers) else pa.array([], field.type)
        if comp in ("n", "s", "ss") and taken.null_count:
            taken = pc.fill_null(taken, pa.scalar(0, field.type))
        out[field.name] = taken
    return out


# -- merging states --------------------------------------------------------------------------
def negate(table: pa.Table, keys: list[tuple[StateKey, str]]) -> pa.Table:
    """The inverse of an invertible (count / moments) state table: every component negated."""
    cols = {"customer_id": table.column("customer_id")}
    for key, prefix in keys:
        for field in state_columns(key, prefix):
            cols[field.name] = pc.negate(table.column(field.name))
    return pa.table(cols)


def merge(tables: list[pa.Table], keys: list[tuple[StateKey, str]]) -> pa.Table:
    """Merge state tables (same columns for ``keys``: (state key, column prefix)), in order.

    Args:
        tables: state tables, each sorted by customer_id; later ones are added after earlier
            ones (float sums add in this order: the same bits on every run).
        keys: the state keys and their column prefixes.

    Returns:
        One row per customer of any input, sorted by customer_id; count/moment states whose
        ``n`` came back to 0 are exactly 0 (no float residue).
    """
    every = fields = [f for key, prefix in keys for f in state_columns(key, prefix)]
    names = ["customer_id", *(f.name for f in fields)]
    tables = [t for t in tables if t.num_rows]
    if len(tables) > 1:  # a key no input has (left out of every partial: empty) is empty
        have = set().union(*(t.column_names for t in tables))
        absent = {prefix for key, prefix in keys
                  if not any(f.name in have for f in state_columns(key, prefix))}
        if absent:
            keys = [(key, prefix) for key, prefix in keys if prefix not in absent]
            fields = [f for key, prefix in keys for f in state_columns(key, prefix)]
            names = ["customer_id", *(f.name for f in fields)]
    tables = [_complete(t, fields, names) for t in tables]
    if not tables:
        return empty_state(fields)
    if len(tables) == 1:
        return tables[0]
    # column by column over the inputs' chunks (memory-mapped files): no copy of every input
    # at once; the value lists are read per input (their dictionaries differ)
    customers, codes = _merged_customers(_chunks(tables, "customer_id"))
    out = {"customer_id": customers}
    unified: list = []  # the list keys' dictionaries unified so far (shared by equal ones)
    seen: list = []  # and their lists (a set and a sketch of the same values share them)
    for key, prefix in keys:
        out.update(_merged_key(key, prefix, tables, customers, codes, unified, seen))
    if len(fields) < len(every):  # the absent keys' columns: what merging empty ones gives
        return pa.table({"customer_id": customers, **{
            f.name: out[f.name] if f.name in out else empty_column(f, len(customers))
            for f in every}})
    return pa.table(out)


_LISTS = ("set", "sketch", "counts")


def _merged_key(key: StateKey, prefix: str, tables: list[pa.Table], customers: pa.Array,
                codes: np.ndarray, unified: list, seen: list | None = None
                ) -> dict[str, pa.Array]:
    """One key's merged columns (see :func:`merge`) over the customers and each input row's
    customer code; ``unified`` and ``seen``: what the list keys merged before share (see
    :func:`_merged_value_codes`, :func:`_merged_lists`)."""
    comp = {f.name.rsplit(".", 1)[1]: f.name for f in state_columns(key, prefix)}
    k = key.kind
    m = len(customers)
    if k in _LISTS:  # every row, as integer pairs (cheap to redo)
        vcode, parent, dictionary = _merged_value_codes(
            [t.column(comp["v"]) for t in tables], unified)
        sketches = counts = None
        if k == "sketch":  # the rows holding a sketch, chunk by chunk (most hold none)
            rows, blobs, at = [], [], 0
            for chunk in _chunks(tables, comp["h"]):
                if chunk.null_count < len(chunk):
                    has = _bools(pc.is_valid(chunk))
                    rows.append(np.flatnonzero(has) + at)
                    blobs.append(chunk.filter(pa.array(has)))
                at += len(chunk)
            sketches = (codes[np.concatenate(rows)] if rows else np.zeros(0, np.int64),
                        pa.concat_arrays(blobs) if blobs else pa.array([], pa.large_binary()))
        if k == "counts":
            flat = [pc.list_flatten(c).to_numpy(zero_copy_only=False)
                    for c in _chunks(tables, comp["c"])]
            counts = np.concatenate(flat).astype(np.int64) if flat else np.zeros(0, np.int64)
        return _merged_lists(key, prefix, codes[parent], customers, vcode, dictionary,
                             counts, sketches, seen)
    if k in ("count", "moments"):  # sums over the shared customer codes, in input order
        cols = _summed_merged(key, prefix, tables, codes, m)
        if k == "moments":  # an emptied window: exactly zero, not float residue
            empty = pc.equal(cols[comp["n"]], 0)
            for c in ("s", "ss"):
                cols[comp[c]] = pc.if_else(empty, pa.scalar(0, cols[comp[c]].type),
                                           cols[comp[c]])
        return cols
    if k not in ("first", "last", "min", "max"):
        raise ValueError(f"unknown state kind {k!r}")
    numbers = _numeric_merged(key, prefix, tables, codes, m) if k in ("min", "max") \
        else None
    if numbers is not None:  # ints and floats: one pass per chunk, no copy
        return numbers
    if k in ("first", "last"):  # the smallest / largest (time, file) per customer: no sort
        return _first_last_merged(key, prefix, tables, codes, m)
    col = {c: _combined(tables, n) for c, n in comp.items()}
    # a customer in one input keeps its row as it is (a lifetime state merged with a
    # small day recomputes only the day's customers)
    single = np.bincount(codes, minlength=m)[codes] == 1
    valid = _bools(pc.is_valid(col["v"])) & ~single
    state = _coded_state(key, prefix, codes[valid], customers,
                         col["v"].filter(pa.array(valid)), None)
    if single.any():
        state = _with_single_rows(state, col, codes, single, m, prefix,
                                  state_columns(key, prefix))
    return state


def _chunks(tables: list[pa.Table], name: str) -> list[pa.Array]:
    """A column's chunks over every input, in order."""
    return [c for t in tables for c in t.column(name).chunks]


def _combined(tables: list[pa.Table], name: str) -> pa.Array:
    """A column of every input as one array (one column at a time: a copy as big as one
    column, reused by the allocator, not one of every input at once)."""
    chunks = _chunks(tables, name)
    return pa.chunked_array(chunks, type=tables[0].schema.field(name).type).combine_chunks()


def _merged_customers(cust: pa.Array | list[pa.Array]) -> tuple[pa.Array, np.ndarray]:
    """The sorted distinct customers of ``cust`` and each row's code (its customer's position
    among them; ``cust``: one array or its chunks): short ids packed into integers whose
    sorted runs are joined (:func:`..strings.sorted_run_codes`), else one
    hash pass (a dictionary encoding) and only the distinct ids sorted, instead of a hash for
    the distinct ids and another to look each row up."""
    from ..strings import sorted_run_codes

    chunks = cust if isinstance(cust, list) else [cust]
    if not chunks:
        return pa.array([], pa.large_string()), np.zeros(0, np.int64)
    if all(_is_text(c.type) for c in chunks):
        # ids of at most 8 bytes: integer keys, sorted runs joined, no string hash
        packed = sorted_run_codes(chunks)
        if packed is not None:
            customers, codes = packed
            return customers.cast(chunks[0].type), codes
    cust = pa.chunked_array(chunks, type=chunks[0].type).combine_chunks() if isinstance(
        cust, list) else cust
    if not len(cust) or cust.null_count:
        customers = pc.unique(cust).sort()
        return customers, _codes(cust, customers)
    encoded = pc.dictionary_encode(cust)
    order = pc.sort_indices(encoded.dictionary).to_numpy(zero_copy_only=False)
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return (encoded.dictionary.take(pa.array(order)),
            rank[encoded.indices.to_numpy(zero_copy_only=False)])


def _summed_merged(key: StateKey, prefix: str, tables: list[pa.Table], codes: np.ndarray,
                   m: int) -> dict[str, pa.Array]:
    """A count / moments key's merged columns: per customer code the inputs' components added
    one value at a time in input order, read chunk by chunk (the bits ``np.bincount`` gives
    on the concatenated rows); an int sum beyond int64 raises."""
    from .runs import add_sums

    out = {}
    for field in state_columns(key, prefix):
        comp = field.name.rsplit(".", 1)[1]
        integer = not pa.types.is_floating(field.type)
        total = np.zeros(m, np.int64 if integer else np.float64)
        wraps = np.zeros(m, np.int64) if integer else None
        at = 0
        for chunk in _chunks(tables, field.name):
            x = chunk.cast(pa.int64() if integer else pa.float64())
            if x.null_count:
                x = pc.fill_null(x, pa.scalar(0, x.type))
            x = x.to_numpy(zero_copy_only=False)
            add_sums(total, wraps, codes[at:at + len(x)], x)
            at += len(x)
        if integer and comp != "n" and wraps.any():
            i = int(np.flatnonzero(wraps)[0])
            exact = int(total[i]) + int(wraps[i]) * 2 ** 64
            raise AggregationOverflowError(
                f"an int sum overflows int64 ({exact} is beyond +-9.2e18); sum a float column "
                "instead or narrow the feature's window/filter")
        out[field.name] = pa.array(total, field.type)
    return out


def _merged_value_codes(columns: list, unified: list) -> tuple[np.ndarray, np.ndarray,
                                                                pa.Array]:
    """:func:`_flat_codes` for a merge: the inputs' dictionaries unified by one coding of
    all their values (:func:`_merged_customers`), not a hash of the union then one per
    input; keys whose inputs hold the same dictionaries (several features of one field)
    share one unification (``unified``: (dictionaries, (dictionary, codes per input))
    of the keys merged so far)."""
    dicts, idx, parents = [], [], []
    row = 0
    for column in columns:
        for chunk in (column.chunks if isinstance(column, pa.ChunkedArray) else [column]):
            flat = pc.list_flatten(chunk)
            if len(flat):
                if not pa.types.is_dictionary(flat.type):
                    flat = pc.dictionary_encode(flat.cast(pa.large_string()))
                dicts.append(flat.dictionary.cast(pa.large_string()))
                idx.append(flat.indices.to_numpy(zero_copy_only=False))
                parents.append(pc.list_parent_indices(chunk).to_numpy(
                    zero_copy_only=False).astype(np.int64) + row)
            row += len(chunk)
    if not dicts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), pa.array([], pa.large_string())
    found = None
    for seen, result in unified:
        if len(seen) == len(dicts) and all(
                a is b or (len(a) == len(b) and a.equals(b)) for a, b in zip(seen, dicts)):
            found = result
            break
    if found is None:
        whole, codes = _merged_customers(pa.concat_arrays(dicts))
        ends = np.cumsum([len(d) for d in dicts])
        found = (whole, [codes[e - len(d):e] for d, e in zip(dicts, ends, strict=True)])
        unified.append((dicts, found))
    whole, maps = found
    codes = np.concatenate([mp[i] for mp, i in zip(maps, idx, strict=True)])
    return codes, np.concatenate(parents), whole


def _numeric_merged(key: StateKey, prefix: str, tables: list[pa.Table], codes: np.ndarray,
                    m: int) -> dict[str, pa.Array] | None:
    """A min / max key of numbers merged chunk by chunk (:func:`.runs.numeric_extremes`): the
    values the group-by path gives; None for other types, or a NaN / -0.0 among the values."""
    from .runs import numeric_extremes

    field = state_columns(key, prefix)[0]
    if not (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)):
        return None
    want = pa.int64() if pa.types.is_integer(field.type) else pa.float64()
    chunks = [_raw_numbers(chunk.cast(want)) for chunk in _chunks(tables, field.name)]
    found = numeric_extremes(codes, chunks, m, key.kind == "max")
    if found is None:
        return None
    values, valid = found
    return {field.name: pa.array(values, want, mask=~valid).cast(field.type)}


def _raw_numbers(x: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A fixed-width numeric array's values buffer and validity as numpy views (no fill: a
    null's slot holds whatever the buffer does, which readers must ignore)."""
    dtype = np.dtype(x.type.to_pandas_dtype())
    n = len(x)
    if not x.null_count:
        return x.to_numpy(zero_copy_only=False), np.ones(n, bool)
    bufs = x.buffers()
    if bufs[1] is None or bufs[1].size < (x.offset + n) * dtype.itemsize:  # no values kept
        filled = pc.fill_null(x, pa.scalar(0, x.type)).to_numpy(zero_copy_only=False)
        return filled, _bools(pc.is_valid(x))
    values = np.frombuffer(bufs[1], dtype, n, x.offset * dtype.itemsize)
    bits = np.frombuffer(bufs[0], np.uint8)
    valid = np.unpackbits(bits, count=x.offset + n, bitorder="little")[x.offset:]
    return values, valid.view(bool)


def _string_buffers(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """:func:`..strings.buffers` (zero-copy views) with the offsets widened to int64, as the
    merge kernels take them."""
    from ..strings import buffers

    offsets, data = buffers(strings)
    return offsets.astype(np.int64, copy=False), data


def _first_last_merged(key: StateKey, prefix: str, tables: list[pa.Table], codes: np.ndarray,
                       m: int) -> dict[str, pa.Array]:
    """A first / last key's merged columns: per customer the row of its smallest (largest)
    (hit time, file), the first on a tie (:func:`.runs.extreme_orders`). The inputs' file dictionaries are ranked once; the
    output's holds exactly the files of its winners, in order."""
    from .runs import extreme_orders

    vf, of, ff = state_columns(key, prefix)
    names, ranks = _file_ranks(_chunks(tables, ff.name))
    chunks = [(o.cast(pa.int64()), fidx, fmap) for o, (fidx, fmap)
              in zip(_chunks(tables, of.name), ranks, strict=True)]
    best, times, valid, rank = extreme_orders(codes, chunks, m, key.kind == "last")
    v = _combined(tables, vf.name).cast(vf.type).take(pa.array(best, mask=best < 0))
    # each winner's file, the dictionary cut to the files used (null where the time is)
    has = rank >= 0
    used = np.flatnonzero(np.bincount(rank[has], minlength=len(names))) if has.any() \
        else np.zeros(0, np.int64)
    recode = np.zeros(max(len(names), 1), np.int32)  # (no file at all: no value)
    recode[used] = np.arange(len(used), dtype=np.int32)
    indices = pa.array(np.where(has, recode[np.maximum(rank, 0)], 0).astype(np.int32),
                       mask=~has)
    return {vf.name: v, of.name: pa.array(times, pa.int64(), mask=~valid),
            ff.name: pa.DictionaryArray.from_arrays(indices, names.take(pa.array(used)))}


def _file_ranks(chunks: list[pa.Array]) -> tuple[pa.Array, list[tuple[pa.Array, np.ndarray]]]:
    """The distinct file ids of first/last ``f`` chunks in SPEC order (``<id>|`` bytewise:
    drop date, then file name, as the earlier string order key compared them), and per
    chunk (its codes (int32 Arrow), each of its dictionary's codes' rank)."""
    coded = []
    for chunk in chunks:
        if not pa.types.is_dictionary(chunk.type):
            chunk = pc.dictionary_encode(chunk.cast(pa.large_string()))
        coded.append(chunk)
    distinct = {name for c in coded for name in c.dictionary.to_pylist() if name is not None}
    ordered = sorted(distinct, key=lambda name: name.encode() + b"|")
    rank = {name: i for i, name in enumerate(ordered)}
    out = []
    for c in coded:
        fmap = np.array([rank.get(name, -1) for name in c.dictionary.to_pylist()], np.int64)
        out.append((c.indices.cast(pa.int32()), fmap if len(fmap) else np.full(1, -1, np.int64)))
    return pa.array(ordered, pa.large_string()), out


def _merged_lists(key: StateKey, prefix: str, codes: np.ndarray, customers: pa.Array,
                  vcode: np.ndarray, dictionary: pa.Array, counts: np.ndarray | None,
                  sketches: tuple[np.ndarray, pa.Array] | None, seen: list | None = None
                  ) -> dict[str, pa.Array]:
    """:func:`_list_state` for a merge's pairs: one or two sorted runs are joined in one
    pass (:func:`.runs.distinct_runs`), more (a day's file partials) are grouped by a
    counting sort on the customer code (:func:`.runs.distinct_grouped`), not sorted whole.
    ``seen``: the (codes, value codes, dictionary, lists) of uncounted keys merged before;
    a key over the same pairs (a set and a sketch of one field) takes their lists."""
    from .runs import distinct_grouped, distinct_runs

    k = key.kind
    m = len(customers)
    fields = state_columns(key, prefix)
    ones = counts if counts is not None or k != "counts" else np.ones(len(codes), np.int64)
    lists = None
    if ones is None and seen:
        lists = next((had for c, v, d, had in seen if d is dictionary and
                      np.array_equal(c, codes) and np.array_equal(v, vcode)), None)
    if lists is None:
        pairs = distinct_runs(codes, vcode, ones) if len(codes) else None
        if pairs is None:
            pairs = distinct_grouped(codes, vcode, ones, m)
        lists = _coded_lists(pairs, dictionary, m)
        if ones is None and seen is not None:
            seen.append((codes, vcode, dictionary, lists))
    extra = [sketches] if sketches is not None and len(sketches[0]) else []
    return _list_columns(k, fields, customers, lists, extra)


def _with_single_rows(state: dict[str, pa.Array], col: dict[str, pa.Array],
                      codes: np.ndarray, single: np.ndarray, m: int, prefix: str,
                      fields: list[pa.Field]) -> dict[str, pa.Array]:
    """``state`` (on every customer) with the customers of ``single`` rows given their one
    input row's components unchanged."""
    idx = np.full(m, -1, np.int64)
    idx[codes[single]] = np.flatnonzero(single)
    mine = pa.array(idx >= 0)
    at = pa.array(idx, mask=idx < 0)
    out = {}
    for field in fields:
        comp = field.name.rsplit(".", 1)[1]
        taken = col[comp].cast(field.type).take(at)
        out[field.name] = pc.if_else(mine, taken, state[field.name])
    return out


def _complete(t: pa.Table, fields: list[pa.Field], names: list[str]) -> pa.Table:
    """``t``'s ``customer_id`` and every field of ``fields``, in that order (``names``): a
    missing count/moment component is 0, any other null (a slide's leaving day carries only
    the windowed keys; a file's partial lacks its empty columns). Built in one step: appending
    the missing columns one by one rebuilt the table per column (~40 per input of a day's
    chained merge, a fixed cost per merge, issue #26)."""
    index = {name: i for i, name in enumerate(t.schema.names)}  # once, not per column
    rows = t.num_rows
    cols = [t.column(index["customer_id"])]
    for f in fields:
        i = index.get(f.name)
        if i is not None:
            cols.append(t.column(i))
        else:
            cols.append(empty_column(f, rows))
    return pa.Table.from_arrays(cols, names=names)


def empty_column(field: pa.Field, rows: int) -> pa.Array:
    """A state column that holds nothing: a count / moments component 0, any other null
    (what a missing column of a merge's input or of a state file stands for)."""
    if field.name.rsplit(".", 1)[1] in ("n", "s", "ss"):
        if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
            # +0 (bits all zero): numpy's zeroed pages, no fill pass
            return pa.array(np.zeros(rows, field.type.to_pandas_dtype()), field.type)
        return pc.fill_null(pa.nulls(rows, field.type), pa.scalar(0, field.type))
    return _nulls(field.type, rows)


def _nulls(t: pa.DataType, rows: int) -> pa.Array:
    """``pa.nulls(rows, t)`` over numpy's zeroed buffers: Arrow's fills its fresh memory
    (~3 ms and 4 MB of page faults a column of 500 k rows), numpy's large zeros are pages
    the kernel maps only when read (a left-out column of a state is mostly never read)."""
    def zeros(n: int, dtype=np.uint8) -> pa.Buffer:
        return pa.py_buffer(np.zeros(n, dtype))

    validity = zeros((rows + 7) // 8)
    if pa.types.is_dictionary(t):
        return pa.DictionaryArray.from_arrays(_nulls(t.index_type, rows),
                                              pa.array([], t.value_type), ordered=t.ordered)
    if pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        return pa.Array.from_buffers(t, rows, [validity, zeros(rows + 1, np.int64),
                                               pa.py_buffer(b"")], null_count=rows)
    if pa.types.is_list(t):
        return pa.Array.from_buffers(t, rows, [validity, zeros(rows + 1, np.int32)],
                                     null_count=rows, children=[_nulls(t.value_type, 0)])
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_temporal(t):
        return pa.Array.from_buffers(t, rows, [validity, zeros(rows * t.bit_width // 8)],
                                     null_count=rows)
    return pa.nulls(rows, t)


# -- final values ----------------------------------------------------------------------------
def finalize(key: StateKey, prefix: str, state: pa.Table, ids: pa.Array, aggregation: str,
             k: int | None, as_of_ordinal: int, pos: pa.Array | None = None,
             same: bool | None = None) -> pa.Array:
    """A feature's values for ``ids`` (sorted customer ids) from a state table (SPEC §3a types
    and empty values).

    Args:
        key: the feature's state key.
        prefix: its column prefix in ``state``.
        state: the state table.
        ids: the output rows' customer ids.
        aggregation: the feature's aggregation.
        k: top_k's k.
        as_of_ordinal: the as-of date (recency).
        pos: :func:`positions` of ``ids`` in ``state`` (None: computed here).
        same: whether ``pos`` is every row of ``state`` in order (:func:`same_rows`; None:
            checked here), when the caller finalizes many features over one ``pos``.

    Returns:
        One value per id.
    """
    if pos is None:
        pos = positions(ids, state)
    # computed on the state's rows, then placed on ids: only the values are taken, never the
    # state's list columns (a customer of ids without a state row: the empty value)
    values = _state_values(key, prefix, state, aggregation, k, as_of_ordinal)
    if same if same is not None else same_rows(pos, state):
        return values  # the state's rows are ids
    taken = values.take(pos) if len(ids) else pa.array([], values.type)
    if aggregation in ("count", "sum", "distinct", "approx_distinct"):
        return pc.fill_null(taken, pa.scalar(0, values.type))
    if aggregation == "top_k":
        return pc.fill_null(taken, pa.scalar([], values.type))
    return taken


def _state_values(key: StateKey, prefix: str, state: pa.Table, aggregation: str,
                  k: int | None, as_of_ordinal: int) -> pa.Array:
    """A feature's values on each row of ``state`` (see :func:`finalize`)."""
    fields = state_columns(key, prefix)
    c = {}
    for field in fields:
        col = _whole(state.column(field.name)).cast(field.type) if state.num_rows \
            else pa.array([], field.type)
        comp = field.name.rsplit(".", 1)[1]
        c[comp] = pc.fill_null(col, pa.scalar(0, field.type)) if comp in ("n", "s", "ss") \
            and col.null_count else col
    if aggregation == "count":
        return c["n"]
    if aggregation == "sum":
        return c["s"]
    if aggregation in ("mean", "stddev"):
        n = c["n"].to_numpy(zero_copy_only=False).astype(np.float64)
        s = c["s"].cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        if aggregation == "mean":
            with np.errstate(all="ignore"):
                return pa.array(s / np.where(n == 0, 1, n), mask=n == 0, type=pa.float64())
        ss = c["ss"].to_numpy(zero_copy_only=False).astype(np.float64)
        with np.errstate(all="ignore"):
            spread = ss - s * s / np.where(n == 0, 1, n)
            # below the rounding error of the sums (equal values): 0, not 1e-6 of noise
            spread[np.abs(spread) <= 64 * np.finfo(np.float64).eps * np.abs(ss)] = 0.0
            var = spread / np.where(n < 2, 1, n - 1)
        return pa.array(np.sqrt(np.maximum(var, 0.0)), mask=n < 2, type=pa.float64())
    if aggregation == "recency":
        v = c["v"].cast(pa.int32()).cast(pa.int64())
        return pc.subtract(pa.scalar(as_of_ordinal - _EPOCH, pa.int64()), v)
    if aggregation in ("min", "max", "first", "last"):
        return c["v"]
    if aggregation == "distinct":
        return pc.fill_null(pc.list_value_length(c["v"]).cast(pa.int64()), 0)
    if aggregation == "approx_distinct":
        exact = pc.fill_null(pc.list_value_length(c["v"]).cast(pa.int64()), 0).to_numpy(
            zero_copy_only=False).copy()
        blobs = c["h"]
        if blobs.null_count < len(blobs):
            for i, b in enumerate(blobs.to_pylist()):
                if b is not None:
                    exact[i] = _estimate(b)
        return pa.array(exact, pa.int64())
    if aggregation == "top_k":
        return _top_k(c["v"], c["c"], k or 1)
    raise ValueError(f"unknown aggregation {aggregation!r}")


@functools.lru_cache(maxsize=4096)
def _estimate(blob: bytes) -> int:
    """A serialized HLL sketch's rounded estimate; cached: a customer without a hit keeps
    the same sketch from one as-of date to the next (4096 x ~8 KB at most)."""
    import datasketches as ds

    return round(ds.hll_sketch.deserialize(blob).get_estimate())


_EPOCH = 719163  # date(1970, 1, 1).toordinal()


def _top_k(values: pa.Array, counts: pa.Array, k: int) -> pa.Array:
    """Per row: the k most frequent values, most frequent first, ties by value ascending
    (a value code's order is its value's: an integer sort)."""
    vcode, parent, dictionary = _flat_codes([values])
    n = len(values)
    if not len(vcode):
        return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)),
                                        pa.array([], pa.large_string()))
    c = pc.list_flatten(counts).to_numpy(zero_copy_only=False).astype(np.int64)
    if len(parent) > 1 and (parent[1:] >= parent[:-1]).all():  # one pass per row, no sort
        from .runs import top_k_rows

        chosen, sizes = top_k_rows(parent, vcode, c, n, k)
        offsets = np.r_[0, np.cumsum(sizes)].astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), dictionary.take(pa.array(
            vcode[chosen])))
    span_v, low = len(dictionary), int(c.min())
    span_c = int(c.max()) - low + 1
    if (n + 1) * span_c * span_v < 2 ** 62:  # one int64 key: by row, count down, value up
        order = np.argsort(parent * (span_c * span_v) + (span_c - 1 - (c - low)) * span_v
                           + vcode, kind="stable")
    else:
        order = np.lexsort((vcode, -c, parent))
    p = parent[order]
    starts = np.searchsorted(p, np.arange(n))
    rank = np.arange(len(p)) - starts[p]
    keep = rank < k
    offsets = np.r_[0, np.cumsum(np.bincount(p[keep], minlength=n))].astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets),
                                    dictionary.take(pa.array(vcode[order][keep])))


_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")
