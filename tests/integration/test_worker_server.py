"""Issue #27: the workers of the clusters featurestore starts are forked from one server
process that loaded Dask, the library and the numba kernels once (featurestore.worker_server),
instead of each importing and loading them after a fresh start. They still ingest correctly,
a worker that dies is replaced, and a command killed with -9 leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from distributed import Client

from featurestore.cluster import local_cluster

ROOT = Path(__file__).resolve().parents[2]


def _worker_facts() -> dict:
    """On a worker: its parent, and what it had loaded before any task of this test."""
    from featurestore.sources.weblog import preload, scan

    return {"ppid": os.getppid(), "server_module": "featurestore.worker_server" in sys.modules,
            "kernels": bool(scan._scan_piece.signatures and scan._gather_many.signatures),
            "warm_up_done_by_server": preload._started.is_set(),
            "mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
            "hash_seed": os.environ.get("PYTHONHASHSEED")}


def _environ(name: str) -> str | None:
    """On a worker: its environment's value (not ``os.environ.get`` itself, which would ship
    this process's mapping along with the method)."""
    return os.environ.get(name)


def _group_alive(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry))
    return alive


@pytest.mark.skipif(sys.platform != "linux", reason="forkserver workers: Linux and macOS")
def test_workers_are_forked_from_the_loaded_server_and_ingest(tmp_path, drops):
    import pandas as pd

    from featurestore import Store, ingest_weblog
    from tests.reference import kept_hits, read_drops

    raw, _ = drops
    good, bad = read_drops(raw)  # pandas, independently of the scanner
    expected = kept_hits(good).groupby(["customer_id", "event_date"]).size().sort_index()

    def check(store_dir: Path) -> None:
        events = pd.read_parquet(store_dir / "events")
        events["customer_id"] = events["customer_id"].fillna("")
        events["event_date"] = events["event_date"].astype(str)
        ours = events.groupby(["customer_id", "event_date"]).size().sort_index()
        pd.testing.assert_series_equal(ours, expected, check_names=False,
                                       check_index_type=False)

    with local_cluster(2) as cluster, Client(cluster) as client:
        facts = list(client.run(_worker_facts).values())
        parents = {f["ppid"] for f in facts}
        # both workers are children of one process, which is neither this one nor a nanny
        # of its own: the forkserver
        assert len(parents) == 1 and parents != {os.getpid()}
        for f in facts:
            assert f["server_module"] and f["kernels"] and f["warm_up_done_by_server"], f
            assert f["mmap_threshold"] == str(1 << 30) and f["hash_seed"] == "6640", f
        forked = ingest_weblog(str(raw), Store(str(tmp_path / "forked")), client=client)

        # a worker killed with -9 is replaced by its nanny (spawned fresh) and still ingests
        victim = next(iter(client.run(os.getpid).items()))
        os.kill(victim[1], signal.SIGKILL)
        deadline = time.monotonic() + 120
        while True:
            pids = client.run(os.getpid, on_error="ignore")
            if len(pids) == 2 and victim[1] not in pids.values():
                break
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.2)
        again = ingest_weblog(str(raw), Store(str(tmp_path / "again")), client=client)
    for report, store_dir in ((forked, tmp_path / "forked"), (again, tmp_path / "again")):
        assert report.ok and report.lines == len(good) + len(bad)
        assert report.rows_quarantined == len(bad) > 0
        check(store_dir)


@pytest.mark.skipif(sys.platform != "linux", reason="/proc")
def test_command_killed_alone_leaves_no_worker_or_server(tmp_path):
    """kill -9 of the command's process only (not its group): the worker server and the
    workers forked from it exit by themselves (the server's and Dask's parent-alive pipes)."""
    from featurestore.generate import generate_weblog

    raw = tmp_path / "raw"
    generate_weblog(str(raw), days=3, customers=300, products=30, rows_per_day=4000, parts=4,
                    columns=40, seed=3)
    proc = subprocess.Popen([sys.executable, "-m", "featurestore", "ingest", str(raw), "--store",
                             str(tmp_path / "store"), "--workers", "2", "--no-progress"],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        # the command, the resource tracker, the server and two workers
        while len(_group_alive(proc.pid)) < 5:
            assert proc.poll() is None, "the command ended before its workers were seen"
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 60
        while _group_alive(proc.pid):
            assert time.monotonic() < deadline, f"left behind: {_group_alive(proc.pid)}"
            time.sleep(0.1)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)


_PROBE = """
import sys
import featurestore.cluster as cluster

def probe():
    heavy = ("dask", "distributed", "numba", "pandas", "pyarrow", "scipy")
    print("LOADED=" + ",".join(m for m in heavy if m in sys.modules))
    raise SystemExit(0)

cluster.start_worker_server = probe
sys.argv = ["featurestore", "ingest", {raw!r}, "--store", {store!r}, "--no-progress"]
from featurestore.cli import main
main()
"""


def test_command_starts_the_worker_server_before_its_heavy_imports(tmp_path):
    """The server loads the workers' libraries while the command imports its own: it is asked
    for before the command has imported Dask, numba, pandas or pyarrow (``parse``, which
    imports pyarrow, is not loaded by the ``weblog`` package's import any more)."""
    from featurestore.generate import generate_weblog

    generate_weblog(str(tmp_path / "raw"), days=1, customers=20, products=4, rows_per_day=50,
                    parts=1, columns=20)
    out = subprocess.run([sys.executable, "-c", _PROBE.format(raw=str(tmp_path / "raw"),
                                                              store=str(tmp_path / "store"))],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    loaded = [line for line in out.stdout.splitlines() if line.startswith("LOADED=")]
    assert loaded == ["LOADED="], out.stdout + out.stderr


def test_workers_see_the_environment_of_when_the_cluster_starts(monkeypatch):
    """Forked workers inherit the server's environment (of when it started); a variable set
    since (credentials, an endpoint) still reaches them, as it reached a spawned worker."""
    from featurestore.cluster import start_worker_server

    start_worker_server()  # (already running in this process, or started now)
    monkeypatch.setenv("FEATURESTORE_TEST_LATE_VARIABLE", "set-after-the-server")
    with local_cluster(1) as cluster, Client(cluster) as client:
        seen = client.run(_environ, "FEATURESTORE_TEST_LATE_VARIABLE")
    assert set(seen.values()) == {"set-after-the-server"}
