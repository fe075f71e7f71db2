"""Numba kernels over Arrow string buffers for the daily aggregates of an ingest's hits.

An ingest task sums each file's hits into partial daily aggregates (issue #27: ~100 k hits a
file, ~16% of the task). Two steps of that were Arrow compute chains that copy the strings
several times: splitting the product lists into entries (split, flatten, filter, pad, split
again, cast twice) and coding the customer ids in first-seen order (a hash encoding). The
kernels here read the strings' buffers once. Each gives exactly what the Arrow chain gave, or
says it cannot (an entry outside the plain number forms below), and the caller then takes the
Arrow chain: the results never depend on which path ran.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .strings import buffers

__all__ = ["first_seen_codes", "first_seen_of_codes", "lists_holding", "product_entries",
           "warm_up"]

# 10**k, exact in float64 for k <= 22 (a float64 parse below stays within 15 digits)
_POW10 = np.array([10.0 ** k for k in range(23)])
_MAX_DIGITS = 15  # below 2**53: the digits are an exact float64, and one division rounds once


def _buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets as int64, bytes) of a string or large_string array, its slice applied
    (:func:`.strings.buffers`): one offset type for the kernels' compiled signatures, and
    never an empty bytes array."""
    offsets, data = buffers(values)
    return offsets.astype(np.int64), data if data.size else np.zeros(1, dtype=np.uint8)


@njit(nogil=True, cache=True)
def _int_of(data, s, e):  # pragma: no cover - compiled
    """(value, ok): ``data[s:e]`` as ``-?[0-9]{1,18}``; empty is (0, True) (a blank is 0)."""
    if s == e:
        return 0, True
    neg = data[s] == 45
    i = s + 1 if neg else s
    if i == e or e - i > 18:
        return 0, False
    v = 0
    while i < e:
        c = data[i]
        if c < 48 or c > 57:
            return 0, False
        v = v * 10 + (c - 48)
        i += 1
    return (-v if neg else v), True


@njit(nogil=True, cache=True)
def _float_of(data, s, e, pow10):  # pragma: no cover - compiled
    """(value, ok): ``data[s:e]`` as ``-?[0-9]*(\\.[0-9]*)?`` with 1 to 15 digits, correctly
    rounded (the digits and 10**fraction digits are exact float64s, so their quotient is
    rounded once, as Arrow's parser rounds); empty is (0.0, True)."""
    if s == e:
        return 0.0, True
    neg = data[s] == 45
    i = s + 1 if neg else s
    m = 0
    digits = 0
    frac = 0
    dot = False
    while i < e:
        c = data[i]
        if c == 46 and not dot:
            dot = True
        elif 48 <= c <= 57:
            m = m * 10 + (c - 48)
            digits += 1
            if dot:
                frac += 1
        else:
            return 0.0, False
        i += 1
    if digits == 0 or digits > _MAX_DIGITS:
        return 0.0, False
    value = m / pow10[frac]
    return (-value if neg else value), True


@njit(inline="always")
def _field(semis, found, f, end):  # pragma: no cover - compiled
    """Bounds of field ``f + 1`` of an entry ending at ``end`` whose first ``found``
    semicolons are at ``semis``: from after semicolon ``f`` to the next one or the end;
    empty (at ``end``) when the entry has no semicolon ``f`` (as splitting the entry padded
    with ``;;;`` reads it)."""
    if found <= f:
        return end, end
    return semis[f] + 1, (semis[f + 1] if found > f + 1 else end)


@njit(nogil=True, cache=True)
def _entries(offsets, data, rows, pow10, bound):  # pragma: no cover - compiled
    """The non-empty comma-separated entries of strings ``rows``: per entry its row, the
    bounds of its second ``;`` field (product id), its third as an integer and its fourth as
    a float (a missing field is empty; empty is 0). Returns ``ok`` False at the first number
    outside the plain forms, or when there are more than ``bound`` entries (the outputs'
    size: a wrong count never writes past them)."""
    out_row = np.empty(bound, np.int64)
    pid_start = np.empty(bound, np.int64)
    pid_end = np.empty(bound, np.int64)
    quantity = np.empty(bound, np.int64)
    price = np.empty(bound, np.float64)
    n = 0
    semis = np.empty(4, np.int64)
    for r in range(rows.size):
        row = rows[r]
        i = offsets[row]
        e = offsets[row + 1]
        while True:
            j = i
            found = 0
            while j < e and data[j] != 44:
                if data[j] == 59 and found < 4:
                    semis[found] = j
                    found += 1
                j += 1
            if j > i:  # a non-empty entry: fields 1..3 between its semicolons
                if n >= bound:  # more entries than the caller counted: Arrow decides
                    return out_row[:0], pid_start[:0], pid_end[:0], quantity[:0], \
                        price[:0], False
                out_row[n] = row
                pid_start[n], pid_end[n] = _field(semis, found, 0, j)
                qs, qe = _field(semis, found, 1, j)
                q, ok = _int_of(data, qs, qe)
                if not ok:
                    return out_row[:0], pid_start[:0], pid_end[:0], quantity[:0], price[:0], \
                        False
                quantity[n] = q
                ps, pe = _field(semis, found, 2, j)
                p, ok = _float_of(data, ps, pe, pow10)
                if not ok:
                    return out_row[:0], pid_start[:0], pid_end[:0], quantity[:0], price[:0], \
                        False
                price[n] = p
                n += 1
            if j >= e:
                break
            i = j + 1
    return out_row[:n], pid_start[:n], pid_end[:n], quantity[:n], price[:n], True


