"""Publishing feature-table partitions.

Tables go through pyarrow rather than ``Store.write_parquet`` (fastparquet): fastparquet records
a nullable ``Int64`` column's numpy type as ``int64``, so ``pandas.read_parquet`` reads it back
as float64; pyarrow's pandas metadata keeps ``Int64`` (SPEC §4: nullable day counts). The commit
protocol is the store's own (``Store.publishing``: temp name + rename, or one PUT on S3).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pyarrow as pa

from ..schema import conform
from ..storage import Store

__all__ = ["arrow_table", "large_strings", "parquet_bytes", "read_ipc", "write_arrow", "write_ipc",
           "write_table"]


def write_arrow(store: Store, table: pa.Table, *parts: str, unique: tuple[str, ...] = ()) -> None:
    """Publish ``table`` atomically as one parquet file at ``parts``.

    Min/max statistics for the non-string columns only: every partition spans the whole range
    of customer and product ids, so their statistics would prune nothing, and computing them
    is a third of the time of writing a customer x product table. ``unique`` names columns
    with a distinct value per row (a table's key): a dictionary of them would save nothing.
    Every table is conformed to the store's column types first (``featurestore.schema``).
    """
    store.write_bytes(parquet_bytes(table, unique), *parts)


def parquet_bytes(table: pa.Table, unique: tuple[str, ...] = ()) -> bytes:
    """The parquet file :func:`write_arrow` publishes for ``table`` (to write it in several
    places without encoding it twice).

    Args:
        table: the rows.
        unique: as for :func:`write_arrow`.

    Returns:
        The file's bytes.
    """
    from ..storage import parquet_bytes

    table = conform(table)
    strings = {f.name for f in table.schema if _is_string(f.type)}
    return parquet_bytes(table, [n for n in table.schema.names if n not in strings],
                          [n for n in table.schema.names if n not in unique])


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def large_strings(values) -> pa.Array:
    """Strings (Arrow, chunked Arrow or a pandas string array) as one Arrow large_string
    array: zero-copy when they already are."""
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


@functools.lru_cache(maxsize=64)
def _pandas_schema(columns: tuple[tuple[str, str], ...]) -> pa.Schema:
    return pa.Schema.from_pandas(
        pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in columns}),
        preserve_index=False)


def arrow_table(columns: dict[str, pa.Array | np.ndarray],
                missing: dict[str, np.ndarray] | None = None) -> pa.Table:
    """A table of Arrow string arrays and numpy columns, with the schema and pandas metadata
    ``Table.from_pandas`` would give the same DataFrame (integer columns in ``missing``, with
    their null masks, read back as nullable ``Int64``), without building the DataFrame.

    A dictionary-encoded string array stays encoded (its field a dictionary of the string
    type): :meth:`Store.write_arrow` writes it as a dictionary page, read back as strings."""
    missing = missing or {}

    def dtype(name: str, values) -> str:
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            return "string"
        return "Int64" if name in missing else str(values.dtype)

    schema = _pandas_schema(tuple((n, dtype(n, v)) for n, v in columns.items()))
    arrays = []
    for i, ((name, values), field) in enumerate(zip(columns.items(), schema, strict=True)):
        if name in missing:
            values = pa.array(values, mask=missing[name], type=field.type)
        elif isinstance(values, pa.DictionaryArray):
            values = values.cast(pa.dictionary(values.type.index_type, field.type))
            schema = schema.set(i, field.with_type(values.type))
        elif isinstance(values, (pa.Array, pa.ChunkedArray)):
            values = values.cast(field.type)
        else:
            values = pa.array(values, type=field.type)
        arrays.append(values)
    return pa.Table.from_arrays(arrays, schema=schema)


def write_ipc(store: Store, table: pa.Table, *parts: str) -> None:
    """Publish ``table`` atomically as one Arrow IPC file: for internal state read back only by
    us, where parquet's encoding and compression would be pure cost. A local file is streamed
    into the store's temporary file, then renamed (no in-memory copy of the whole file: a
    §3a partial is ~20 MB); a remote one is one PUT of the bytes."""
    if store.is_local:
        with store.publishing(*parts) as target, pa.OSFile(target, "wb") as sink, \
                pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        return
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    store.write_bytes(memoryview(sink.getvalue()), *parts)


def read_ipc(store: Store, *parts: str, columns: list[str] | None = None) -> pa.Table:
    """Read an Arrow IPC file. A local one is memory-mapped: the columns are views of the page
    cache (read-only), so columns not asked for are never touched and nothing is copied."""
    if store.is_local:
        source = pa.memory_map(store.path(*parts))
    else:
        with store.fs.open(store.path(*parts), "rb") as f:
            source = pa.py_buffer(f.read())
    table = pa.ipc.open_file(source).read_all()
    return table.select(columns) if columns is not None else table


def write_table(store: Store, df: pd.DataFrame, *parts: str) -> None:
    """Publish ``df`` atomically as one parquet file at ``parts`` (dtypes kept for pandas)."""
    write_arrow(store, pa.Table.from_pandas(df, preserve_index=False), *parts)
