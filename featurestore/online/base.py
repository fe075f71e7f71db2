"""The ``OnlineStore`` seam: the protocol every online store implements, and how the
``online_store`` setting names one (``memory``, a ``redis://`` / ``rediss://`` URL, or a
dotted class path)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..storage import Store
from .memory import SERVED_TABLES, OnlineSnapshot, TableSnapshot

__all__ = ["OnlineStoreProtocol", "online_store_class", "online_store_type"]

#: URL schemes naming the Redis online store.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@runtime_checkable
class OnlineStoreProtocol(Protocol):
    """The ``OnlineStore`` seam: what the API reads features from.

    Chosen by the ``online_store`` setting: a name of
    :data:`featurestore.plugins.ONLINE_STORE_CLASS_FOR_TYPE` (``memory``), a Redis URL
    (``redis``), or a dotted class path. Built with the offline store, the poll period and the
    tables to serve with their entity keys (a store with a URL also gets ``url=``); every
    implementation runs ``tests/contract/test_online_store.py``.

    ``in_process`` says whether ``snapshot`` holds every row (the API's hot path reads it
    directly); a shared store (Redis) answers through :meth:`view` / :meth:`aview`, which fetch
    the requested customers' rows of one generation.
    """

    store: Store
    snapshot: OnlineSnapshot | None  # in-process stores: every served table; else None
    last_error: str | None  # why the last refresh or read failed (reported by /ready), or None
    in_process: bool

    def __init__(self, store: Store, *, poll_seconds: float = 30.0,
                 tables: tuple[str, ...] = SERVED_TABLES,
                 keys: dict[str, list[str]] | None = None) -> None: ...

    def start(self) -> None:
        """Load the first snapshot and keep it current (in the background)."""
        ...

    def stop(self) -> None: ...

    def refresh(self) -> bool:
        """Load newer or rewritten partitions now; True when the snapshot changed."""
        ...

    def view(self, table: str, ids: list[str] | None = None) -> TableSnapshot:
        """The latest as-of of ``table``, holding the rows of the customers ``ids`` (all
        rows for an in-process store), all of one generation.

        Raises:
            NotFoundError: no such table, or nothing served yet.
            OnlineStoreUnavailableError: the shared store cannot be read now.
        """
        ...

    async def aview(self, table: str, ids: list[str] | None = None) -> TableSnapshot:
        """:meth:`view` for the event loop."""
        ...

    async def served(self) -> OnlineSnapshot | None:
        """The served as-of and generation of every table (``/ready``), or None when nothing is
        served (the reason in :attr:`last_error`)."""
        ...

    def table(self, table: str, as_of: str | None = None,
              snapshot: OnlineSnapshot | None = None) -> TableSnapshot:
        """The snapshot of ``table`` at ``as_of`` (latest when None; older dates come from the
        offline store).

        Raises:
            NotFoundError: no such table, as-of date or partition.
        """
        ...


def online_store_type(setting: str) -> tuple[str, str | None]:
    """The registry name and URL the ``online_store`` setting names.

    Args:
        setting: ``memory``, a Redis URL, a registered name or a dotted class path.

    Returns:
        (name, url): ``("redis", "redis://...")`` for a Redis URL, else ``(setting, None)``.
    """
    if setting.startswith(REDIS_SCHEMES):
        return "redis", setting
    return setting, None


def online_store_class(name: str) -> type[OnlineStoreProtocol]:
    """The online store class named ``name`` (``memory``, ``redis``, a Redis URL or a dotted
    class path).

    Raises:
        ConfigError: unknown name, or a path that does not import.
    """
    from ..plugins import ONLINE_STORE_CLASS_FOR_TYPE, load_class

    return load_class(online_store_type(name)[0], ONLINE_STORE_CLASS_FOR_TYPE, "online store")
