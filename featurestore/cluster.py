"""The Dask client every compute step runs on: a LocalCluster we own, or an existing scheduler."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Dask is imported where a cluster starts (a no-op command needs none)
    from distributed import Client, LocalCluster

__all__ = ["dask_client", "default_workers", "local_cluster", "LazyClient", "WORKER_CONFIG",
           "WORKER_PRELOAD"]

#: Dask settings for the workers we start (the image sets the same in deploy/dask-config.yaml).
#: A file's decompressed text (120 MB on a sparse 1,057-column drop) and its parse arrays are
#: larger than glibc's largest dynamic mmap threshold (32 MB), so by default each one is a fresh
#: mmap that page-faults on first touch and is unmapped when freed: ~35 k page faults and a third
#: of a file's parse CPU in the kernel (measured). Thresholds of 1 GiB keep such buffers in the
#: heap, reused file after file. (Dask's own default, ``MALLOC_TRIM_THRESHOLD_=65536``, made it
#: worse still.) A worker's RSS then stays at its peak between files instead of falling back.
#: Arrow allocates from that heap too (``ARROW_DEFAULT_MEMORY_POOL=system``): its default
#: mimalloc pool gave memory back between a run's ingest tasks and its materialization, which
#: then took ~1.95 s instead of ~1.4 s on issue #27's drop (measured, docs/ingest.md).
MALLOC_THRESHOLD = str(1 << 30)
WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": MALLOC_THRESHOLD,
                 "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": MALLOC_THRESHOLD,
                 "distributed.nanny.pre-spawn-environ.ARROW_DEFAULT_MEMORY_POOL": "system"}
#: Dask settings of the worker processes themselves (the image sets the same). Dask's
#: statistical profiler samples every thread's stack every 10 ms by default; on issue #27's
#: drop that cost a worker ~15-25 ms of CPU per ~150 ms file, the two cores' time (its stack
#: summaries also set off full garbage collections of ~100 ms, measured with ``gc.callbacks``).
#: Sampled every 100 ms it costs what no profiler costs, within the noise, and the
#: dashboard's profile page keeps working (docs/choices.md, "Worker profiler").
WORKER_SETTINGS = {"distributed.worker.profile.interval": "100ms"}
#: Worker preload of the clusters we start: imports the library as each worker starts and loads
#: the numba scanner in a background thread, overlapping the client's start-up and planning
#: (the image's workers get it from deploy/dask-config.yaml).
WORKER_PRELOAD = "featurestore.sources.weblog.preload"


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
    if isinstance(client, LazyClient):
        yield client.get()  # the work is planned and not empty: start the cluster now
        return
    if client is not None:
        yield client
        return
    from distributed import Client

    if scheduler:
        with Client(scheduler, timeout="30s") as c:
            yield c
        return
    with local_cluster(workers or default_workers()) as cluster, Client(cluster) as c:
        yield c


class LazyClient:
    """A Dask client started on first use: a command plans first and starts no cluster when
    the plan is empty (a no-op ``ingest`` answers in a fraction of a second, not after a
    LocalCluster's start and close).

    Pass it wherever a ``client`` is accepted: :func:`dask_client` starts it there. Use it as
    a context manager; the cluster it started (if any) is closed on exit.

    Args:
        scheduler: ``tcp://host:port`` of an existing scheduler (default: a LocalCluster).
        workers: the LocalCluster's worker processes (default: :func:`default_workers`).
        client: an existing client to hand out as is (never closed here).
        on_start: called with the client once it is started (e.g. to attach a progress bar
            for the rest of the block); a context manager it returns is exited on close.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 client: Client | None = None, on_start=None) -> None:
        self._args = (scheduler, workers, client)
        self._on_start = on_start
        self._stack = contextlib.ExitStack()
        self._client: Client | None = None
        self._lock = threading.Lock()  # one start, whichever thread asks first
        self._early: threading.Thread | None = None

    @property
    def started(self) -> bool:
        """Whether the client was asked for (a cluster started or connected)."""
        return self._client is not None or self._early is not None

    def start_soon(self) -> None:
        """Start our own LocalCluster now, in a background thread, when the caller expects
        work (e.g. a drop the ledger has never seen): its worker processes start while this
        thread imports and plans, instead of after (issue #27: ~1.3 s of worker start-up on
        the critical path of a command with its own cluster). Does nothing when a scheduler
        or client was given (nothing to start) or the client is already asked for. A start
        that fails is started again, and raises, in :meth:`get`.
        """
        scheduler, _, client = self._args
        if scheduler or client is not None or self.started:
            return
        # Dask's modules are imported here, not in the thread: two threads importing modules
        # of one package at once can deadlock
        import distributed
        import distributed.deploy.local  # noqa: F401

        self._early = threading.Thread(target=self._start_early, name="featurestore-cluster",
                                       daemon=True)
        self._early.start()

    def _start_early(self) -> None:
        from distributed import Client

        with contextlib.suppress(Exception), self._lock:  # else get() starts it and reports
            if self._client is None:
                # not ``with Client(...)``: its exit must run in the thread that entered it
                # (a context variable), and close() runs in the caller's thread
                cluster = local_cluster(self._args[1] or default_workers())
                self._stack.callback(cluster.close)
                client = Client(cluster)
                self._stack.callback(client.close)
                self._set(client)

    def _set(self, client: Client) -> None:
        if self._on_start is not None:
            hook = self._on_start(client)
            if hook is not None:
                self._stack.enter_context(hook)
        self._client = client

    def get(self) -> Client:
        """The client, started on the first call (or the one :meth:`start_soon` starts).

        Returns:
            The Dask client.
        """
        with self._lock:
            if self._client is None:
                self._set(self._stack.enter_context(dask_client(*self._args)))
            return self._client

    def __getattr__(self, name: str):
        # a step that uses it as a Client (``submit``, ``map``...) starts it: a Source written
        # against the Client API works unchanged
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.get(), name)

    def close(self) -> None:
        """Close what :meth:`get` started (nothing when it was never called); a start still
        under way is waited for, then closed."""
        if self._early is not None:
            self._early.join()
            self._early = None
        with self._lock:
            self._client = None
            self._stack.close()

    def __enter__(self) -> LazyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def local_cluster(workers: int, **kwargs) -> LocalCluster:
    """A LocalCluster of ``workers`` single-threaded processes with :data:`WORKER_CONFIG`,
    :data:`WORKER_SETTINGS` and the scanner warm-up preload (:data:`WORKER_PRELOAD`)."""
    import dask
    from distributed import LocalCluster

    kwargs.setdefault("preload", [WORKER_PRELOAD])  # (a module name: Dask imports it by name)
    with dask.config.set({**WORKER_CONFIG, **WORKER_SETTINGS}):  # read by each nanny as it
        # is created, and passed on to its worker
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=":0", silence_logs=logging.ERROR, **kwargs)
