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
"""

from __future__ import annotations

import logging
import threading
import time

from ...features import hit_lists, strings
from . import scan

__all__ = ["dask_setup", "start_warm_up"]

log = logging.getLogger("featurestore.warm_up")
_started = threading.Event()


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


def _warm() -> None:
    start = time.perf_counter()
    try:
        scan.warm_up()
        hit_lists.warm_up()  # the partial aggregates' (issue #27)
        log.info("scanner kernels ready in %.2f s", time.perf_counter() - start)
        # then materialization's (ids placed and coded, issue #27): ~1 s to load from the
        # cache, which a store's first materialization would otherwise wait for
        strings.warm_up()
    except Exception as exc:  # the first file loads the kernels itself and reports a real error
        log.warning("kernel warm-up failed (%s: %s); the first task will load the kernels",
                    type(exc).__name__, exc)
        return
    log.info("scanner and materialization kernels ready in %.2f s",
             time.perf_counter() - start)


def dask_setup(worker: object) -> None:
    """Dask's preload hook: start the warm-up, return at once."""
    start_warm_up(worker)
