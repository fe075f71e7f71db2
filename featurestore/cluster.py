"""The Dask client every compute step runs on: a LocalCluster we own, or an existing scheduler."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from distributed import Client, LocalCluster

__all__ = ["dask_client", "default_workers"]


def default_workers() -> int:
    """One worker process per core, at most 8 (gzip files are the unit of parallelism)."""
    return max(1, min(8, os.cpu_count() or 1))


@contextlib.contextmanager
def dask_client(
    scheduler: str | None = None,
    workers: int | None = None,
    client: Client | None = None,
) -> Iterator[Client]:
    """Yield a ``distributed.Client``.

    ``client`` is used as is (the caller owns it); ``scheduler`` (``tcp://host:port``) connects
    to an existing cluster; otherwise a LocalCluster of ``workers`` single-threaded processes
    is started and closed on exit. Processes, not threads: parsing and parquet encoding hold
    the GIL in places, and a process per core scales on any machine.
    """
    if client is not None:
        yield client
        return
    if scheduler:
        with Client(scheduler, timeout="30s") as c:
            yield c
        return
    with (
        LocalCluster(
            n_workers=workers or default_workers(),
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c
