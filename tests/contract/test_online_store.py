"""Contract suite of the ``OnlineStore`` seam: every implementation runs it.

The built-in in-memory store, the Redis store (a real ``redis-server``, pushed by the facade)
and one added by a test with one class plus one registry line (:class:`ReadThroughOnlineStore`:
no background thread, every refresh re-reads the latest partitions), each against a store built
by the real CLI and read back with pandas.
"""

from __future__ import annotations

import pandas as pd
import pytest

from featurestore import FeatureStore, NotFoundError, Settings
from featurestore.cli import main
from featurestore.online import (
    SERVED_TABLES,
    OnlineSnapshot,
    OnlineStoreProtocol,
    load_table,
    online_store_class,
)
from featurestore.plugins import ONLINE_STORE_CLASS_FOR_TYPE
from featurestore.storage import Store


class ReadThroughOnlineStore:
    """A test online store: refreshes synchronously, reads older as-of dates uncached."""

    def __init__(self, store: Store, *, poll_seconds: float = 30.0,
                 tables: tuple[str, ...] = SERVED_TABLES,
                 keys: dict[str, list[str]] | None = None) -> None:
        self.store, self.tables, self.keys = store, tables, keys or {}
        self.snapshot: OnlineSnapshot | None = None
        self.last_error: str | None = None

    in_process = True

    def start(self) -> None:
        self.refresh()

    def view(self, table, ids=None):
        return self.table(table)

    async def aview(self, table, ids=None):
        return self.table(table)

    async def served(self):
        return self.snapshot

    def stop(self) -> None:
        pass

    def refresh(self) -> bool:
        tables = {}
        for t in self.tables:
            dates = self.store.partitions(t, "as_of")
            if dates:
                tables[t] = load_table(self.store, t, dates[-1], keys=self.keys.get(t))
        self.snapshot = OnlineSnapshot(tables)
        return True

    def table(self, table, as_of=None, snapshot=None):
        current = (snapshot or self.snapshot).tables.get(table)
        if as_of is None or (current is not None and current.as_of == as_of):
            if current is None:
                raise NotFoundError(f"no table {table!r}")
            return current
        if as_of not in self.store.partitions(table, "as_of"):
            raise NotFoundError(f"no {table!r} features as of {as_of}")
        return load_table(self.store, table, as_of, keys=self.keys.get(table))


@pytest.fixture(scope="module")
def built(tmp_path_factory, client, drops):
    root, _ = drops
    store = tmp_path_factory.mktemp("online") / "store"
    assert main(["ingest", str(root), "--store", str(store), "--scheduler",
                 client.scheduler.address, "--no-progress"]) == 0
    return store


@pytest.fixture(params=["memory", "read-through", "dotted", "redis"])
def online(request, built, monkeypatch):
    name = {"read-through": "read-through",
            "dotted": f"{__name__}.ReadThroughOnlineStore"}.get(request.param, request.param)
    if request.param == "read-through":
        monkeypatch.setitem(ONLINE_STORE_CLASS_FOR_TYPE, "read-through",
                            f"{__name__}.ReadThroughOnlineStore")
    if request.param == "redis":
        server = request.getfixturevalue("redis_server")
        name = server.url
        FeatureStore(Settings(store=str(built), online_store=name)).push_online(
            client=request.getfixturevalue("client"))
    fs = FeatureStore(Settings(store=str(built), online_store=name))
    store = fs.online_store()
    assert isinstance(store, OnlineStoreProtocol)
    store.refresh()
    yield built, store
    store.stop()


def test_serves_the_stored_rows_of_every_repository_table(online):
    built, store = online
    for table in ("customer_features", "customer_product_features"):
        dates = sorted(p.name.split("=")[1] for p in (built / table).glob("as_of=*"))
        frame = pd.read_parquet(built / table / f"as_of={dates[-1]}")
        snap = store.view(table, frame["customer_id"].head(20).tolist())
        assert snap.as_of == dates[-1]
        for _, row in frame.head(20).iterrows():
            keys = {k: row[k] for k in snap.keys}
            got = snap.lookup(keys, snap.features)
            want = {f: (None if pd.isna(row[f]) else row[f].item() if hasattr(row[f], "item")
                        else row[f]) for f in snap.features}
            assert got == pytest.approx(want)
        older = store.table(table, dates[0])
        assert older.as_of == dates[0] and older.rows == len(
            pd.read_parquet(built / table / f"as_of={dates[0]}"))
        with pytest.raises(NotFoundError):
            store.table(table, "1999-01-01")


def test_unknown_names_are_one_clear_error(built):
    from featurestore import ConfigError

    with pytest.raises(ConfigError, match="unknown online store 'nope'"):
        online_store_class("nope")
