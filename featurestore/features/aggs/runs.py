"""A numba kernel for the list states' merges: distinct (customer, value) pairs of sorted runs.

A merge of set / counts / sketch states (:func:`.kernels.merge`) concatenates its inputs'
(customer code, value code) pairs. Each input is sorted by customer, and within a customer
by value (a code's order is its value's), so the pairs are one sorted run per input; the
chained state's merges (the state and the day) have two. The kernel merges one or two runs
in one pass, joining equal pairs (adding their counts) as it goes, instead of an int64 key,
a sort, run starts and a division per pair. More runs (a file's hits, in line order) return
None: the caller sorts.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

__all__ = ["add_sums", "distinct_grouped", "distinct_runs", "extreme_orders", "numeric_extremes",
           "sorted_positions", "strictly_ascending", "top_k_rows", "warm_up"]


@njit(nogil=True, cache=True)
def _breaks(c: np.ndarray, v: np.ndarray) -> tuple[int, int]:
    """(number of places where (c, v) decreases, the first such place)."""
    count, first = 0, -1
    for i in range(1, len(c)):
        if c[i] < c[i - 1] or (c[i] == c[i - 1] and v[i] < v[i - 1]):
            if count == 0:
                first = i
            count += 1
    return count, first


@njit(nogil=True, cache=True, inline="always")
def _nonzero_counts(oc: np.ndarray, ov: np.ndarray, on: np.ndarray, k: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``k`` pairs without those whose count summed to zero (a count slid back to
    nothing), compacted in place."""
    keep = 0
    for x in range(k):
        if on[x] != 0:
            oc[keep] = oc[x]
            ov[keep] = ov[x]
            on[keep] = on[x]
            keep += 1
    return oc[:keep], ov[:keep], on[:keep]


