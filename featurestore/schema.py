"""The one set of column types every published table has, so BI tools read them alike.

Writers call :func:`conform` on a table just before it is written (events, transactions,
feature tables, training sets, predictions); readers that want dates for the partition keys
pass :func:`partitioning` (see docs/dashboards.md, "How the types read").

The rules (SPEC §4, issue 14):

- every string column (ids above all: ``customer_id``, ``product_id``, page urls) is Arrow
  ``large_string`` and pandas ``string`` (``StringDtype``, missing = ``pd.NA``);
- integers stay ``int64``; an integer column that can be null is pandas ``Int64`` in *every*
  file of a table, nulls or not (pandas takes a dataset's dtypes from its first file, so one
  file saying ``int64`` would turn the column into float64 for the whole read);
- a date column is Arrow ``date32`` (pandas ``datetime.date``); the partition keys ``as_of``
  and ``event_date`` are dates too, but they live only in the folder name
  (``as_of=YYYY-MM-DD``), never inside the files: pyarrow, pandas and dask refuse a dataset
  whose partition key is also a file column of another type, and they infer partition values
  as strings, so the date type is the one argument :func:`partitioning` gives them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pandas as pd
import pyarrow as pa

__all__ = ["ID_TYPE", "DATE_TYPE", "PARTITION_KEYS", "conform", "footer_metadata",
           "nullable_columns", "partitioning", "partition_schema", "to_pandas"]

#: The one Arrow type of every string column (zero-copy from the feature engine's arrays).
ID_TYPE = pa.large_string()
#: The one Arrow type of every date column and date partition key.
DATE_TYPE = pa.date32()
#: Hive partition keys the store writes, with their logical type.
PARTITION_KEYS: dict[str, pa.DataType] = {"as_of": DATE_TYPE, "event_date": DATE_TYPE,
                                          "model": ID_TYPE}

_INT_NULLABLE = {"Int64", "Int32", "Int16", "Int8", "boolean"}


def partition_schema(*keys: str) -> pa.Schema:
    """The Arrow schema of the given partition keys (default: ``as_of``)."""
    return pa.schema([(k, PARTITION_KEYS[k]) for k in (keys or ("as_of",))])


def partitioning(*keys: str) -> Any:
    """The hive partitioning that reads ``as_of`` (or the given keys) as dates: pass it as
    ``partitioning=`` to ``pandas.read_parquet``, ``pyarrow.parquet.read_table`` and
    ``pyarrow.dataset.dataset``, and as ``dataset={"partitioning": ...}`` to
    ``dask.dataframe.read_parquet``.

    Args:
        keys: partition key names in folder order (``as_of``; ``event_date`` for events and
            transactions; ``model``, ``as_of`` for predictions); default ``as_of``.

    Returns:
        A ``pyarrow.dataset.Partitioning`` (hive flavour).
    """
    import pyarrow.dataset as ds

    return ds.partitioning(partition_schema(*keys), flavor="hive")


def nullable_columns(schema: pa.Schema) -> list[str]:
    """Integer columns a table's pandas metadata marks nullable (``Int64``)."""
    meta = schema.pandas_metadata or {}
    return [c["name"] for c in meta.get("columns", [])
            if c.get("numpy_type") in _INT_NULLABLE or c.get("pandas_type") in _INT_NULLABLE]


def _value_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _target(t: pa.DataType) -> pa.DataType:
    """The conformed Arrow type of a column of type ``t``."""
    value = _value_type(t)
    if _is_string(value):
        value = ID_TYPE
    elif pa.types.is_date64(value):
        value = DATE_TYPE
    if pa.types.is_dictionary(t):
        return pa.dictionary(t.index_type, value)
    return value


def _pandas_column(field: pa.Field, nullable: bool) -> dict[str, Any]:
    t = _value_type(field.type)
    if _is_string(t):
        kind, numpy = "unicode", "string"
    elif pa.types.is_integer(t):
        kind, numpy = "int64", "Int64" if nullable else "int64"
    elif pa.types.is_floating(t):
        kind, numpy = "float64", "float64"
    elif pa.types.is_boolean(t):  # nullable: pandas' "boolean" (a declared bool column)
        kind, numpy = "bool", "boolean" if nullable else "bool"
    elif pa.types.is_date(t):
        kind, numpy = "date", "object"
    elif pa.types.is_timestamp(t):
        kind = "datetimetz" if t.tz else "datetime"
        numpy = f"datetime64[{t.unit}]"
    else:
        kind, numpy = "object", "object"
    return {"name": field.name, "field_name": field.name, "pandas_type": kind,
            "numpy_type": numpy, "metadata": None}


def conform(table: pa.Table, nullable: Iterable[str] = ()) -> pa.Table:
    """``table`` with the store's column types and pandas metadata (see the module docstring).

    Cheap on conformed input: a column already of its type is not touched (no copy), and
    dictionary-encoded columns stay encoded (only their value type is fixed).

    Args:
        table: the table about to be written.
        nullable: integer columns that can be null by definition, whether or not this table
            has a null; columns its pandas metadata marks ``Int64`` and integer columns with
            a null are nullable too.

    Returns:
        The table to write.
    """
    can_be_null = set(nullable) | set(nullable_columns(table.schema))
    fields, columns = [], []
    for field, column in zip(table.schema, table.columns, strict=True):
        target = _target(field.type)
        if target != field.type:
            column = column.cast(target)
        if (pa.types.is_integer(target) or pa.types.is_boolean(target)) and column.null_count:
            can_be_null.add(field.name)
        fields.append(pa.field(field.name, target, nullable=True))
        columns.append(column)
    meta = {
        "index_columns": [], "column_indexes": [],
        "columns": [_pandas_column(f, f.name in can_be_null) for f in fields],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": pd.__version__,
    }
    schema = pa.schema(fields, metadata={b"pandas": json.dumps(meta).encode()})
    return pa.Table.from_arrays(columns, schema=schema)


def footer_metadata(schema: pa.Schema) -> dict[bytes, bytes]:
    """The parquet footer keys that make a file written by another writer (fastparquet)
    read back exactly as a pyarrow write of a conformed table: ``pandas`` (dtypes) and
    ``ARROW:schema`` (Arrow types, e.g. ``large_string``).

    Args:
        schema: the schema of a conformed table (:func:`conform`).

    Returns:
        ``{b"pandas": ..., b"ARROW:schema": base64 of the serialized schema}``.
    """
    import base64

    plain = pa.schema([f.with_type(_value_type(f.type)) for f in schema],
                      metadata=schema.metadata)
    return {b"pandas": schema.metadata[b"pandas"],
            b"ARROW:schema": base64.b64encode(plain.serialize().to_pybytes())}


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """A conformed table (or a dataset read) as pandas with the store's dtypes: ``string``
    ids, ``Int64`` for nullable integers, ``datetime.date`` for dates (partition keys read
    with :func:`partitioning` included)."""
    nullable = set(nullable_columns(table.schema))
    df = table.to_pandas(types_mapper={pa.string(): pd.StringDtype(),
                                       pa.large_string(): pd.StringDtype()}.get)
    for name in nullable:
        if name not in df.columns:
            continue
        target = "boolean" if pa.types.is_boolean(table.schema.field(name).type) else "Int64"
        if df[name].dtype != target:
            df[name] = df[name].astype(target)
    return df