@njit(nogil=True, cache=True)
def _copy_spans(data, starts, ends):  # pragma: no cover - compiled
    """The bytes of spans ``starts[i]:ends[i]`` back to back, and their int64 offsets."""
    offsets = np.zeros(starts.size + 1, np.int64)
    for i in range(starts.size):
        offsets[i + 1] = offsets[i] + ends[i] - starts[i]
    out = np.empty(max(offsets[-1], 1), np.uint8)
    for i in range(starts.size):
        p = offsets[i]
        for b in range(ends[i] - starts[i]):
            out[p + b] = data[starts[i] + b]
    return out, offsets


def product_entries(lists: pa.Array, rows: np.ndarray) -> dict[str, object] | None:
    """The product entries of the product lists ``lists[rows]``, as ``daily._products``
    gives them, or None when an entry's quantity or price is not a plain number (the caller
    then splits with Arrow, whose casts decide those).

    Args:
        lists: the hits' ``post_product_list`` (string or large_string), no nulls at ``rows``.
        rows: which hits, ascending.

    Returns:
        ``{"row", "product_id", "quantity", "price"}``: per non-empty comma-separated entry,
        its hit row, its second ``;``-separated field (the type of ``lists``), its third as
        int64 and its fourth as float64 (empty or missing: 0).
    """
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    offsets, data = _buffers(lists)
    rows = rows.astype(np.int64)
    # at most one entry per comma, plus one per list: the commas of the bytes the rows span,
    # counted by numpy (a byte loop in the kernel took ~0.6 ms of a file's ~3)
    span = data[offsets[rows.min()]:offsets[rows.max() + 1]] if rows.size else data[:0]
    bound = int(np.count_nonzero(span == 44)) + rows.size
    row, start, end, quantity, price, ok = _entries(offsets, data, rows, _POW10, bound)
    if not ok:
        return None
    out, out_offsets = _copy_spans(data, start, end)
    ids = pa.LargeStringArray.from_buffers(len(start), pa.py_buffer(out_offsets),
                                           pa.py_buffer(out))
    if not pa.types.is_large_string(lists.type):
        ids = ids.cast(lists.type)
    return {"row": row, "product_id": ids, "quantity": quantity, "price": price}


@intrinsic
def _load8(typingctx, data, at):  # pragma: no cover - compiled
    """The 8 bytes ``data[at:at + 8]`` as one little-endian uint64 (one unaligned load; the
    range must be in bounds)."""

    def codegen(context, builder, signature, args):
        array = context.make_array(signature.args[0])(context, builder, args[0])
        where = builder.bitcast(builder.gep(array.data, [args[1]]), ir.IntType(64).as_pointer())
        return builder.load(where, align=1)

    return types.uint64(data, types.intp), codegen


@njit(inline="always")
def _last_word(data, s, e):  # pragma: no cover - compiled
    """The 1 to 8 bytes ``data[s:e]`` as the low bytes of a uint64, zeros above: the 8 bytes
    ending at ``e`` loaded at once and shifted (the bytes before ``s`` fall off), or byte by
    byte within 8 bytes of the buffer's start."""
    if e >= 8:
        return _load8(data, e - 8) >> np.uint64(8 * (8 - (e - s)))
    word = np.uint64(0)
    for b in range(e - s):
        word |= np.uint64(data[s + b]) << np.uint64(8 * b)
    return word


_TAG = np.uint64(0xFFFFFFFF00000000)
_CODE = np.uint64(0xFFFFFFFF)


@njit(nogil=True, cache=True)
def _hash_codes(offsets, data):  # pragma: no cover - compiled
    """Per string its code, in the order the distinct strings first occur, and the first index
    of each code: open addressing over 8-byte slots that hold the hash's high 32 bits beside
    the code + 1 (0: empty), so a probe tells most other strings from the slot alone without
    reading a second array; the hash is built from the bytes loaded 8 at a time (a multiply
    per word) and mixed once (murmur3's finalizer). Which hash it is never shows: the codes
    follow first occurrence, and equal strings are told by their bytes."""
    n = offsets.size - 1
    size = 1
    while size < 2 * n + 2:
        size *= 2
    mask = size - 1
    slots = np.zeros(size, np.uint64)
    first = np.empty(n, np.int64)
    codes = np.empty(n, np.int64)
    distinct = 0
    for i in range(n):
        s = offsets[i]
        e = offsets[i + 1]
        h = np.uint64(e - s) * np.uint64(0x9E3779B97F4A7C15)
        p = s
        while e - p > 8:
            h = (h ^ _load8(data, p)) * np.uint64(0xFF51AFD7ED558CCD)
            p += 8
        if e > p:
            h = (h ^ _last_word(data, p, e)) * np.uint64(0xC4CEB9FE1A85EC53)
        h ^= h >> np.uint64(33)
        h *= np.uint64(0xFF51AFD7ED558CCD)
        h ^= h >> np.uint64(33)
        tag = h & _TAG
        at = np.int64(h & np.uint64(mask))
        while True:
            slot = slots[at]
            if slot == 0:
                slots[at] = tag | np.uint64(distinct + 1)
                first[distinct] = i
                codes[i] = distinct
                distinct += 1
                break
            if (slot & _TAG) == tag:
                code = np.int64(slot & _CODE) - 1
                fs = offsets[first[code]]
                if offsets[first[code] + 1] - fs == e - s:
                    same = True
                    for b in range(e - s):
                        if data[fs + b] != data[s + b]:
                            same = False
                            break
                    if same:
                        codes[i] = code
                        break
            at = (at + 1) & mask
    return codes, first[:distinct]


