"""Dask worker preload: load the web-log scanner in the background as a worker starts.

Every worker of a cluster featurestore starts loads this module
(``featurestore.cluster.WORKER_PRELOAD``), and so do the image's workers
(``deploy/dask-config.yaml``). Dask imports a preload while the worker starts, before it
registers with the scheduler, so the library's imports are done before any task can arrive
(two threads importing modules of one package at once can deadlock: the imports are never left
to the background). ``dask_setup`` then starts a daemon thread that loads the numba kernels from
their on-disk cache (or compiles them, once per cache) while the cluster finishes starting and
the client takes the store's lease and plans the run. A task that needs a kernel before the
thread is done waits on numba's compile lock: nothing is compiled twice, and no task waits for a
warm-up barrier.

It also spares the worker the interpreter's garbage collections at exit (:func:`skip_exit_gc`).
"""

from __future__ import annotations

import atexit
import gc
import logging
import threading
import time

from ...features import hit_lists, strings
from ...features.aggs import partial_kernels, runs
from . import scan

__all__ = ["dask_setup", "load_before_fork", "skip_exit_gc", "start_warm_up"]

log = logging.getLogger("featurestore.warm_up")
_started = threading.Event()
_exit_gc_skipped = threading.Event()


def start_warm_up(*_: object) -> bool:
    """Start loading the scanner kernels in a daemon thread, once per process.

    Args:
        _: ignored (Dask passes the worker to ``dask_setup``).

    Returns:
        True if this call started the thread, False if it was already started.
    """
    if _started.is_set():
        return False
    _started.set()
    threading.Thread(target=_warm, name="featurestore-warm-up", daemon=True).start()
    return True


def _warm() -> bool:
    start = time.perf_counter()
    try:
        scan.warm_up()
        hit_lists.warm_up()  # the partial aggregates' (issue #27)
        partial_kernels.warm_up()  # the SPEC §3a partials' first/last (issue #26)
        log.info("scanner kernels ready in %.2f s", time.perf_counter() - start)
        # then materialization's (ids placed and coded, issue #27): ~1 s to load from the
        # cache, which a store's first materialization would otherwise wait for
        strings.warm_up()
        runs.warm_up()  # the SPEC §3a list merges'
    except Exception as exc:  # the first file loads the kernels itself and reports a real error
        log.warning("kernel warm-up failed (%s: %s); the first task will load the kernels",
                    type(exc).__name__, exc)
        return False
    log.info("scanner and materialization kernels ready in %.2f s",
             time.perf_counter() - start)
    return True


def load_before_fork() -> bool:
    """Load every kernel now, in this thread, and mark the warm-up done: for the process our
    clusters' workers are forked from (:mod:`featurestore.worker_server`). A worker forked
    after this has every kernel loaded, and its :func:`dask_setup` starts no thread. On
    failure the warm-up is left to each worker, as without the server.

    Returns:
        True when every kernel was loaded.
    """
    if _started.is_set():
        return False
    ok = _warm()
    if ok:
        _started.set()
    return ok


def skip_exit_gc() -> None:
    """Freeze every object at interpreter exit, so the exit's garbage collections skip them.

    A worker that has loaded numba, pyarrow and pandas spent 0.5-1.5 s of CPU in the
    collections Python runs while it tears its modules down (``perf``: ``gc_collect_main``),
    which a command that starts its own cluster waited for at its close (issue #27). Nothing
    is lost: the process is ending, and it keeps no state (the client holds the results and
    every output is published). Registered as the worker starts, so exit hooks registered
    later (Dask's own) run before it; once per process.
    """
    if not _exit_gc_skipped.is_set():
        _exit_gc_skipped.set()
        atexit.register(gc.freeze)


def dask_setup(worker: object) -> None:
    """Dask's preload hook: start the warm-up, return at once."""
    skip_exit_gc()
    start_warm_up(worker)