@njit(nogil=True, cache=True)
def _merge(c: np.ndarray, v: np.ndarray, n: np.ndarray, split: int, counted: bool
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge the sorted runs ``[0, split)`` and ``[split, len)`` of (c, v) pairs into the
    distinct pairs, ascending, with ``n`` added per pair (when ``counted``; zero sums
    dropped)."""
    size = len(c)
    oc = np.empty(size, np.int64)
    ov = np.empty(size, np.int64)
    on = np.empty(size if counted else 0, np.int64)
    i, j, k = 0, split, 0
    while i < split or j < size:
        if j >= size or (i < split and (c[i] < c[j] or (c[i] == c[j] and v[i] <= v[j]))):
            x = i
            i += 1
        else:
            x = j
            j += 1
        if k > 0 and oc[k - 1] == c[x] and ov[k - 1] == v[x]:
            if counted:
                on[k - 1] += n[x]
            continue
        oc[k] = c[x]
        ov[k] = v[x]
        if counted:
            on[k] = n[x]
        k += 1
    if not counted:
        return oc[:k], ov[:k], on
    return _nonzero_counts(oc, ov, on, k)


def distinct_runs(codes: np.ndarray, vcode: np.ndarray, counts: np.ndarray | None
                  ) -> dict[str, np.ndarray] | None:
    """The distinct (customer code, value code) pairs, sorted, as ``c``, ``v`` (and ``n``:
    ``counts`` added per pair, zero sums dropped) when the pairs are at most two sorted runs;
    None otherwise.

    Args:
        codes: each pair's customer code (int64).
        vcode: each pair's value code (int64).
        counts: each pair's count (int64), or None.

    Returns:
        What :func:`.kernels._distinct_coded` returns, or None (more than two runs).
    """
    c = np.ascontiguousarray(codes, np.int64)
    v = np.ascontiguousarray(vcode, np.int64)
    count, first = _breaks(c, v)
    if count > 1:
        return None
    split = len(c) if count == 0 else first
    counted = counts is not None
    n = np.ascontiguousarray(counts, np.int64) if counted else np.zeros(0, np.int64)
    oc, ov, on = _merge(c, v, n, split, counted)
    out = {"c": oc, "v": ov}
    if counted:
        out["n"] = on
    return out


@njit(nogil=True, cache=True)
def _top_k(parent: np.ndarray, vcode: np.ndarray, c: np.ndarray, n: int, k: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Per row (``parent`` ascending: each row's pairs contiguous), the positions of its k
    pairs of largest count, ties by smaller value code, in that order; and each row's
    number of them."""
    m = len(parent)
    sel = np.empty(min(m, n * k), np.int64)
    sizes = np.zeros(n, np.int64)
    best = np.empty(k, np.int64)
    out, i = 0, 0
    while i < m:
        r = parent[i]
        j = i
        filled = 0
        while j < m and parent[j] == r:
            # insert j into the row's best (sorted: count down, value up) when it belongs
            pos = filled
            while pos > 0 and (c[j] > c[best[pos - 1]] or (
                    c[j] == c[best[pos - 1]] and vcode[j] < vcode[best[pos - 1]])):
                pos -= 1
            if pos < k:
                last = filled if filled < k else k - 1
                for q in range(last, pos, -1):
                    best[q] = best[q - 1]
                best[pos] = j
                if filled < k:
                    filled += 1
            j += 1
        for q in range(filled):
            sel[out] = best[q]
            out += 1
        sizes[r] = filled
        i = j
    return sel[:out], sizes


def top_k_rows(parent: np.ndarray, vcode: np.ndarray, counts: np.ndarray, n: int, k: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """top_k's choice without a sort: for each of ``n`` rows, the positions of its ``k``
    most frequent values, most frequent first, ties by value code ascending.

    Args:
        parent: each pair's row (ascending).
        vcode: each pair's value code (distinct within a row).
        counts: each pair's count.
        n: the rows.
        k: values kept per row (>= 1).

    Returns:
        (the chosen pairs' positions, in output order; each row's number of them).
    """
    return _top_k(np.ascontiguousarray(parent, np.int64), np.ascontiguousarray(vcode, np.int64),
                  np.ascontiguousarray(counts, np.int64), int(n), int(k))


# -- a merge of many inputs (a day's file partials): no string hash, no sort of all rows ----
def _ro(a: np.ndarray, dtype) -> np.ndarray:
    """A contiguous read-only view of ``a`` as ``dtype`` (copied only when it must be): Arrow's
    zero-copy arrays are read-only, and numba compiles a read-only and a writable array as two
    types; every input of the merge kernels below is made read-only, so each compiles once
    (cold compile time of the first run in a fresh checkout)."""
    view = np.ascontiguousarray(a, dtype).view()
    view.flags.writeable = False
    return view


@njit(nogil=True, cache=True, inline="always")
def _cmp2(da: np.ndarray, a0: int, a1: int, db: np.ndarray, b0: int, b1: int) -> int:
    """Bytewise comparison of the strings ``da[a0:a1]`` and ``db[b0:b1]`` (-1, 0, 1): the
    order of Arrow's string sort (a prefix first)."""
    la, lb = a1 - a0, b1 - b0
    size = min(la, lb)
    for i in range(size):
        x, y = da[a0 + i], db[b0 + i]
        if x != y:
            return -1 if x < y else 1
    if la == lb:
        return 0
    return -1 if la < lb else 1


@njit(nogil=True, cache=True, inline="always")
def _cmp(data: np.ndarray, a0: int, a1: int, b0: int, b1: int) -> int:
    """:func:`_cmp2` of two strings in one buffer."""
    return _cmp2(data, a0, a1, data, b0, b1)


@njit(nogil=True, cache=True)
def _ascending(offsets: np.ndarray, data: np.ndarray) -> bool:
    for i in range(1, len(offsets) - 1):
        if _cmp(data, offsets[i - 1], offsets[i], offsets[i], offsets[i + 1]) >= 0:
            return False
    return True


def strictly_ascending(offsets: np.ndarray, data: np.ndarray) -> bool:
    """Whether the strings of (int64 offsets, bytes) ascend strictly, bytewise."""
    return bool(_ascending(_ro(offsets, np.int64), _ro(data, np.uint8)))


@njit(nogil=True, cache=True)
def _sorted_positions(oa: np.ndarray, da: np.ndarray, ob: np.ndarray, db: np.ndarray
                      ) -> np.ndarray:
    n, m = len(oa) - 1, len(ob) - 1
    out = np.full(n, -1, np.int64)
    j, r = 0, 1
    for i in range(n):
        while j < m:
            r = _cmp2(db, ob[j], ob[j + 1], da, oa[i], oa[i + 1])
            if r >= 0:
                break
            j += 1
        if j < m and r == 0:
            out[i] = j
    return out


def sorted_positions(oa: np.ndarray, da: np.ndarray, ob: np.ndarray, db: np.ndarray
                     ) -> np.ndarray | None:
    """For each string of A its position in B (-1: absent), both strictly ascending: one
    merge-join pass instead of a hash of B and a lookup per string of A.

    Args:
        oa, da: A's offsets (int64) and bytes (uint8).
        ob, db: B's.

    Returns:
        The positions (int64), or None when A or B is not strictly ascending.
    """
    args = [_ro(oa, np.int64), _ro(da, np.uint8),
            _ro(ob, np.int64), _ro(db, np.uint8)]
    if not (_ascending(args[0], args[1]) and _ascending(args[2], args[3])):
        return None
    return _sorted_positions(*args)


@njit(nogil=True, cache=True)
def _add_float(total: np.ndarray, codes: np.ndarray, x: np.ndarray) -> None:
    for i in range(len(codes)):
        total[codes[i]] += x[i]


@njit(nogil=True, cache=True)
def _add_int(total: np.ndarray, wraps: np.ndarray, codes: np.ndarray, x: np.ndarray) -> None:
    for i in range(len(codes)):
        c = codes[i]
        a, b = total[c], x[i]
        r = a + b  # wraps as int64 does; the wrap is counted
        if ((a ^ r) & (b ^ r)) < 0:
            wraps[c] += 1 if b > 0 else -1
        total[c] = r


def add_sums(total: np.ndarray, wraps: np.ndarray | None, codes: np.ndarray,
             x: np.ndarray) -> None:
    """Add ``x`` to ``total`` at ``codes``, one value at a time in row order (float: the same
    bits as ``np.bincount``'s weights); int64 wraps as numpy's do, each wrap counted in
    ``wraps`` (+1 up, -1 down: the exact sum is ``total + wraps * 2**64``).

    Args:
        total: the sums (float64, or int64 with ``wraps``), updated in place.
        wraps: int64 wrap counts per sum (None for floats).
        codes: each value's sum (int64).
        x: the values (float64 or int64, no nulls).
    """
    codes = _ro(codes, np.int64)
    if wraps is None:
        _add_float(total, codes, _ro(x, np.float64))
    else:
        _add_int(total, wraps, codes, _ro(x, np.int64))


@njit(nogil=True, cache=True)
def _extreme_update(best: np.ndarray, has: np.ndarray, count: np.ndarray, last: np.ndarray,
                    last_ok: np.ndarray, codes: np.ndarray, x: np.ndarray, valid: np.ndarray,
                    largest: bool) -> bool:
    odd = False
    for i in range(len(codes)):
        c = codes[i]
        count[c] += 1
        last_ok[c] = valid[i]
        if not valid[i]:  # a null's slot may hold anything: a null single row is 0
            last[c] = 0
            continue
        last[c] = x[i]
        v = x[i]
        if v != v or (v == 0 and np.signbit(v)):  # noqa: PLR0124  NaN, -0.0: Arrow's own rules decide
            odd = True
        if not has[c] or (largest and v > best[c]) or (not largest and v < best[c]):
            best[c] = v
            has[c] = True
    return odd


def numeric_extremes(codes: np.ndarray, chunks: list[tuple[np.ndarray, np.ndarray]], m: int,
                     largest: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Per code 0..m-1 the smallest (largest) valid value of rows read chunk by chunk; a code
    with one row keeps that row's value, valid or not (as a merge keeps a single input's
    row); None when a valid value is a float NaN or -0.0 (the caller uses Arrow's rules).

    Args:
        codes: each row's code over all chunks (int64).
        chunks: per chunk (values: int64 or float64 numpy, validity: bool), in order; a
            null's value is ignored.
        m: the codes.
        largest: max instead of min.

    Returns:
        (values, validity) per code, or None.
    """
    dtype = chunks[0][0].dtype if chunks else np.dtype(np.float64)
    best = np.zeros(m, dtype)
    has = np.zeros(m, np.bool_)
    count = np.zeros(m, np.int64)
    last = np.zeros(m, dtype)
    last_ok = np.zeros(m, np.bool_)
    at = 0
    for x, valid in chunks:
        n = len(x)
        if _extreme_update(best, has, count, last, last_ok,
                           _ro(codes[at:at + n], np.int64),
                           _ro(x, dtype), _ro(valid, np.bool_),
                           bool(largest)):
            return None
        at += n
    one = count == 1
    return np.where(one, last, best), np.where(one, last_ok, has)


@njit(nogil=True, cache=True, inline="always")
def _bit(bits: np.ndarray, i: int) -> bool:
    """Arrow validity bit ``i`` (an empty bitmap: every value valid)."""
    return len(bits) == 0 or (bits[i >> 3] >> (i & 7)) & 1 == 1


@njit(nogil=True, cache=True)
def _order_update(st: np.ndarray, codes: np.ndarray, o: np.ndarray, obits: np.ndarray,
                  ooff: int, fidx: np.ndarray, fbits: np.ndarray, foff: int,
                  fmap: np.ndarray, at: int, largest: bool) -> None:
    # st: per code its best row (-1: none yet), that row's time and file rank
    for i in range(len(codes)):
        if not _bit(obits, ooff + i):
            continue
        c = codes[i]
        t = o[i]
        r = fmap[fidx[i]] if _bit(fbits, foff + i) else -1
        b, bt, br = st[0, c], st[1, c], st[2, c]
        if b < 0 or (largest and (t > bt or (t == bt and r > br))) or \
                (not largest and (t < bt or (t == bt and r < br))):
            st[0, c] = at + i
            st[1, c] = t
            st[2, c] = r


def _validity_bytes(arr) -> tuple[np.ndarray, int]:
    """An Arrow array's validity bitmap as bytes and its bit offset (none: empty)."""
    bits = arr.buffers()[0]
    if bits is None or not arr.null_count:
        return np.zeros(0, np.uint8), 0
    return np.frombuffer(bits, np.uint8), arr.offset


def extreme_orders(codes: np.ndarray, chunks: list, m: int, largest: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per customer code 0..m-1 the row (over all chunks, in order) of its smallest (largest)
    valid (time, file rank), the first such row on a tie; -1: none (a row without a time has
    no value either, in every state built here). Read from the Arrow arrays' buffers
    (memory-mapped inputs: no copy, no null filling).

    Args:
        codes: each row's code over all chunks (int64, < m).
        chunks: per chunk (times: an int64 Arrow array, file codes: an int32 Arrow array,
            each file code's rank: int64 numpy), in order.
        m: the codes.
        largest: the largest (last) instead of the smallest (first).

    Returns:
        Per code: the chosen row, its time, whether that time is valid, its file rank (-1:
        none or a null file).
    """
    st = np.zeros((3, m), np.int64)
    st[0] = -1
    at = 0
    for o, fidx, fmap in chunks:
        n = len(o)
        obits, ooff = _validity_bytes(o)
        fbits, foff = _validity_bytes(fidx)
        _order_update(st, _ro(codes[at:at + n], np.int64),
                      _ro(np.frombuffer(o.buffers()[1], np.int64, n, 8 * o.offset), np.int64),
                      _ro(obits, np.uint8), ooff,
                      _ro(np.frombuffer(fidx.buffers()[1], np.int32, n,
                                                  4 * fidx.offset), np.int32),
                      _ro(fbits, np.uint8), foff, _ro(fmap, np.int64), at, bool(largest))
        at += n
    valid = st[0] >= 0
    return st[0], st[1], valid, np.where(valid, st[2], -1)


@njit(nogil=True, cache=True)
def _grouped(c: np.ndarray, v: np.ndarray, n: np.ndarray, counted: bool, m: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    size = len(c)
    starts = np.zeros(m + 1, np.int64)
    for x in range(size):
        starts[c[x] + 1] += 1
    for x in range(m):
        starts[x + 1] += starts[x]
    fill = starts[:m].copy()
    gv = np.empty(size, np.int64)
    gn = np.empty(size if counted else 0, np.int64)
    for x in range(size):  # a stable counting sort by customer
        at = fill[c[x]]
        gv[at] = v[x]
        if counted:
            gn[at] = n[x]
        fill[c[x]] = at + 1
    oc = np.empty(size, np.int64)
    ov = np.empty(size, np.int64)
    on = np.empty(size if counted else 0, np.int64)
    k = 0
    for g in range(m):
        s, e = starts[g], starts[g + 1]
        if e - s > 16:  # a big group: a sort (the sum of equal pairs does not need order)
            order = np.argsort(gv[s:e], kind="mergesort")
            gv[s:e] = gv[s:e][order]
            if counted:
                gn[s:e] = gn[s:e][order]
        else:  # insertion sort of a few values
            for i in range(s + 1, e):
                x = gv[i]
                y = gn[i] if counted else 0
                j = i - 1
                while j >= s and gv[j] > x:
                    gv[j + 1] = gv[j]
                    if counted:
                        gn[j + 1] = gn[j]
                    j -= 1
                gv[j + 1] = x
                if counted:
                    gn[j + 1] = y
        first = k
        for i in range(s, e):
            if k > first and ov[k - 1] == gv[i]:
                if counted:
                    on[k - 1] += gn[i]
                continue
            oc[k] = g
            ov[k] = gv[i]
            if counted:
                on[k] = gn[i]
            k += 1
    if not counted:
        return oc[:k], ov[:k], on
    return _nonzero_counts(oc, ov, on, k)


def distinct_grouped(codes: np.ndarray, vcode: np.ndarray, counts: np.ndarray | None,
                     m: int) -> dict[str, np.ndarray]:
    """:func:`distinct_runs` for pairs in any order (a merge of many inputs): a counting sort
    by customer code (0..m-1), then each customer's few value codes sorted in place.

    Args:
        codes: each pair's customer code (int64, < m).
        vcode: each pair's value code (int64).
        counts: each pair's count (int64), or None.
        m: the customer codes.

    Returns:
        ``c``, ``v`` (and ``n``), as :func:`distinct_runs`.
    """
    counted = counts is not None
    n = _ro(counts, np.int64) if counted else _ro(np.zeros(0), np.int64)
    oc, ov, on = _grouped(_ro(codes, np.int64),
                          _ro(vcode, np.int64), n, counted, int(m))
    out = {"c": oc, "v": ov}
    if counted:
        out["n"] = on
    return out


def warm_up() -> None:
    """Load (or compile) the kernels now."""
    one = np.zeros(1, np.int64)
    distinct_runs(one, one, None)
    distinct_runs(one, one, one)
    top_k_rows(one, one, one, 1, 1)
    offsets = np.array([0, 1], np.int64)
    data = np.array([97], np.uint8)
    add_sums(np.zeros(1), None, one, np.zeros(1))
    add_sums(one.copy(), one.copy(), one, one)
    extreme_orders(one, [(pa.array(one), pa.array(np.zeros(1, np.int32)), one)], 1, True)
    extreme_orders(one, [(pa.array([None], pa.int64()), pa.array([None], pa.int32()), one)],
                   1, True)
    sorted_positions(offsets, data, offsets, data)
    distinct_grouped(one, one, None, 1)
    distinct_grouped(one, one, one, 1)
    for x in (np.zeros(1), one):
        numeric_extremes(one, [(x, np.ones(1, bool))], 1, True)
