"""The recordIO-protobuf writer's numba kernels (:func:`.recordio.write_recordio_protobuf`):
the byte layout of one ``Record`` per CSR row, as :func:`.recordio.encode_record` builds it,
framed by RecordIO. A module of its own so importing :mod:`.recordio` does not import numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["encode_rows", "record_sizes"]


@njit(cache=True)
def _varint_len(v: int) -> int:  # pragma: no cover - compiled
    n = 1
    while v >= 128:
        v >>= 7
        n += 1
    return n


@njit(cache=True)
def _put_varint(out: np.ndarray, pos: int, v: int) -> int:  # pragma: no cover - compiled
    while v >= 128:
        out[pos] = (v & 0x7F) | 0x80
        v >>= 7
        pos += 1
    out[pos] = v
    return pos + 1


@njit(cache=True)
def _row_lengths(indptr: np.ndarray, keys: np.ndarray, r: int, dim: int
                 ) -> tuple[int, int, int, int, int]:  # pragma: no cover - compiled
    """(tensor, value, entry, features) lengths and the keys' varint bytes of row ``r``."""
    a, b = indptr[r], indptr[r + 1]
    kb = 0
    for p in range(a, b):
        kb += _varint_len(keys[p])
    dl = _varint_len(dim)
    tensor = 1 + 1 + dl  # shape = 3: [dim]
    if b > a:
        vb = 4 * (b - a)
        tensor += 1 + _varint_len(vb) + vb + 1 + _varint_len(kb) + kb
    value = 1 + _varint_len(tensor) + tensor  # Value.float32_tensor = 2
    entry = 8 + 1 + _varint_len(value) + value  # key "values", value = 2
    features = 1 + _varint_len(entry) + entry  # Record.features = 1
    return tensor, value, entry, features, kb


_LABEL = 20  # Record.label = 2 holding {"values": Float32Tensor(values=[y])}: always 20 bytes


@njit(cache=True)
def record_sizes(indptr: np.ndarray, keys: np.ndarray, lo: int, hi: int, dim: int
                  ) -> np.ndarray:  # pragma: no cover - compiled
    sizes = np.empty(hi - lo, np.int64)
    for r in range(lo, hi):
        n = _row_lengths(indptr, keys, r, dim)[3] + _LABEL
        sizes[r - lo] = 8 + n + (-n) % 4
    return sizes


@njit(cache=True)
def _put_key(out: np.ndarray, pos: int) -> int:  # pragma: no cover - compiled
    out[pos], out[pos + 1] = 0x0A, 6  # map key = 1: "values"
    for i, c in enumerate((118, 97, 108, 117, 101, 115)):
        out[pos + 2 + i] = c
    return pos + 8


@njit(cache=True)
def encode_rows(indptr: np.ndarray, keys: np.ndarray, values: np.ndarray, labels: np.ndarray,
                 lo: int, hi: int, dim: int, sizes: np.ndarray,
                 out: np.ndarray) -> None:  # pragma: no cover - compiled
    pos = 0
    for r in range(lo, hi):
        tensor, value, entry, features, kb = _row_lengths(indptr, keys, r, dim)
        n = features + _LABEL
        start = pos
        # RecordIO header: magic 0xCED7230A, then the length (flag bits 0), little-endian
        out[pos], out[pos + 1], out[pos + 2], out[pos + 3] = 0x0A, 0x23, 0xD7, 0xCE
        for i in range(4):
            out[pos + 4 + i] = (n >> (8 * i)) & 0xFF
        pos += 8
        out[pos] = 0x0A  # Record.features = 1
        pos = _put_varint(out, pos + 1, entry)
        pos = _put_key(out, pos)
        out[pos] = 0x12  # entry value = 2
        pos = _put_varint(out, pos + 1, value)
        out[pos] = 0x12  # Value.float32_tensor = 2
        pos = _put_varint(out, pos + 1, tensor)
        a, b = indptr[r], indptr[r + 1]
        if b > a:
            out[pos] = 0x0A  # values = 1, packed float32
            pos = _put_varint(out, pos + 1, 4 * (b - a))
            for i in range(4 * a, 4 * b):
                out[pos] = values[i]
                pos += 1
            out[pos] = 0x12  # keys = 2, packed varints
            pos = _put_varint(out, pos + 1, kb)
            for p in range(a, b):
                pos = _put_varint(out, pos, keys[p])
        out[pos] = 0x1A  # shape = 3
        pos = _put_varint(out, pos + 1, _varint_len(dim))
        pos = _put_varint(out, pos, dim)
        # Record.label = 2: {"values": Float32Tensor(values=[y])}
        out[pos], out[pos + 1] = 0x12, 18
        pos = _put_key(out, pos + 2)
        out[pos], out[pos + 1], out[pos + 2], out[pos + 3] = 0x12, 8, 0x12, 6
        out[pos + 4], out[pos + 5] = 0x0A, 4
        for i in range(4):
            out[pos + 6 + i] = labels[4 * r + i]
        pos = start + sizes[r - lo]  # the padding is already zero