def first_seen_codes(values: pa.Array) -> tuple[pa.Array, np.ndarray] | None:
    """The distinct strings of ``values`` in first-seen order and each value's code into them,
    as Arrow's ``dictionary_encode`` gives them; None when ``values`` has nulls or is not a
    string array (the caller encodes with Arrow).

    Args:
        values: a string or large_string array.

    Returns:
        (distinct values, int64 codes), or None.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count or not (pa.types.is_string(values.type)
                                 or pa.types.is_large_string(values.type)):
        return None
    if len(values) >= 2**32 - 1:  # a code + 1 must fit the slot's low 32 bits
        return None
    offsets, data = _buffers(values)
    codes, first = _hash_codes(offsets, data)
    return values.take(pa.array(first)), codes


def first_seen_of_codes(values: pa.Array, codes: np.ndarray, m: int
                        ) -> tuple[pa.Array, np.ndarray]:
    """:func:`first_seen_codes` of ``values`` when each value's code in another coding is
    known (``codes``: 0..m-1, equal codes exactly for equal strings, as the SPEC §3a
    partials' sorted customer codes): the same distinct values and codes, from one pass over
    the integers instead of a hash of the strings.

    Args:
        values: the strings (any string type, no nulls).
        codes: each value's code in the other coding (int64).
        m: how many codes there are.

    Returns:
        (distinct values in first-seen order, int64 codes into them).
    """
    out, first = _renumbered(np.asarray(codes, np.int64), m)
    return values.take(pa.array(first)), out


@njit(nogil=True, cache=True)
def _renumbered(codes, m):  # pragma: no cover - compiled
    """Codes 0..m-1 renumbered in the order they first occur, and each new code's first
    row."""
    n = codes.size
    new = np.full(m, -1, np.int64)
    first = np.empty(m, np.int64)
    out = np.empty(n, np.int64)
    k = 0
    for i in range(n):
        c = codes[i]
        f = new[c]
        if f < 0:
            f = k
            new[c] = k
            first[k] = i
            k += 1
        out[i] = f
    return out, first[:k]


@njit(nogil=True, cache=True)
def _holding(offsets, data, valid, needle):  # pragma: no cover - compiled
    """Per string, whether it is valid and one of its comma-separated items is ``needle``."""
    n = offsets.size - 1
    out = np.zeros(n, np.bool_)
    k = needle.size
    for r in range(n):
        if not valid[r]:
            continue
        i = offsets[r]
        e = offsets[r + 1]
        while True:
            j = i
            while j < e and data[j] != 44:
                j += 1
            if j - i == k:
                same = True
                for b in range(k):
                    if data[i + b] != needle[b]:
                        same = False
                        break
                if same:
                    out[r] = True
                    break
            if j >= e:
                break
            i = j + 1
    return out


def lists_holding(lists: pa.Array, item: str) -> np.ndarray | None:
    """Which comma-separated lists hold ``item`` as a whole item (null lists do not), as
    splitting them and comparing each item gives it; None when ``lists`` is not a string
    array (the caller splits with Arrow).

    Args:
        lists: e.g. the hits' ``post_event_list``.
        item: the item, e.g. an event id.

    Returns:
        A boolean per list.
    """
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    if not (pa.types.is_string(lists.type) or pa.types.is_large_string(lists.type)):
        return None
    offsets, data = _buffers(lists)
    valid = (np.ones(len(lists), np.bool_) if not lists.null_count else
             lists.is_valid().to_numpy(zero_copy_only=False))
    return _holding(offsets, data, valid, np.frombuffer(item.encode(), np.uint8))


def warm_up() -> None:
    """Load (or compile) the kernels now (workers do it as they start)."""
    lists = pa.array(["a;p;1;2.5,b;q;;", ""])
    product_entries(lists, np.array([0, 1]))
    product_entries(lists.cast(pa.large_string()), np.array([0]))
    first_seen_codes(pa.array(["x", "y", "x"]))
    first_seen_codes(pa.array(["x"], pa.large_string()))
    first_seen_of_codes(pa.array(["x", "y", "x"]), np.array([1, 0, 1]), 2)
    lists_holding(pa.array(["1,2", None]), "2")
    lists_holding(pa.array(["1,2"], pa.large_string()), "2")
