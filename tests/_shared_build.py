"""TEST HELPER: build a read-only fixture folder once per test run, not once per xdist worker.

The first worker to ask builds it under a file lock in the run's shared temporary folder
(the parent of every worker's base temp); a worker asking meanwhile waits on the lock and then
reads the finished folder. A build that failed (no ``built`` mark) is started over by the next
one to ask, so the result never depends on which worker or test asked first. Under ``-n 0``
the session's own temp folder is used, without a lock.

Callers treat the folder as read-only (copy it before writing): tests on both workers read it.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest


def built_once(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str,
               build: Callable[[Path], None]) -> Path:
    """The folder ``build`` fills, built once for the whole test run.

    Args:
        tmp_path_factory: pytest's session temp factory.
        worker_id: pytest-xdist's ``worker_id`` fixture (``"master"`` without xdist).
        name: the folder's name, unique per kind of build.
        build: fills the (empty, existing) folder it is given.

    Returns:
        The built folder.
    """
    if worker_id == "master":  # not under xdist (-n 0): one process, built once per session
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent / f"{name}-shared"
    shared.mkdir(exist_ok=True)
    folder, done = shared / "data", shared / "built"
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():  # (a build that failed on the other worker starts over)
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder
