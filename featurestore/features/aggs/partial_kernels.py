"""Numba kernels of a file's SPEC §3a partial states at ingest: the first/last winners and their
order keys.

A file's ``first`` / ``last`` partial (:func:`.kernels._first_last_partial`) keeps, per
customer, the value of the row with the smallest (largest) order key ``hit|file|row|product``
and that key as a zero-padded string. Both were numpy/Arrow passes over every row
(``ufunc.at`` per key part, then the winners' keys padded and joined by string kernels, ~9 ms
a file of the issue #26 benchmark drop); here they are one pass each.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["extreme_rows", "order_key_bytes", "warm_up"]


@njit(nogil=True, cache=True)
def _extreme(codes: np.ndarray, major: np.ndarray, minor: np.ndarray, m: int,
             largest: bool) -> np.ndarray:
    best = np.full(m, -1, np.int64)
    for i in range(len(codes)):
        c = codes[i]
        b = best[c]
        if b < 0:
            best[c] = i
        elif largest:  # ties: the later row, as a stable sort's last
            if major[i] > major[b] or (major[i] == major[b] and minor[i] >= minor[b]):
                best[c] = i
        elif major[i] < major[b] or (major[i] == major[b] and minor[i] < minor[b]):
            best[c] = i  # ties: the earlier row kept
    return best


def extreme_rows(codes: np.ndarray, major: np.ndarray, minor: np.ndarray,
                 largest: bool) -> np.ndarray:
    """Per customer code present (ascending), the row whose (``major``, ``minor``) is the
    smallest (largest); among equal rows the first (last).

    Args:
        codes: each row's customer code (>= 0).
        major: each row's first order part (int64).
        minor: each row's second order part (int64).
        largest: pick the largest (else the smallest).

    Returns:
        The winning rows (int64), one per distinct code, in code order.
    """
    if not len(codes):
        return np.zeros(0, np.int64)
    c = np.ascontiguousarray(codes, np.int64)
    best = _extreme(c, np.ascontiguousarray(major, np.int64),
                    np.ascontiguousarray(minor, np.int64), int(c.max()) + 1, bool(largest))
    return best[best >= 0]


@njit(nogil=True, cache=True)
def _key_bytes(parts: np.ndarray, widths: np.ndarray, middle: np.ndarray) -> np.ndarray:
    k = parts.shape[1]
    ten, zero = np.uint64(10), np.uint64(48)
    width = widths[0] + 1 + len(middle) + 1 + widths[1] + 1 + widths[2]
    out = np.empty(k * width, np.uint8)
    for i in range(k):
        at = i * width
        for p in range(3):
            if p == 1:  # the file id between the hit time and the row
                out[at] = 124
                at += 1
                for j in range(len(middle)):
                    out[at + j] = middle[j]
                at += len(middle)
            if p > 0:
                out[at] = 124  # "|"
                at += 1
            v = parts[p, i]  # unsigned: a division by 10 is a multiply, no floor fix-up
            w = widths[p]
            for j in range(w - 1, -1, -1):
                q = v // ten
                out[at + j] = np.uint8(zero + (v - q * ten))  # (uint64 only: no float mix)
                v = q
            at += w
    return out


def order_key_bytes(hit: np.ndarray, row: np.ndarray, position: np.ndarray, file_id: str,
                    widths: tuple[int, int, int]) -> tuple[np.ndarray, int]:
    """The order keys ``hit|file|row|position``, each part zero-padded to its width, back to
    back (every key the same length): what Arrow's ``utf8_lpad`` and
    ``binary_join_element_wise`` give when every part is in ``[0, 10^width)``.

    Args:
        hit: hit times.
        row: line positions.
        position: product positions within the hit.
        file_id: the file's id.
        widths: the three parts' widths.

    Returns:
        (the keys' UTF-8 bytes, one key's length).
    """
    middle = np.frombuffer(file_id.encode(), np.uint8)
    parts = np.vstack([np.asarray(hit, np.int64), np.asarray(row, np.int64),
                       np.asarray(position, np.int64)]).astype(np.uint64)  # all >= 0
    out = _key_bytes(parts, np.asarray(widths, np.int64), np.ascontiguousarray(middle))
    return out, sum(widths) + 3 + len(middle)


def warm_up() -> None:
    """Load (or compile) the kernels now."""
    one = np.zeros(1, np.int64)
    extreme_rows(one, one, one, True)
    order_key_bytes(one, one, one, "f", (12, 10, 5))
