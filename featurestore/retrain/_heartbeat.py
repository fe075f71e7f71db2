"""Liveness of the processes that run retraining jobs.

A job runs in the process that created it (the API server's pool, ``featurestore retrain``,
``run-daily``). While that process owns unfinished jobs in a store, a daemon thread rewrites
``<store>/_jobs/_runners/<runner>.json`` every :data:`HEARTBEAT_SECONDS`. A reader that finds a
queued or running job whose runner has not beaten for :data:`STALE_AFTER_SECONDS` (the server
was killed, the machine rebooted) reports the job as failed with that reason, instead of
"running" for ever.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from typing import Any

from .. import layout
from ..storage import Store

__all__ = ["RUNNER", "HEARTBEAT_SECONDS", "STALE_AFTER_SECONDS", "acquire", "release",
           "stale_reason"]

#: This process, as job records name it.
RUNNER = f"{socket.gethostname()}-{os.getpid()}"
HEARTBEAT_SECONDS = 15.0
STALE_AFTER_SECONDS = 120.0
RUNNERS = layout.RUNNERS

_lock = threading.Lock()
_owned: dict[str, tuple[Store, int]] = {}  # store url -> (store, unfinished jobs here)
_wake = threading.Event()
_thread: threading.Thread | None = None


def _beat(store: Store) -> None:
    store.write_json({"runner": RUNNER, "at": dt.datetime.now(dt.UTC).isoformat()},
                     RUNNERS, f"{RUNNER}.json")


def _loop() -> None:
    while True:
        _wake.wait(HEARTBEAT_SECONDS)
        _wake.clear()
        with _lock:
            stores = [store for store, _ in _owned.values()]
        for store in stores:
            try:
                _beat(store)
            except Exception:  # storage hiccup: the next beat retries; staleness is 8 beats
                pass


def acquire(store: Store) -> None:
    """This process now owns one more unfinished job in ``store``: beat at once, then keep
    beating while any is unfinished."""
    global _thread
    _beat(store)
    with _lock:
        _, count = _owned.get(store.url, (store, 0))
        _owned[store.url] = (store, count + 1)
        if _thread is None:
            _thread = threading.Thread(target=_loop, name="retrain-heartbeat", daemon=True)
            _thread.start()


def release(store: Store) -> None:
    with _lock:
        _, count = _owned.get(store.url, (store, 1))
        if count <= 1:
            _owned.pop(store.url, None)
        else:
            _owned[store.url] = (store, count - 1)


def stale_reason(store: Store, record: dict[str, Any],
                 now: dt.datetime | None = None) -> str | None:
    """Why an unfinished job can no longer finish, or None while its runner is alive."""
    runner = record.get("runner")
    if not runner or record.get("status") not in ("queued", "running"):
        return None
    try:
        beat = store.read_json(RUNNERS, f"{runner}.json")
        last = dt.datetime.fromisoformat(beat["at"])
    except (FileNotFoundError, KeyError, ValueError):
        return (f"the process that ran this job ({runner}) left no heartbeat; it stopped "
                "before finishing - submit the job again")
    now = now or dt.datetime.now(dt.UTC)
    if (now - last).total_seconds() <= STALE_AFTER_SECONDS:
        return None
    return (f"the process that ran this job ({runner}) stopped: no heartbeat since "
            f"{last.isoformat()} - submit the job again")
