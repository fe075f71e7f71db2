"""Numba kernels of a file's SPEC §3a partial states at ingest: the first/last winners.

A file's ``first`` / ``last`` partial (:func:`.kernels._first_last_partial`) keeps, per
customer, the value of the row with the smallest (largest) (hit time, line, product
position), with that hit time and the file id. The winners were numpy ``ufunc.at`` passes, one
per order part; here they are one pass.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["extreme_rows", "extreme_values", "warm_up"]


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
def _extreme_values(codes: np.ndarray, x: np.ndarray, m: int, largest: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
    best = np.zeros(m, x.dtype)
    has = np.zeros(m, np.bool_)
    for i in range(len(codes)):
        c = codes[i]
        v = x[i]
        if not has[c] or (largest and v > best[c]) or (not largest and v < best[c]):
            best[c] = v
            has[c] = True
    return best, has


def extreme_values(codes: np.ndarray, x: np.ndarray, m: int, largest: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per code 0..m-1 the smallest (largest) of its values, and whether it has any (ints,
    or floats without NaN or -0.0: the value ``np.minimum.at`` / ``np.maximum.at`` give).

    Args:
        codes: each value's code (< m).
        x: the values (a numeric numpy array).
        m: the codes.
        largest: the largest instead of the smallest.

    Returns:
        (the extremes, which codes have a value).
    """
    if x.dtype.kind == "f":
        x = np.ascontiguousarray(x, np.float64)
    else:
        x = np.ascontiguousarray(x, np.int64)
    return _extreme_values(np.ascontiguousarray(codes, np.int64), x, int(m), bool(largest))


def warm_up() -> None:
    """Load (or compile) the kernels now."""
    one = np.zeros(1, np.int64)
    extreme_rows(one, one, one, True)
    for x in (one, np.zeros(1)):
        extreme_values(one, x, 1, True)
