"""The Dask client every compute step runs on: a LocalCluster we own, or an existing scheduler."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import dask
from distributed import Client, LocalCluster

__all__ = ["dask_client", "default_workers", "local_cluster", "WORKER_CONFIG", "WORKER_PRELOAD"]

#: Dask settings for the workers we start (the image sets the same in deploy/dask-config.yaml).
#: Dask's default ``MALLOC_TRIM_THRESHOLD_=65536`` disables glibc's dynamic mmap threshold, so
#: every large buffer (a file's 30 MB of text, its parse arrays) becomes a fresh mmap that
#: page-faults on each use: ingest ran ~25% slower. ``None`` leaves glibc's defaults.
WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
#: Worker preload of the clusters we start: imports the library as each worker starts and loads
#: the numba scanner in a background thread, overlapping the client's start-up and planning
#: (the image's workers get it from deploy/dask-config.yaml).
WORKER_PRELOAD = "featurestore.sources._preload"


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
    with local_cluster(workers or default_workers()) as cluster, Client(cluster) as c:
        yield c


def local_cluster(workers: int, **kwargs) -> LocalCluster:
    """A LocalCluster of ``workers`` single-threaded processes with :data:`WORKER_CONFIG` and
    the scanner warm-up preload (:data:`WORKER_PRELOAD`)."""
    kwargs.setdefault("preload", [WORKER_PRELOAD])  # (a module name: Dask imports it by name)
    with dask.config.set(WORKER_CONFIG):  # read by each nanny when it is created
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=":0", silence_logs=logging.ERROR, **kwargs)
