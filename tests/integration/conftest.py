"""Integration fixtures shared by several modules."""

from __future__ import annotations

import fcntl
import shutil

import pytest

from tests import _generated_store


@pytest.fixture(scope="session")
def generated_data(tmp_path_factory, client, worker_id):
    """A generated store built through the real CLI on the session cluster (read-only: copy it
    before writing). Returns ``<work>/featurestore-data``.

    Built once per test run, not once per xdist worker: the first worker to need it builds it
    under a file lock in the run's shared temporary folder, the others wait for it and read it
    (building it took ~45 s of the suite's time on each worker)."""
    if worker_id == "master":  # not under xdist (-n 0)
        work = tmp_path_factory.mktemp("generated")
        return _generated_store.build(work, scheduler=client.scheduler.address, retail=False)
    shared = tmp_path_factory.getbasetemp().parent / "generated-shared"
    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        done = shared / "built"
        if not done.exists():  # (a build that failed on the other worker starts over)
            shutil.rmtree(shared / "featurestore-data", ignore_errors=True)
            data = _generated_store.build(shared, scheduler=client.scheduler.address,
                                          retail=False)
            done.write_text(str(data))
    return shared / "featurestore-data"
