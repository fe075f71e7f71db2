"""Table catalogue: ``GET /tables``, ``GET /tables/{name}`` (schema, as-of range, freshness)."""

from __future__ import annotations

import datetime as dt
import re

import pyarrow.parquet as pq
from fastapi import APIRouter
from pydantic import BaseModel

from featurestore import FeatureStoreError, NotFoundError
from featurestore.layout import is_published
from featurestore.storage import Store

from ..deps import IdPath, OnlineDep, ReadAuth

__all__ = ["router", "table_info"]

router = APIRouter(tags=["tables"], dependencies=[ReadAuth])

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")
_KEYS = ("as_of", "event_date")


class Column(BaseModel):
    name: str
    type: str


class TableInfo(BaseModel):
    name: str
    partition_key: str
    first: str
    latest: str
    partitions: int
    latest_rows: int
    days_since_latest: int
    served_as_of: str | None
    served_generation: int | None = None  # generation of the served as-of (0: none recorded)
    columns: list[Column]


class TableList(BaseModel):
    tables: list[TableInfo]


def table_info(store: Store, name: str, served_as_of: str | None = None,
               served_generation: int | None = None) -> TableInfo | None:
    """Describe one partitioned table, or None when ``name`` is not one.

    Args:
        store: the offline store.
        name: the table.
        served_as_of: the as-of the online store serves for it (None: not served).
        served_generation: the generation of that as-of as served.

    Returns:
        The description, or None.
    """
    if len(name) > 128 or not _NAME.match(name):
        return None
    for key in _KEYS:
        values = store.partitions(name, key)
        if not values:
            continue
        latest = values[-1]
        files = [f for f in store.listdir(name, f"{key}={latest}")
                 if is_published(f)]
        metas = [pq.read_metadata(store.path(name, f"{key}={latest}", f), filesystem=store.fs)
                 for f in files]
        schema = metas[0].schema.to_arrow_schema()
        return TableInfo(
            name=name, partition_key=key, first=values[0], latest=latest,
            partitions=len(values), latest_rows=sum(m.num_rows for m in metas),
            days_since_latest=(dt.date.today() - dt.date.fromisoformat(latest)).days,
            served_as_of=served_as_of, served_generation=served_generation,
            columns=[Column(name=f.name, type=str(f.type)) for f in schema
                     if f.name != key])
    return None


def _served(online, name: str) -> tuple[str | None, int | None]:
    """The as-of and generation served for ``name`` (Nones when it is not served)."""
    if getattr(online, "in_process", True):
        snapshot = online.snapshot
        table = snapshot.tables.get(name) if snapshot else None
    else:  # a shared online store: its pointer (a sync route: runs in the thread pool)
        try:
            table = online.view(name)
        except FeatureStoreError:
            table = None
    return (table.as_of, table.generation) if table else (None, None)


@router.get("/tables", response_model=TableList)
def list_tables(online: OnlineDep) -> TableList:
    """Every partitioned table in the store."""
    store = online.store
    infos = [table_info(store, n, *_served(online, n)) for n in store.listdir()
             if not n.startswith(("_", "."))]
    return TableList(tables=[i for i in infos if i is not None])


@router.get("/tables/{name}", response_model=TableInfo,
            responses={404: {"description": "no such table"}})
def get_table(name: IdPath, online: OnlineDep) -> TableInfo:
    """Schema, as-of (or event-date) range, freshness and latest row count of one table."""
    info = table_info(online.store, name, *_served(online, name))
    if info is None:
        raise NotFoundError(f"no table {name!r} in the store; GET /tables lists them")
    return info
