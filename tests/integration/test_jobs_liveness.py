"""Jobs from several processes: a job whose process died reads as failed, not "running" for
ever; jobs of one model finishing together get distinct versions."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

from featurestore import Store
from featurestore.retrain import _heartbeat, get_job, list_jobs, new_job


def _record(store: Store, job_id: str, runner: str, status: str = "running") -> None:
    store.write_json({"job_id": job_id, "model": "purchase-xgboost", "backend": "local",
                      "status": status, "submitted_at": "2026-11-23T00:00:00+00:00",
                      "metrics": {}, "error": None, "runner": runner}, "_jobs", f"{job_id}.json")


def test_job_of_a_process_without_heartbeat_reads_as_failed(tmp_path):
    store = Store(str(tmp_path / "store"))
    _record(store, "orphan", "gone-host-1")
    job = get_job(store, "orphan")
    assert job["status"] == "failed"
    assert "gone-host-1" in job["error"] and "submit the job again" in job["error"]
    assert [j["status"] for j in list_jobs(store)] == ["failed"]


def test_heartbeat_age_decides(tmp_path):
    store = Store(str(tmp_path / "store"))
    _record(store, "job", "host-7")
    now = dt.datetime.now(dt.UTC)
    store.write_json({"runner": "host-7", "at": now.isoformat()}, _heartbeat.RUNNERS,
                     "host-7.json")
    assert get_job(store, "job")["status"] == "running"
    later = now + dt.timedelta(seconds=_heartbeat.STALE_AFTER_SECONDS + 1)
    assert "no heartbeat since" in _heartbeat.stale_reason(store, get_job(store, "job"), later)
    _record(store, "done", "host-7", status="completed")
    assert _heartbeat.stale_reason(store, get_job(store, "done"), later) is None


def test_job_of_a_killed_process_turns_failed(tmp_path, monkeypatch):
    """A real process queues a job, then dies without running it (as a killed server would)."""
    store = Store(str(tmp_path / "store"))
    code = ("import os, sys; from featurestore import Store; "
            "from featurestore.retrain import new_job; "
            "r = new_job(Store(sys.argv[1]), 'purchase-xgboost', 'local'); "
            "print(r['job_id'], flush=True); os._exit(0)")
    out = subprocess.run([sys.executable, "-c", code, store.url], capture_output=True,
                         text=True, check=True).stdout.split()
    job_id = out[-1]
    assert get_job(store, job_id)["status"] == "queued"  # its heartbeat is still fresh
    monkeypatch.setattr(_heartbeat, "STALE_AFTER_SECONDS", 0.5)
    time.sleep(1.0)
    job = get_job(store, job_id)
    assert job["status"] == "failed" and job["runner"] in job["error"]


def test_jobs_of_this_process_keep_beating(tmp_path, monkeypatch):
    monkeypatch.setattr(_heartbeat, "STALE_AFTER_SECONDS", 0.5)
    monkeypatch.setattr(_heartbeat, "HEARTBEAT_SECONDS", 0.1)
    store = Store(str(tmp_path / "store"))
    record = new_job(store, "purchase-xgboost", "local")
    try:
        _heartbeat._wake.set()  # the thread may be sleeping a longer interval from before
        time.sleep(1.0)
        assert get_job(store, record["job_id"])["status"] == "queued"
    finally:
        _heartbeat.release(store)


def test_concurrent_registrations_get_distinct_versions(tmp_path):
    """Jobs of one model finishing together (threads here; processes alike) never share a
    version folder."""
    import threading

    from featurestore.retrain import registry

    store = Store(str(tmp_path / "store"))
    got: list[str] = []

    def register(worker: int) -> None:
        for i in range(15):
            got.append(registry.register_version(
                store, "purchase-xgboost", metrics={"pr_auc": worker + i / 100},
                model_bytes=b"{}", model_filename="model.json", training_set={"url": "x"},
                features=["f"], info={"job_id": f"w{worker}-{i}"}))

    threads = [threading.Thread(target=register, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(set(got)) == 45
    versions = registry.list_versions(store, "purchase-xgboost")
    assert sorted(v["version"] for v in versions) == sorted(got)
    assert {v["job_id"] for v in versions} == {f"w{w}-{i}" for w in range(3) for i in range(15)}
