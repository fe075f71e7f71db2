"""No cold start on the critical path: the workers of the clusters featurestore starts load the
numba scanner in the background as they start (featurestore/sources/_preload.py), before any
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
    scan = sys.modules.get("featurestore.sources._scan")
    if scan is None:
        return False
    kernels = (scan._scan, scan._count_lines, scan._valid_utf8_rows, scan._parse_int_fields,
               scan._gather_many)
    return all(k.signatures for k in kernels)


def test_workers_load_the_scanner_before_any_task():
    with local_cluster(1) as cluster, Client(cluster) as client:
        deadline = time.monotonic() + 240  # a cold numba cache compiles: minutes on a busy box
        while not all(client.run(_kernels_loaded).values()):
            assert time.monotonic() < deadline, "the preload never loaded the scanner kernels"
            time.sleep(0.5)


def test_preload_file_imports_nothing_heavy_and_the_image_names_the_module():
    """Dask imports a preload given by path as a standalone file while the worker starts: it
    must not import the library (that is the background thread's job)."""
    code = (f"import importlib.util, sys; spec = importlib.util.spec_from_file_location("
            f"'p', {WORKER_PRELOAD!r}); m = importlib.util.module_from_spec(spec); "
            "spec.loader.exec_module(m); "
            "print(sorted(k for k in sys.modules if k.split('.')[0] in "
            "('featurestore', 'numba', 'pandas', 'pyarrow')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout
    config = yaml.safe_load((ROOT / "deploy" / "dask-config.yaml").read_text())
    assert config["distributed"]["worker"]["preload"] == ["featurestore.sources._preload"]
