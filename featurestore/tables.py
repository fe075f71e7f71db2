"""What is in the offline store: the feature tables, their columns, as-of range and freshness.

``list_tables`` and ``read_table`` are what the CLI (``tables``, ``show``), the API and the
training-set helpers use to look at materialized tables without knowing the layout.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from ._exceptions import NotFoundError
from .layout import EVENTS, is_published
from .storage import Store

if TYPE_CHECKING:  # pandas and pyarrow load with the first read (not before /ready)
    import pandas as pd

__all__ = ["TableInfo", "list_tables", "read_table", "read_dataset", "as_of_dates",
           "latest_written", "KEY_COLUMNS"]

#: Entity key columns, in key order; every other column of a feature table is a feature.
KEY_COLUMNS = ("customer_id", "product_id")


@dataclasses.dataclass
class TableInfo:
    name: str
    key_columns: list[str]
    features: dict[str, str]            # feature column -> pandas dtype
    as_of_range: list[str]              # [first, last]
    as_of_count: int
    rows_latest: int                    # rows in the latest as-of partition
    last_written: str | None            # UTC time the latest partition was published

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def as_of_dates(store: Store, table: str) -> list[str]:
    return store.partitions(table, "as_of")


def _latest_file(store: Store, table: str, as_of: str) -> str:
    names = [n for n in store.listdir(table, f"as_of={as_of}")
             if is_published(n)]
    return store.path(table, f"as_of={as_of}", names[0])


def _modified(store: Store, path: str) -> str | None:
    try:
        value = store.fs.modified(path)
    except (NotImplementedError, FileNotFoundError, OSError):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")


def latest_written(store: Store, table: str, as_of: str) -> str | None:
    """When the partition ``as_of`` of ``table`` was published (UTC ISO time), None when the
    filesystem does not say."""
    return _modified(store, _latest_file(store, table, as_of))


def list_tables(store: Store) -> list[TableInfo]:
    """Every table with ``as_of=`` partitions (feature tables), sorted by name."""
    import pyarrow.parquet as pq

    out = []
    for name in store.listdir():
        if name.startswith(("_", ".")):
            continue
        dates = as_of_dates(store, name)
        if not dates:
            continue
        path = _latest_file(store, name, dates[-1])
        with store.fs.open(path, "rb") as f:
            meta = pq.ParquetFile(f)
            rows = meta.metadata.num_rows
            schema = meta.schema_arrow
        empty = schema.empty_table().to_pandas()
        keys = [c for c in KEY_COLUMNS if c in empty.columns]
        features = {c: str(empty[c].dtype) for c in empty.columns if c not in keys}
        out.append(TableInfo(name, keys, features, [dates[0], dates[-1]], len(dates), rows,
                             _modified(store, path)))
    return out


def read_table(store: Store, table: str, as_of: str | dt.date | None = None,
               customer_id: str | None = None) -> pd.DataFrame:
    """One as-of partition of ``table`` (the latest when ``as_of`` is None), optionally only
    ``customer_id``'s rows. Raises :class:`NotFoundError` naming what is missing."""
    import pyarrow.parquet as pq

    dates = as_of_dates(store, table)
    if not dates:
        known = ", ".join(t.name for t in list_tables(store)) or "none yet"
        raise NotFoundError(f"no table {table!r} in {store.url} (tables: {known}); "
                            "run featurestore ingest or backfill")
    day = dates[-1] if as_of is None else (as_of.isoformat() if isinstance(as_of, dt.date)
                                           else str(as_of))
    if day not in dates:
        raise NotFoundError(f"table {table!r} has no as-of {day}; it has {dates[0]} .. "
                            f"{dates[-1]}")
    filters = [("customer_id", "==", str(customer_id))] if customer_id is not None else None
    with store.fs.open(_latest_file(store, table, day), "rb") as f:
        df = pq.read_table(f, filters=filters).to_pandas()
    return df.reset_index(drop=True)


def read_dataset(store: Store, table: str, *, start: dt.date | None = None,
                 end: dt.date | None = None, columns: list[str] | None = None,
                 key: str = "as_of") -> pd.DataFrame:
    """Every partition of ``table`` (those from ``start`` to ``end`` inclusive when given),
    with the partition key as a ``datetime.date`` column: what ``pandas.read_parquet`` gives
    with the one argument docs/dashboards.md names (``partitioning=``).

    Args:
        store: the store.
        table: a table folder (``customer_features``, ``events``, ``transactions``, ...).
        start, end: the first and last partition date to read.
        columns: the columns to read (default all, the partition key last).
        key: the partition key (``event_date`` for events and transactions).

    Returns:
        The rows with the store's dtypes (``string`` ids, ``Int64`` nullable ints, dates).

    Raises:
        NotFoundError: the table has no partition.
    """
    import pyarrow.parquet as pq

    from .schema import partitioning, to_pandas

    if not store.partitions(table, key):
        raise NotFoundError(f"no table {table!r} with {key}= partitions in {store.url}")
    filters = [f for f in ((key, ">=", start), (key, "<=", end)) if f[2] is not None]
    if table == EVENTS and key == "event_date":
        return to_pandas(_read_events(store, start, end, columns))
    data = pq.read_table(store.path(table), filesystem=store.fs, partitioning=partitioning(key),
                         columns=columns, filters=filters or None)
    return to_pandas(data)


def _read_events(store: Store, start: dt.date | None, end: dt.date | None,
                 columns: list[str] | None) -> Any:
    """``events`` as Arrow from its live files only (merged files resolved through their
    records, :func:`featurestore.events_compaction.live_files`): never a row twice, even
    between a merge's publish and the deletion of its inputs."""
    import pyarrow.dataset as ds

    from .events_compaction import live_files
    from .schema import partitioning

    days = [d for d in store.partitions(EVENTS, "event_date")
            if (start is None or d >= start.isoformat()) and (end is None or d <= end.isoformat())]
    files = [f for d in days for f in live_files(store, d)]
    dataset = ds.dataset(files, format="parquet", filesystem=store.fs,
                         partitioning=partitioning("event_date"),
                         partition_base_dir=store.path(EVENTS))
    # files written before a column was declared (SPEC §3a) lack it: read it as null there
    # rather than take the first file's columns for all (one footer read per file)
    physical = [frag.physical_schema for frag in dataset.get_fragments()]
    extra = {}  # columns some file has and the first lacks (types of the first file win)
    for schema in physical:
        for field in schema:
            if field.name not in dataset.schema.names and field.name not in extra:
                extra[field.name] = field
    if extra:
        import pyarrow as pa

        schema = pa.schema([*dataset.schema, *extra.values()])
        # the pandas types (nullable Int64...) of the file that has the most columns
        schema = schema.with_metadata(max(physical, key=len).metadata)
        dataset = ds.dataset(files, format="parquet", filesystem=store.fs, schema=schema,
                             partitioning=partitioning("event_date"),
                             partition_base_dir=store.path(EVENTS))
    return dataset.to_table(columns=columns)
