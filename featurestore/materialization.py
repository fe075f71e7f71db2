"""Bring every table of the feature repository up to date: each source builds its own.

The driver above the sources: for each source kind of the repository (built-ins first) it
asks that :class:`~featurestore.sources.base.Source` to materialize its tables. It sits above
``sources/`` and ``features/`` so that neither imports the other's driver (the feature engine
never imports a source).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from typing import TYPE_CHECKING

from .cluster import LazyClient
from .features.definitions import FeatureRepo
from .features.materialize import MaterializeReport
from .repository import resolve_repo
from .settings import Settings
from .sources.base import source_class, source_kinds
from .storage import Store

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["materialize", "materialize_locked"]


def materialize(
    store: Store,
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    repo: FeatureRepo | str | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    force: bool = False,
    settings: Settings | None = None,
) -> MaterializeReport:
    """Bring the feature tables up to date through the latest drop, under the store's lease.

    Args:
        store: the offline store.
        client, scheduler, workers: the Dask cluster (see :func:`dask_client`).
        repo: the repository (None or a path: the store's recorded one, see
            :func:`resolve_repo`).
        start: first as-of date to (re)write (default: the first event date).
        end: last as-of date to (re)write (default: the latest drop).
        force: rebuild every as-of date in the range and the daily aggregates they read
            (``featurestore backfill``). A table whose definition changed is rebuilt whole.
        settings: settings handed to the sources (default: from the environment).

    Returns:
        What was written, per table.
    """
    with store.lock("materialize"):
        return materialize_locked(store, client=client, scheduler=scheduler, workers=workers,
                                  repo=repo, start=start, end=end, force=force,
                                  settings=settings)


def _as_date(value: dt.date | str | None) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def materialize_locked(store: Store, *, client: Client | None = None,
                       scheduler: str | None = None, workers: int | None = None,
                       repo: FeatureRepo | str | None = None,
                       start: dt.date | str | None = None, end: dt.date | str | None = None,
                       force: bool = False, settings: Settings | None = None
                       ) -> MaterializeReport:
    """:func:`materialize` for a caller that already holds the store's lease (``ingest``,
    ``run-daily``)."""
    started = time.perf_counter()
    settings = settings if settings is not None else Settings(store=store.url)
    if not isinstance(repo, FeatureRepo):
        repo = resolve_repo(store, repo)
    start, end = _as_date(start), _as_date(end)
    report = MaterializeReport()
    # a LazyClient: each source plans first and starts the cluster only for work
    with contextlib.ExitStack() as stack:
        c = client if client is not None else stack.enter_context(
            LazyClient(scheduler, workers))
        for kind in source_kinds(repo):  # each source builds its own tables
            source_class(kind)(store, settings).materialize(repo, report, client=c,
                                                            start=start, end=end, force=force)
    report.seconds = round(time.perf_counter() - started, 3)
    return report
