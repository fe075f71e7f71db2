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
from numba import njit

__all__ = ["distinct_runs", "top_k_rows", "warm_up"]


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
    keep = 0
    for x in range(k):  # zero sums dropped (a count slid back to nothing)
        if on[x] != 0:
            oc[keep] = oc[x]
            ov[keep] = ov[x]
            on[keep] = on[x]
            keep += 1
    return oc[:keep], ov[:keep], on[:keep]


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


def warm_up() -> None:
    """Load (or compile) the kernels now."""
    one = np.zeros(1, np.int64)
    distinct_runs(one, one, None)
    distinct_runs(one, one, one)
    top_k_rows(one, one, one, 1, 1)
