"""Dask worker preload: load the web-log scanner in the background as a worker starts.

Every worker of a cluster featurestore starts runs it (``featurestore.cluster.local_cluster``
passes this file's path), and so do the image's workers (``deploy/dask-config.yaml`` names the
module). The file imports nothing heavy at module level and works as a standalone file (Dask
copies a preload given by path), so the worker registers at once; a daemon thread then imports
the library and loads the numba kernels from their on-disk cache (or compiles them, once per
cache) while the client connects, takes the store's lease and plans the run. A task that needs a
kernel before the thread is done waits on numba's compile lock: nothing is compiled twice, and
no task waits for a warm-up barrier.
"""

from __future__ import annotations

import logging
import threading
import time

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
        import featurestore.ingest  # noqa: F401  (the first task's imports, done ahead)
        from featurestore.sources._scan import warm_up

        warm_up()
    except Exception:  # the first file loads the kernels itself and reports any real error
        log.warning("scanner warm-up failed; the first file will load the kernels",
                    exc_info=True)
        return
    log.info("scanner kernels ready in %.2f s", time.perf_counter() - start)


def dask_setup(worker: object) -> None:
    """Dask's preload hook: start the warm-up, return at once."""
    start_warm_up(worker)
