"""A numba kernel over Arrow string buffers: placing sorted runs of ids in a state's id order.

Materialization places ids in a customer state's id order (the day's customers, the customers
of the pair window; issue #27: 500 k customers, 1.3 M pair rows on a store's first day). A
vectorised binary search re-gathers Arrow strings on each of its ~20 rounds; the kernel here
works on the raw buffers and starts each needle's search from the previous needle's place, so
the usual needles (sorted runs: daily rows and pair windows are sorted) cost a merge. Needles
in no useful order keep the vectorised search (a per-needle search of random places is slower
than its gathers): :func:`descents` tells them apart.

Order is Arrow's byte order (``sort_indices``, ``less``), which for UTF-8 is code point order:
the results are exactly those of the Arrow functions they replace.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

__all__ = ["buffers", "descents", "packed_codes", "run_codes", "search_sorted", "sorted_members",
           "sorted_run_codes", "warm_up"]


def buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of a string array without nulls, as numpy views (no copy).

    Args:
        values: a ``string`` or ``large_string`` Arrow array (chunked: combined first).

    Returns:
        int32/int64 offsets (``len + 1``, the array's slice applied) and uint8 bytes.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    _, off, data = values.buffers()
    offsets = np.frombuffer(off, dtype=width)[values.offset:values.offset + len(values) + 1] \
        if off is not None else np.zeros(1, dtype=width)
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None and data.size else \
        np.zeros(0, dtype=np.uint8)
    return offsets, raw


@njit(inline="always")
def _compare(a: np.ndarray, a0: int, a1: int, b: np.ndarray, b0: int, b1: int) -> int:
    """-1, 0 or 1: byte string a[a0:a1] against b[b0:b1]."""
    n = min(a1 - a0, b1 - b0)
    for k in range(n):
        x, y = a[a0 + k], b[b0 + k]
        if x != y:
            return -1 if x < y else 1
    la, lb = a1 - a0, b1 - b0
    return 0 if la == lb else (-1 if la < lb else 1)


@njit(nogil=True, cache=True)
def _search(hay_off: np.ndarray, hay: np.ndarray, order: np.ndarray,
            needle_off: np.ndarray, needles: np.ndarray) -> np.ndarray:
    n, m = len(order), len(needle_off) - 1
    out = np.empty(m, dtype=np.int64)
    prev = 0  # the previous needle's place: a sorted run of needles only searches forward
    for i in range(m):
        s, e = needle_off[i], needle_off[i + 1]
        lo, hi = 0, n
        if i > 0 and _compare(needles, needle_off[i - 1], needle_off[i], needles, s, e) <= 0:
            lo = prev
            step = 1  # gallop from there: a short hop when the needles are dense
            while lo + step < n:
                j = order[lo + step - 1]
                if _compare(hay, hay_off[j], hay_off[j + 1], needles, s, e) < 0:
                    lo += step
                    step *= 2
                else:
                    hi = lo + step
                    break
        while lo < hi:
            mid = (lo + hi) // 2
            j = order[mid]
            if _compare(hay, hay_off[j], hay_off[j + 1], needles, s, e) < 0:
                lo = mid + 1
            else:
                hi = mid
        out[i] = lo
        prev = lo
    return out


@njit(nogil=True, cache=True)
def _descents(off: np.ndarray, data: np.ndarray) -> int:
    out = 0
    for i in range(1, len(off) - 1):
        if _compare(data, off[i - 1], off[i], data, off[i], off[i + 1]) > 0:
            out += 1
    return out


def descents(values: pa.Array) -> int:
    """How many values are less than the one before them (0: sorted; k: k + 1 sorted runs).

    Args:
        values: strings without nulls.

    Returns:
        The count.
    """
    off, data = buffers(values)
    return int(_descents(off, data))


@njit(nogil=True, cache=True)
def _run_codes(off: np.ndarray, data: np.ndarray) -> tuple[bool, np.ndarray, np.ndarray]:
    n = len(off) - 1
    codes = np.empty(n, dtype=np.int64)
    starts = np.empty(n, dtype=np.int64)
    k = 0
    for i in range(n):
        if i > 0:
            c = _compare(data, off[i - 1], off[i], data, off[i], off[i + 1])
            if c > 0:
                return False, codes, starts
            if c < 0:
                k += 1
                starts[k] = i
        else:
            starts[0] = 0
        codes[i] = k
    return True, codes, starts[:k + 1] if n else starts[:0]


def run_codes(values: pa.Array) -> tuple[pa.Array, np.ndarray] | None:
    """:func:`~.pairs.sorted_codes` of values already sorted (repeats allowed), by one pass
    over the bytes, or None when they are not sorted (or have nulls).

    Args:
        values: strings.

    Returns:
        (sorted distinct values, each value's position among them), or None.
    """
    if values.null_count:
        return None
    off, data = buffers(values)
    ok, codes, starts = _run_codes(off, data)
    if not ok:
        return None
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values.take(pa.array(starts)), codes


@njit(nogil=True, cache=True)
def _packed(off: np.ndarray, data: np.ndarray) -> tuple[bool, np.ndarray]:
    n = len(off) - 1
    keys = np.empty(n, dtype=np.uint64)
    for i in range(n):
        s, e = off[i], off[i + 1]
        if e - s > 8:
            return False, keys
        k = np.uint64(0)
        for j in range(8):
            b = np.uint64(0)
            if s + j < e:
                b = np.uint64(data[s + j])
                if b == 0:  # "a" and "a\0" would pack alike
                    return False, keys
            k = (k << np.uint64(8)) | b
        keys[i] = k
    return True, keys


@njit(nogil=True, cache=True)
def _int_codes(keys: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes of integer keys by radix partitions (2**bits, by a hash's top bits) each coded
    with a hash table that stays in cache: two sequential passes and a scatter, instead of a
    cache miss per row in one table of every distinct key (``bits`` <= 20)."""
    n = len(keys)
    parts = 1 << bits
    hashes = np.empty(n, dtype=np.uint64)
    counts = np.zeros(parts + 1, dtype=np.int64)
    for i in range(n):
        h = keys[i] * np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(31)
        hashes[i] = h
        counts[np.int64((h >> np.uint64(40)) & np.uint64(parts - 1)) + 1] += 1
    for p in range(parts):
        counts[p + 1] += counts[p]
    fill = counts[:-1].copy()
    rows = np.empty(n, dtype=np.int64)
    for i in range(n):
        p = np.int64((hashes[i] >> np.uint64(40)) & np.uint64(parts - 1))
        rows[fill[p]] = i
        fill[p] += 1
    codes = np.empty(n, dtype=np.int64)
    uniques = np.empty(n, dtype=np.uint64)
    k = 0
    for p in range(parts):
        lo, hi = counts[p], counts[p + 1]
        cap = 16
        while cap < 2 * (hi - lo):
            cap *= 2
        slots = np.full(cap, -1, dtype=np.int64)
        for r in range(lo, hi):
            i = rows[r]
            key = keys[i]
            pos = np.int64(hashes[i] & np.uint64(cap - 1))
            while True:
                c = slots[pos]
                if c < 0:
                    slots[pos] = k
                    uniques[k] = key
                    codes[i] = k
                    k += 1
                    break
                if uniques[c] == key:
                    codes[i] = c
                    break
                pos = (pos + 1) & (cap - 1)
    return codes, uniques[:k]


@njit(nogil=True, cache=True)
def _unpack(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(keys)
    off = np.zeros(n + 1, dtype=np.int64)
    data = np.empty(8 * n, dtype=np.uint8)
    at = 0
    for i in range(n):
        k = keys[i]
        for j in range(8):
            b = np.uint8((k >> np.uint64(56 - 8 * j)) & np.uint64(255))
            if b == 0:
                break
            data[at] = b
            at += 1
        off[i + 1] = at
    return off, data[:at]


@njit(nogil=True, cache=True)
def _radix_order(keys: np.ndarray) -> np.ndarray:
    """The stable order of uint64 ``keys``: LSD radix by bytes, one histogram pass for all
    eight, and a byte every key shares (the "C" of "C123456", the padding) costs no pass."""
    n = len(keys)
    counts = np.zeros((8, 256), dtype=np.int64)
    for i in range(n):
        k = keys[i]
        for b in range(8):
            counts[b, np.int64((k >> np.uint64(8 * b)) & np.uint64(255))] += 1
    order = np.arange(n)
    spare = np.empty(n, dtype=np.int64)
    starts = np.empty(256, dtype=np.int64)
    for b in range(8):
        if counts[b].max() == n:  # one value in this byte: the order stands
            continue
        at = 0
        for d in range(256):
            starts[d] = at
            at += counts[b, d]
        shift = np.uint64(8 * b)
        for i in range(n):
            j = order[i]
            d = np.int64((keys[j] >> shift) & np.uint64(255))
            spare[starts[d]] = j
            starts[d] += 1
        order, spare = spare, order
    return order


#: :func:`_sorted_key_codes` groups byte positions into one radix digit while their distinct
#: byte values multiply to at most this many buckets (a count array that stays in cache).
_DIGIT_BUCKETS = 4096


@njit(nogil=True, cache=True)
def _sorted_key_codes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each uint64 key's code in the sorted distinct keys, and those keys: one LSD radix sort
    of every key, then its runs. A digit is not a byte: the byte positions whose values vary
    are grouped, the distinct values of each ranked, into digits of up to
    :data:`_DIGIT_BUCKETS` buckets (ids such as ``C123456`` take 2 passes, not 6). Cheaper
    than hashing then sorting the distinct keys when most keys are distinct (a file's
    customers)."""
    n = len(keys)
    varying = np.uint64(0)
    for i in range(1, n):
        varying |= keys[i] ^ keys[0]
    counts = np.zeros((8, 256), dtype=np.int64)
    for b in range(8):
        if (varying >> np.uint64(8 * b)) & np.uint64(255):
            shift = np.uint64(8 * b)
            for i in range(n):
                counts[b, np.int64((keys[i] >> shift) & np.uint64(255))] += 1
    rank = np.zeros((8, 256), dtype=np.int64)
    sizes = np.ones(8, dtype=np.int64)
    for b in range(8):
        r = 0
        for v in range(256):
            if counts[b, v]:
                rank[b, v] = r
                r += 1
        sizes[b] = max(r, 1)
    order = np.arange(n)
    spare = np.empty(n, dtype=np.int64)
    digit = np.empty(n, dtype=np.int64)
    b = 0
    while b < 8:
        if sizes[b] <= 1:  # one value in this byte: the order stands
            b += 1
            continue
        lo, width = b, 1
        while b < 8 and width * sizes[b] <= _DIGIT_BUCKETS:
            width *= sizes[b]
            b += 1
        cnt = np.zeros(width + 1, dtype=np.int64)
        digit[:] = 0
        mult = 1
        for p in range(lo, b):
            if sizes[p] > 1:
                shift = np.uint64(8 * p)
                for i in range(n):
                    digit[i] += rank[p, np.int64((keys[i] >> shift) & np.uint64(255))] * mult
                mult *= sizes[p]
        for i in range(n):
            cnt[digit[i] + 1] += 1
        for d in range(width):
            cnt[d + 1] += cnt[d]
        for i in range(n):
            j = order[i]
            d = digit[j]
            spare[cnt[d]] = j
            cnt[d] += 1
        order, spare = spare, order
    codes = np.empty(n, dtype=np.int64)
    uniques = np.empty(n, dtype=np.uint64)
    c = -1
    for i in range(n):
        j = order[i]
        k = keys[j]
        if c < 0 or k != uniques[c]:
            c += 1
            uniques[c] = k
        codes[j] = c
    return codes, uniques[:c + 1]


def _packed_keys(values: pa.Array, nulls: bool = False) -> np.ndarray | None:
    """Each string of ``values`` packed big-endian into a uint64 (:func:`_packed`), or None
    when one is null (unless ``nulls``: a null slot's key is then meaningless), longer than
    8 bytes or holds NUL."""
    if values.null_count and not nulls:
        return None
    ok, keys = _packed(*buffers(values))
    return keys if ok else None


def packed_codes(values: pa.Array, keep: np.ndarray | None = None, *, mostly_distinct=False
                 ) -> tuple[pa.Array, np.ndarray] | None:
    """:func:`~.pairs.sorted_codes` of short strings (at most 8 bytes, no NUL: customer
    ids, product ids), each packed big-endian into a uint64 (whose order is the strings'
    byte order) and coded by :func:`_int_codes`; None for other strings.

    Args:
        values: strings without nulls (outside ``keep``).
        keep: which strings to code (bool; None: all): the others are left out without a
            filtered copy of the strings.
        mostly_distinct: few strings repeat (a file's customers): every key is sorted
            (:func:`_sorted_key_codes`) instead of hashed and the distinct ones sorted. The
            same result either way.

    Returns:
        (sorted distinct values, each kept value's position among them), or None.
    """
    keys = _packed_keys(values, nulls=keep is not None)
    if keys is None:
        return None
    if keep is not None:
        keys = keys[keep]
    codes, ordered = _key_codes(keys, mostly_distinct)
    return _unpacked(ordered, pa.types.is_large_string(values.type)), codes


def _key_codes(keys: np.ndarray, mostly_distinct: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
    """Each uint64 key's position among the sorted distinct keys, and those keys: every key
    sorted (``mostly_distinct``, :func:`_sorted_key_codes`), else hashed and only the
    distinct ones sorted."""
    if mostly_distinct:
        return _sorted_key_codes(keys)
    bits = max(0, min(14, len(keys).bit_length() - 10))  # partitions of ~1 k rows
    codes, uniques = _int_codes(keys, bits)
    order = _radix_order(uniques)  # (distinct keys: the one sorted order, ~4x argsort)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], uniques[order]


def _unpacked(ordered: np.ndarray, large: bool) -> pa.Array:
    """The strings of packed uint64 keys (:func:`_unpack`), as large_string or string."""
    new_off, new_data = _unpack(ordered)
    return pa.Array.from_buffers(
        pa.large_string() if large else pa.string(), len(ordered),
        [None, pa.py_buffer(new_off if large else new_off.astype(np.int32)),
         pa.py_buffer(new_data)])


def search_sorted(ids: pa.Array, order: np.ndarray, needles: pa.Array) -> np.ndarray:
    """Per needle, how many of ``ids`` are less than it (its insertion point in id order).

    Args:
        ids: strings without nulls.
        order: positions of ``ids`` in id order (Arrow's byte order).
        needles: strings without nulls (any order; sorted runs are cheapest).

    Returns:
        int64 ranks in ``[0, len(ids)]``.
    """
    hay_off, hay = buffers(ids)
    needle_off, data = buffers(needles)
    return _search(hay_off, hay, np.ascontiguousarray(order, dtype=np.int64), needle_off, data)


@njit(nogil=True, cache=True)
def _members(key_off: np.ndarray, keys: np.ndarray, set_off: np.ndarray,
             values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n, m = len(key_off) - 1, len(set_off) - 1
    found = np.zeros(n, dtype=np.bool_)
    hit = np.zeros(m, dtype=np.bool_)
    j = 0
    for i in range(n):
        s, e = key_off[i], key_off[i + 1]
        while j < m and _compare(values, set_off[j], set_off[j + 1], keys, s, e) < 0:
            j += 1
        if j < m and _compare(values, set_off[j], set_off[j + 1], keys, s, e) == 0:
            found[i] = True
            hit[j] = True
    return found, hit


def sorted_members(keys: pa.Array, values: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """Which ``keys`` are among ``values`` and which ``values`` some key matched, by one merge
    of the two when both are sorted (Arrow's byte order); None when either is not (or has
    nulls): the caller hashes instead.

    Args:
        keys: strings (repeats allowed).
        values: strings.

    Returns:
        (bool per key, bool per value), or None.
    """
    if keys.null_count or values.null_count or descents(keys) or descents(values):
        return None
    key_off, key_data = buffers(keys)
    set_off, set_data = buffers(values)
    return _members(key_off, key_data, set_off, set_data)


def sorted_run_codes(chunks: list[pa.Array]) -> tuple[pa.Array, np.ndarray] | None:
    """:func:`packed_codes` of the strings of several chunks, each sorted (a merge's inputs:
    sorted customer ids), without concatenating them: each chunk's strings packed into uint64
    keys, then the sorted runs joined by one k-way merge (:func:`_merged_runs`), instead of a
    hash or a sort of every key.

    Args:
        chunks: string arrays without nulls (string or large_string), in order.

    Returns:
        (sorted distinct values (large_string), each value's position among them, over the
        chunks in order), or None when a value is longer than 8 bytes or holds NUL.
    """
    keys = []
    for chunk in chunks:
        packed = _packed_keys(chunk)
        if packed is None:
            return None
        keys.append(packed)
    starts = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum([len(k) for k in keys], out=starts[1:])
    keys = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
    ok, codes, uniques = _merged_runs(keys, starts)
    if not ok:  # a chunk out of order: the keys coded as packed_codes codes them
        codes, uniques = _key_codes(keys)
    return _unpacked(uniques, large=True), codes


@njit(nogil=True, cache=True)
def _merged_runs(keys: np.ndarray, starts: np.ndarray
                 ) -> tuple[bool, np.ndarray, np.ndarray]:
    """Join the ascending runs ``keys[starts[j]:starts[j + 1]]`` with a binary heap of their
    heads: (whether every run ascends, each key's position among the distinct keys, those
    keys ascending). n log(runs) comparisons, no sort and no gather of every key."""
    n = len(keys)
    r = len(starts) - 1
    codes = np.empty(n, dtype=np.int64)
    for j in range(r):
        for i in range(starts[j] + 1, starts[j + 1]):
            if keys[i] < keys[i - 1]:
                return False, codes, keys[:0]
    heap_key = np.empty(r, dtype=np.uint64)
    heap_run = np.empty(r, dtype=np.int64)
    pos = starts[:r].copy()
    size = 0
    for j in range(r):  # push each run's head (sift up)
        if starts[j] < starts[j + 1]:
            k, at = keys[starts[j]], size
            size += 1
            while at > 0:
                up = (at - 1) >> 1
                if heap_key[up] <= k:
                    break
                heap_key[at], heap_run[at] = heap_key[up], heap_run[up]
                at = up
            heap_key[at], heap_run[at] = k, j
    uniques = np.empty(n, dtype=np.uint64)
    d = -1
    while size > 0:
        k, j = heap_key[0], heap_run[0]
        if d < 0 or uniques[d] != k:
            d += 1
            uniques[d] = k
        codes[pos[j]] = d
        pos[j] += 1
        if pos[j] < starts[j + 1]:  # the run's next key replaces the head
            k = keys[pos[j]]
        else:  # the run is done: the heap's last entry replaces the head
            size -= 1
            k, j = heap_key[size], heap_run[size]
        at = 0
        while True:  # sift down
            child = 2 * at + 1
            if child >= size:
                break
            if child + 1 < size and heap_key[child + 1] < heap_key[child]:
                child += 1
            if heap_key[child] >= k:
                break
            heap_key[at], heap_run[at] = heap_key[child], heap_run[child]
            at = child
        if size > 0:
            heap_key[at], heap_run[at] = k, j
    return True, codes, uniques[:d + 1]


def warm_up() -> None:
    """Load (or compile) the kernels now, so the first materialization does not."""
    ids = pa.array(["a", "b"], pa.large_string())
    descents(ids)
    run_codes(ids)
    packed_codes(ids)
    packed_codes(pa.array(["a"], pa.string()))
    packed_codes(ids, mostly_distinct=True)
    sorted_members(ids, ids)
    sorted_run_codes([ids, ids])
    # 32-bit offsets too: the online handover merges ``string`` ids (a first materialization
    # inside ``featurestore ingest`` otherwise loaded these two overloads on its critical path)
    sorted_members(pa.array(["a"], pa.string()), pa.array(["a"], pa.string()))
    search_sorted(ids, np.array([0, 1]), ids)
    search_sorted(pa.array(["a"], pa.string()), np.array([0]), ids)
