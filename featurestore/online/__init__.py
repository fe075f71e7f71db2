"""Online stores: where the API reads the latest as-of of every table from.

* :mod:`.memory` — ``online_store: memory`` (default): each API process holds the latest
  partitions as columnar arrays, swapped atomically (and the partition loader every store
  uses for older as-of dates);
* :mod:`.redis` — ``online_store: redis://...``: the latest partitions in a shared Redis,
  two slots per table and a pointer, read in one round trip (:mod:`.redis_push` writes them);
* :mod:`.base` — the ``OnlineStore`` protocol and how the setting names an implementation.

Every name importable from ``featurestore.online`` before it became a package still is.
"""

from __future__ import annotations

from .base import OnlineStoreProtocol, online_store_class, online_store_type
from .memory import (
    JSON_CACHE_ROWS,
    PRODUCT_ORDER,
    SERVED_TABLES,
    LoadPlan,
    OnlineSnapshot,
    OnlineStore,
    TableSnapshot,
    load_table,
    plan_load,
    plan_refresh,
    read_partition,
    snapshot_of,
)

__all__ = ["TableSnapshot", "OnlineSnapshot", "OnlineStore", "OnlineStoreProtocol",
           "SERVED_TABLES", "LoadPlan", "plan_load", "read_partition", "snapshot_of", "load_table",
           "plan_refresh", "online_store_class", "online_store_type", "JSON_CACHE_ROWS",
           "PRODUCT_ORDER"]
