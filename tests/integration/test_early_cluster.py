"""Issue #27: ``featurestore ingest`` with its own LocalCluster starts it in the background,
while it loads its libraries and plans, when the raw root holds a drop the ledger has never
seen; a re-run with nothing new still starts no cluster, and new files in a drop already seen
start it after planning, as before."""

from __future__ import annotations

import json
import shutil
import threading

import pytest

import featurestore.cluster as cluster_module
from featurestore.cli import main
from featurestore.cluster import LazyClient
from featurestore.generate import generate_weblog


@pytest.fixture
def starts(monkeypatch):
    """The name of the thread that started each LocalCluster (a real one)."""
    names: list[str] = []
    original = cluster_module.local_cluster

    def spy(*args, **kwargs):
        names.append(threading.current_thread().name)
        return original(*args, **kwargs)

    def server_spy():
        names.append("worker server")
        return original_server()

    original_server = cluster_module.start_worker_server
    monkeypatch.setattr(cluster_module, "local_cluster", spy)
    monkeypatch.setattr(cluster_module, "start_worker_server", server_spy)
    return names


def _ingest(raw, store, capsys, code: int = 0) -> dict:
    assert main(["ingest", str(raw), "--store", str(store), "--workers", "2", "--json"]) == code
    return json.loads(capsys.readouterr().out)


def test_new_drop_starts_the_cluster_early_rerun_starts_none(tmp_path, starts, capsys):
    made = tmp_path / "made"
    generate_weblog(str(made), days=2, customers=60, products=6, rows_per_day=300, parts=2,
                    columns=30, seed=5)
    first, second = sorted(p.name for p in made.iterdir() if p.is_dir())
    raw, store = tmp_path / "raw", tmp_path / "store"
    raw.mkdir()
    shutil.copytree(made / first, raw / first)
    # one part of the first drop held back: it arrives later, in a drop the ledger has seen
    late = max((raw / first).glob("*.gz"))
    held = tmp_path / late.name
    late.rename(held)

    def clusters() -> list[str]:
        return [name for name in starts if name != "worker server"]

    report = _ingest(raw, store, capsys, code=1)  # (the manifest names the missing part)
    assert report["files_ingested"] == 1 and report["materialize"]["as_of_written"]
    assert clusters() == ["featurestore-cluster"]  # in the background, before the plan
    # the workers' server was asked for first (it loads their libraries while the command
    # imports and plans); local_cluster asks again (it is started once)
    assert starts[0] == "worker server"
    calls = len(starts)

    assert _ingest(raw, store, capsys, code=1)["files_ingested"] == 0
    assert len(starts) == calls  # nothing new: no cluster and no worker server at all

    held.rename(late)  # a file new to a drop already seen: started once the plan says so
    assert _ingest(raw, store, capsys)["files_ingested"] == 1
    assert clusters() == ["featurestore-cluster", "MainThread"]

    shutil.copytree(made / second, raw / second)  # the next day's drop
    assert _ingest(raw, store, capsys)["files_ingested"] == 2
    assert clusters() == ["featurestore-cluster", "MainThread", "featurestore-cluster"]


def test_start_soon_starts_nothing_when_the_cluster_is_not_ours(tmp_path):
    with LazyClient(scheduler="tcp://127.0.0.1:1") as lazy:
        lazy.start_soon()  # an existing scheduler: connected to when asked, not before
        assert not lazy.started


def test_remote_raw_root_gives_no_hint(tmp_path):
    from featurestore.settings import Settings
    from featurestore.sources.weblog.source import WeblogSource
    from featurestore.storage import Store

    source = WeblogSource(Store(str(tmp_path / "store")), Settings(store=str(tmp_path / "s")))
    (tmp_path / "raw" / "2026-01-01").mkdir(parents=True)
    assert source.expects_work(str(tmp_path / "raw"))
    assert not source.expects_work("s3://bucket/raw")
    assert not source.expects_work(str(tmp_path / "nowhere"))


def test_an_early_start_that_fails_is_retried_and_reported_by_get(monkeypatch):
    """The background start swallows its error; the caller's ``get`` starts the cluster again
    in its own thread, so a transient failure costs a retry and a lasting one is raised where
    the cluster is needed, as without the early start."""
    calls: list[str] = []
    original = cluster_module.local_cluster

    def flaky(*args, **kwargs):
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise OSError("no ports left")
        return original(*args, **kwargs)

    monkeypatch.setattr(cluster_module, "local_cluster", flaky)
    with LazyClient(workers=1) as lazy:
        lazy.start_soon()
        client = lazy.get()
        assert client.submit(sum, [1, 2]).result() == 3
    assert calls == ["featurestore-cluster", "MainThread"]

    def broken(*args, **kwargs):
        raise OSError("no ports left")

    monkeypatch.setattr(cluster_module, "local_cluster", broken)
    with LazyClient(workers=1) as lazy:
        lazy.start_soon()
        with pytest.raises(OSError, match="no ports left"):
            lazy.get()
