"""No cold start on the critical path: the workers of the clusters featurestore starts load the
numba scanner in the background as they start (featurestore/sources/weblog/preload.py), before any
task asks for it, and the image's workers are configured the same way."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml
from distributed import Client

from featurestore.cluster import WORKER_PRELOAD, local_cluster

ROOT = Path(__file__).resolve().parents[2]


def _kernels_loaded() -> bool:
    """On a worker: whether every scanner kernel has a compiled (or cache-loaded) overload."""
    scan = sys.modules.get("featurestore.sources.weblog.scan")
    if scan is None:
        return False
    kernels = (scan._scan_piece, scan._first_newline, scan._valid_utf8_rows, scan._gather_many)
    return all(k.signatures for k in kernels)


def test_workers_load_the_scanner_before_any_task():
    with local_cluster(1) as cluster, Client(cluster) as client:
        deadline = time.monotonic() + 240  # a cold numba cache compiles: minutes on a busy box
        while not all(client.run(_kernels_loaded).values()):
            assert time.monotonic() < deadline, "the preload never loaded the scanner kernels"
            time.sleep(0.5)


def test_the_image_workers_get_the_same_preload():
    config = yaml.safe_load((ROOT / "deploy" / "dask-config.yaml").read_text())
    assert config["distributed"]["worker"]["preload"] == [WORKER_PRELOAD]


def test_ingest_with_a_fresh_cluster_logs_no_traceback(tmp_path):
    """The preload imports the library before the worker takes tasks: a task importing it at
    the same time as a background thread could deadlock on the import locks (seen as a
    traceback on stderr); the warm-up itself never prints one."""
    import os

    from featurestore.generate import generate_weblog

    generate_weblog(str(tmp_path / "raw"), days=1, customers=50, products=5, rows_per_day=300,
                    parts=2, columns=30)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(2):  # the import race depends on timing: two fresh clusters
        out = subprocess.run([sys.executable, "-m", "featurestore", "ingest",
                              str(tmp_path / "raw"), "--store", str(tmp_path / f"s{_}"),
                              "--workers", "2", "--json"], capture_output=True, text=True,
                             env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr and "warm-up failed" not in out.stderr, out.stderr
        # Dask's INFO log (cluster start, and at close a comm race logged with its traceback)
        # is not the user's business without -v: the CLI configures logging before it imports
        # Dask, so Dask's own handler is not installed and its records reached ours
        info = [line for line in out.stderr.splitlines() if " INFO " in line]
        assert info == [], out.stderr


def _exit_gc_skipped() -> bool:
    """On a worker: whether the preload froze the heap for the exit's collections."""
    from featurestore.sources.weblog import preload

    return preload._exit_gc_skipped.is_set()


def test_our_workers_and_the_command_skip_the_exit_collections(tmp_path):
    """Issue #27: a process that has loaded numba, pyarrow and pandas spent 0.5-1.5 s of CPU
    in the garbage collections of interpreter exit; a command with its own cluster waited for
    its workers' at close, and for its own at the end. Our workers and the program freeze the
    heap at exit; ``main`` called with arguments (a host such as the tests) does not."""
    with local_cluster(1) as cluster, Client(cluster) as client:
        assert all(client.run(_exit_gc_skipped).values())
    code = ("import gc, sys; from featurestore.cli import main; "
            "sys.argv = ['featurestore', 'tables']; main(['tables']); "
            "hosted = gc.get_freeze_count(); main(); print(hosted, gc.get_freeze_count() > 0)")
    import os

    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                         text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         timeout=120)
    assert out.stdout.split() == ["0", "True"], out.stdout + out.stderr
