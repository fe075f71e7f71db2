"""The forkserver preload of the clusters featurestore starts: import this module only there.

The workers of our LocalClusters are forked from one server process (multiprocessing's
``forkserver``, started by :func:`featurestore.cluster.start_worker_server`), which imports
this module once, before it forks any worker. Importing it loads what every worker would
otherwise load for itself after a fresh interpreter start (issue #27, measured per process on
the 2-core machine: Dask ~0.35 s, pyarrow/pandas/numba and the library ~0.5 s, numba's first
kernel load ~0.4 s, the kernels ~0.1 s): a forked worker starts with all of it in memory,
shared copy-on-write with the server and its sibling. With two workers spawned fresh, the
two loads and the command's own imports ran at once on two cores.

Every error is caught: the forkserver would die on an exception other than ImportError, and
a worker forked without the kernels loads them itself (the worker preload,
:mod:`featurestore.sources.weblog.preload`), as a spawned one does.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("featurestore.worker_server")

try:
    import distributed  # noqa: F401  (the nanny's worker entry point and the Worker)

    from .features import materialize  # noqa: F401  (the materialization's tasks)
    from .sources.weblog import (
        ingest,  # noqa: F401  (the ingest tasks)
        preload,
    )

    preload.load_before_fork()
except Exception as exc:  # noqa: BLE001  (a broken install: the workers report it)
    log.warning("worker server preload failed (%s: %s); each worker loads the library itself",
                type(exc).__name__, exc)

# What is loaded now lives as long as the workers: out of the collector's sight, a forked
# worker's collections neither walk it nor copy its pages (copy-on-write).
gc.freeze()
