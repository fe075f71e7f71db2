"""Single-pass byte scanner for wide, unquoted, tab-separated lines (numba-compiled).

pyarrow's CSV reader tokenizes all 1,000+ fields of every line even when asked for seven; this
scanner walks the decompressed buffer once, records only the byte ranges of the wanted fields,
counts fields per line, and flags lines holding non-ASCII bytes in a wanted field so only those
few are UTF-8 validated. Everything else (typing, validation) is vectorised numpy/Arrow.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

__all__ = ["scan_lines", "scan_lines_and_int", "gather_strings", "gather_columns", "gather_declared",
           "parse_int_fields", "valid_utf8_rows", "warm_up"]


_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGH = np.uint64(0x8080808080808080)
_ONES = np.uint64(0x0101010101010101)
_TABS = np.uint64(0x0909090909090909)
_NEWLINES = np.uint64(0x0A0A0A0A0A0A0A0A)
_SEVEN = np.uint64(7)
_FIFTY_SIX = np.uint64(56)


@njit(inline="always")
def _zero_bytes(x):  # pragma: no cover - compiled
    """0x80 in each byte of ``x`` that is 0x00, else 0 (exact: no false positives)."""
    return ~(((x & _LOW7) + _LOW7) | x | _LOW7)


@njit(nogil=True, cache=True)
def _parse_int(buf, s, e):  # pragma: no cover - compiled
    """(value, ok): a decimal integer of at most 18 digits, optional leading minus."""
    if s >= e:
        return 0, False
    neg = buf[s] == 45
    i = s + 1 if neg else s
    if i >= e or e - i > 18:
        return 0, False
    v = 0
    while i < e:
        c = buf[i]
        if c < 48 or c > 57:
            return 0, False
        v = v * 10 + (c - 48)
        i += 1
    return (-v if neg else v), True


@njit(nogil=True, cache=True)
def _scan(buf, words, n_lines, slot_of_col, next_wanted, int_slot):  # pragma: no cover - compiled
    """One pass over ``buf``; ``words`` is the same memory as uint64 (8 bytes at a time).

    Wide lines are mostly fields nobody asked for, so a word with no newline whose tabs do not
    reach the next wanted column is handled by one popcount (SWAR) instead of 8 branches;
    inside a wanted field, words without a tab or newline are skipped the same way. Everything
    else goes byte by byte: the field bounds this returns are identical either way.

    Field ``int_slot`` (-1: none) is parsed as an integer as soon as it ends, while its bytes
    are in cache: a second pass over the cold buffer for it cost as much as a third of the scan.
    """
    k = 0
    for s in slot_of_col:
        if s >= 0:
            k += 1
    ncols = slot_of_col.size
    starts = np.zeros((n_lines, k), np.int64)
    ends = np.zeros((n_lines, k), np.int64)
    nfields = np.zeros(n_lines, np.int64)
    nonascii = np.zeros(n_lines, np.bool_)
    line_starts = np.zeros(n_lines + 1, np.int64)
    n_ints = n_lines if int_slot >= 0 else 0
    ints = np.zeros(n_ints, np.int64)
    ints_ok = np.zeros(n_ints, np.bool_)
    line = 0
    col = 0
    fstart = 0
    hi = False
    size = buf.size
    n_words = words.size
    i = 0
    while i < size:
        if (i & 7) == 0:
            j = i >> 3
            if col < ncols and slot_of_col[col] >= 0:  # in a wanted field: run to its end
                while j < n_words:
                    w = words[j]
                    if (_zero_bytes(w ^ _TABS) | _zero_bytes(w ^ _NEWLINES)) != 0:
                        break
                    if (w & _HIGH) != 0:
                        hi = True
                    j += 1
            else:  # skip whole words of unwanted fields up to the next wanted one
                limit = next_wanted[min(col + 1, ncols)]
                while j < n_words:
                    w = words[j]
                    if _zero_bytes(w ^ _NEWLINES) != 0:
                        break
                    count = np.int64(((_zero_bytes(w ^ _TABS) >> _SEVEN) * _ONES) >> _FIFTY_SIX)
                    if col + count >= limit:
                        break
                    col += count
                    j += 1
            i = j << 3
            if i >= size:
                break
        stop = min(i + 8 - (i & 7), size)  # byte by byte up to the next word boundary
        while i < stop:
            c = buf[i]
            if c == 9 or c == 10:
                if col < ncols:
                    slot = slot_of_col[col]
                    if slot >= 0:
                        starts[line, slot] = fstart
                        # CRLF: the \r before a newline ends the line, it is not data
                        end = i - 1 if c == 10 and i > fstart and buf[i - 1] == 13 else i
                        ends[line, slot] = end
                        if slot == int_slot:
                            ints[line], ints_ok[line] = _parse_int(buf, fstart, end)
                        if hi:
                            nonascii[line] = True
                hi = False
                col += 1
                fstart = i + 1
                if c == 10:
                    nfields[line] = col
                    line += 1
                    line_starts[line] = i + 1
                    col = 0
            elif c >= 128:
                hi = True
            i += 1
    # The last line without a newline ends its field as the loop does; spelled out again, not
    # shared through a helper: an inlined helper made this loop ~50% slower (measured).
    if size > 0 and buf[size - 1] != 10:
        if col < ncols:
            slot = slot_of_col[col]
            if slot >= 0:
                starts[line, slot] = fstart
                end = size - 1 if size > fstart and buf[size - 1] == 13 else size
                ends[line, slot] = end
                if slot == int_slot:
                    ints[line], ints_ok[line] = _parse_int(buf, fstart, end)
                if hi:
                    nonascii[line] = True
        nfields[line] = col + 1
        line_starts[line + 1] = size + 1
    return starts, ends, nfields, nonascii, line_starts, ints, ints_ok


@njit(nogil=True, cache=True)
def _count_lines(buf, words):  # pragma: no cover - compiled
    """Newlines in ``buf``, 8 bytes at a time, plus one for a last line without a newline."""
    n = 0
    for j in range(words.size):
        n += np.int64(((_zero_bytes(words[j] ^ _NEWLINES) >> _SEVEN) * _ONES) >> _FIFTY_SIX)
    for i in range(words.size * 8, buf.size):
        if buf[i] == 10:
            n += 1
    if buf.size > 0 and buf[buf.size - 1] != 10:
        n += 1
    return n


def scan_lines(buf: np.ndarray, slot_of_col: np.ndarray):
    """Scan ``buf`` (uint8). ``slot_of_col[i]`` is the output slot of file column ``i`` or -1.

    Lines end with LF or CRLF (both in one file too): the ``\r`` of a CRLF is not part of
    the last field. Returns ``starts, ends`` (lines x wanted fields, byte offsets),
    ``nfields`` per line, ``nonascii`` per line, and ``line_starts`` (n+1 offsets; line i is
    ``buf[line_starts[i]:line_starts[i+1]-1]``, its ``\r`` included).
    """
    return _run_scan(buf, slot_of_col, -1)[:5]


def scan_lines_and_int(buf: np.ndarray, slot_of_col: np.ndarray, int_slot: int):
    """:func:`scan_lines`, and field ``int_slot`` of every line parsed as
    :func:`parse_int_fields` parses it, in the same pass.

    Args:
        buf: the decompressed file (uint8).
        slot_of_col: output slot of each file column, or -1.
        int_slot: the wanted field to parse as an integer (the hit time).

    Returns:
        ``starts, ends, nfields, nonascii, line_starts`` as :func:`scan_lines` returns them,
        then ``values`` and ``ok`` (per line).
    """
    return _run_scan(buf, slot_of_col, int_slot)


def _run_scan(buf: np.ndarray, slot_of_col: np.ndarray, int_slot: int):
    words = buf[:buf.size - buf.size % 8].view(np.uint64)
    n_lines = _count_lines(buf, words)
    slot_of_col = np.ascontiguousarray(slot_of_col, dtype=np.int64)
    # next_wanted[c]: the first wanted column >= c, c = 0 .. ncols (huge when there is none)
    none_left = np.iinfo(np.int64).max // 2
    positions = np.append(np.where(slot_of_col >= 0, np.arange(slot_of_col.size), none_left),
                          none_left)
    next_wanted = np.minimum.accumulate(positions[::-1])[::-1].astype(np.int64)
    return _scan(buf, words, n_lines, slot_of_col, next_wanted, int_slot)


@njit(nogil=True, cache=True)
def _utf8_ok(buf, s, e):  # pragma: no cover - compiled
    i = s
    while i < e:
        c = buf[i]
        if c < 0x80:
            i += 1
            continue
        if 0xC2 <= c <= 0xDF:
            n = 1
        elif 0xE0 <= c <= 0xEF:
            n = 2
        elif 0xF0 <= c <= 0xF4:
            n = 3
        else:
            return False
        if i + n >= e:  # truncated sequence
            return False
        c1 = buf[i + 1]
        # overlong / surrogate / out-of-range checks on the second byte
        if c == 0xE0 and c1 < 0xA0:
            return False
        if c == 0xED and c1 > 0x9F:
            return False
        if c == 0xF0 and c1 < 0x90:
            return False
        if c == 0xF4 and c1 > 0x8F:
            return False
        for j in range(1, n + 1):
            if (buf[i + j] & 0xC0) != 0x80:
                return False
        i += n + 1
    return True


@njit(nogil=True, cache=True)
def _valid_utf8_rows(buf, starts, ends, rows, nslots):  # pragma: no cover - compiled
    out = np.ones(rows.size, np.bool_)
    for r in range(rows.size):
        line = rows[r]
        for f in range(nslots):
            if not _utf8_ok(buf, starts[line, f], ends[line, f]):
                out[r] = False
                break
    return out


def valid_utf8_rows(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                    rows: np.ndarray, nslots: int | None = None) -> np.ndarray:
    """For each line in ``rows``, whether its first ``nslots`` wanted fields (default all)
    are valid UTF-8 (declared columns, in the slots after, are checked per value instead:
    a bad one is null, the row stays)."""
    n = starts.shape[1] if nslots is None else nslots
    return _valid_utf8_rows(buf, starts, ends, rows.astype(np.int64), n)


@njit(nogil=True, cache=True)
def _parse_int_fields(buf, starts, ends, slot):  # pragma: no cover - compiled
    n = starts.shape[0]
    values = np.zeros(n, np.int64)
    ok = np.zeros(n, np.bool_)
    for i in range(n):
        v, good = _parse_int(buf, starts[i, slot], ends[i, slot])
        values[i] = v
        ok[i] = good
    return values, ok


def parse_int_fields(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, slot: int):
    """Parse field ``slot`` of every line as an integer: ``(values, ok)`` arrays."""
    return _parse_int_fields(buf, starts, ends, slot)


@njit(nogil=True, cache=True)
def _gather_many(buf, starts, ends, rows, slots, check_utf8):  # pragma: no cover - compiled
    """Copy fields ``slots`` of lines ``rows`` out of ``buf`` in one forward sweep over the
    lines (row-major): each line of the cold 30 MB buffer comes from memory once, not once per
    field. Returns one data array (field j at ``bases[j]:bases[j+1]``), offsets, validity and,
    with ``check_utf8`` (declared columns), which fields were not valid UTF-8: those are left
    out (null) so their row still lands. Without it, ``bad`` is empty."""
    n = rows.size
    k = slots.size
    totals = np.zeros(k, np.int64)
    for r in range(n):
        line = rows[r]
        for j in range(k):
            totals[j] += ends[line, slots[j]] - starts[line, slots[j]]
    bases = np.zeros(k + 1, np.int64)
    for j in range(k):
        bases[j + 1] = bases[j] + totals[j]
    data = np.empty(max(bases[k], 1), np.uint8)
    offsets = np.zeros((k, n + 1), np.int64)
    valid = np.ones((k, n), np.bool_)
    bad = np.zeros((k, n if check_utf8 else 0), np.bool_)
    pos = bases[:k].copy()
    for r in range(n):
        line = rows[r]
        for j in range(k):
            s = starts[line, slots[j]]
            e = ends[line, slots[j]]
            length = e - s
            if length == 0 or (length == 2 and buf[s] == 92 and buf[s + 1] == 78):  # "", \N
                valid[j, r] = False
            elif check_utf8 and not _utf8_ok(buf, s, e):
                valid[j, r] = False
                bad[j, r] = True
            else:
                p = pos[j]
                for b in range(length):
                    data[p + b] = buf[s + b]
                pos[j] = p + length
            offsets[j, r + 1] = pos[j] - bases[j]
    return data, bases, offsets, valid, bad


def _gather(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray,
            slots: list[int], check_utf8: bool) -> tuple[list[pa.Array], np.ndarray]:
    """:func:`_gather_many` as Arrow string arrays (large ones past 2 GiB), and ``bad``."""
    rows = rows.astype(np.int64)
    data, bases, offsets, valid, bad = _gather_many(buf, starts, ends, rows,
                                                    np.asarray(slots, dtype=np.int64),
                                                    check_utf8)
    out = []
    for j in range(len(slots)):
        validity = (pa.py_buffer(np.packbits(valid[j], bitorder="little"))
                    if not valid[j].all() else None)
        chunk = pa.py_buffer(data[bases[j]:max(bases[j + 1], bases[j] + 1)])
        array = pa.LargeStringArray.from_buffers(rows.size, pa.py_buffer(offsets[j].copy()),
                                                 chunk, validity)
        out.append(array.cast(pa.string()) if bases[j + 1] - bases[j] < 2**31 else array)
    return out, bad


def gather_columns(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray,
                   slots: list[int]) -> list[pa.Array]:
    """Arrow string arrays of fields ``slots`` for lines ``rows`` (as :func:`gather_strings`),
    gathered in one pass."""
    return _gather(buf, starts, ends, rows, slots, False)[0]


def gather_declared(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, rows: np.ndarray,
                    slots: list[int]) -> tuple[list[pa.Array], list[int]]:
    """Arrow string arrays of declared columns' fields ``slots`` for lines ``rows``; empty and
    ``\\N`` are null, and so is a field that is not valid UTF-8.

    Returns:
        The arrays, and per slot how many fields were not valid UTF-8.
    """
    out, bad = _gather(buf, starts, ends, rows, slots, True)
    return out, [int(b.sum()) for b in bad]


def gather_strings(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   rows: np.ndarray, slot: int) -> pa.Array:
    """Arrow string array of field ``slot`` for lines ``rows``; empty and ``\\N`` are null."""
    return gather_columns(buf, starts, ends, rows, [slot])[0]


def warm_up() -> None:
    """Load (or compile) every kernel now, e.g. on each worker via ``client.run(warm_up)``,
    so the first real file does not pay for it."""
    buf = np.frombuffer(b"1\tx\n", dtype=np.uint8)
    starts, ends, *_ = scan_lines_and_int(buf, np.array([0, 1], dtype=np.int64), 0)
    rows = np.array([0], dtype=np.int64)
    valid_utf8_rows(buf, starts, ends, rows)
    gather_columns(buf, starts, ends, rows, [1])
    gather_declared(buf, starts, ends, rows, [1])
