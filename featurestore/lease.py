"""The writer lease: one writing run per store, whichever host it runs on.

A run that writes takes the lease by creating ``_lock.json`` at the store's root (a create
that fails when the file exists: ``O_EXCL`` locally, a conditional PUT on S3) and keeps it
with a heartbeat thread that renews the record every third of its lifetime. Another run
takes a lease over only when it has expired, or when its owner provably died (same host and
PID namespace, PID gone or reused); a lease whose record was taken over is "lost", and the run
that held it stops before its next commit (:meth:`featurestore.storage.Store.check_lease`).
:class:`featurestore.storage.Store` is the only user: ``Store.lock`` acquires and releases.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigError, StoreLockedError

if TYPE_CHECKING:
    from .storage import Store

__all__ = ["DEFAULT_LEASE_SECONDS", "LOCK_NAME", "Lease", "env_lease_seconds", "lost_message",
           "read_lock"]

log = logging.getLogger("featurestore.storage")

LOCK_NAME = "_lock.json"
#: Writer lease expiry when neither ``lease_seconds`` nor FEATURESTORE_LEASE_SECONDS is set.
DEFAULT_LEASE_SECONDS = 60.0


def env_lease_seconds() -> float:
    raw = os.environ.get("FEATURESTORE_LEASE_SECONDS")
    if not raw:
        return DEFAULT_LEASE_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if seconds < 1:
        raise ConfigError(f"FEATURESTORE_LEASE_SECONDS={raw!r} must be a number of seconds >= 1")
    return seconds


def _pid_namespace() -> str | None:
    """The PID namespace of this process ("pid:[4026531836]"): containers sharing a host
    name but not their PIDs must not judge each other's PIDs."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _process_start(pid: int) -> float | None:
    """Start time of a live, non-zombie process ``pid``; None when there is none."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time()
    except psutil.Error:
        return None


def _owner_gone(record: dict[str, Any]) -> bool:
    """True when the lease's owner is provably dead: it ran on this host (and PID namespace)
    and its PID is gone, a zombie, or now belongs to a process started at another time.
    Records written before the lease (``owner`` = "host:pid:hex" only) are read too."""
    host, pid = record.get("host"), record.get("pid")
    if host is None or pid is None:
        parts = str(record.get("owner", "")).rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return False
        host, pid = parts[0], parts[1]
    namespace = record.get("pid_namespace")
    if host != socket.gethostname() or (namespace and namespace != _pid_namespace()):
        return False
    started = _process_start(int(pid))
    if started is None:
        return True
    recorded = record.get("pid_started")
    return recorded is not None and abs(started - float(recorded)) > 1.0


def read_lock(store: Store) -> tuple[dict[str, Any] | None, str | None]:
    """The lock record and what is wrong with the file: (record, None), (None, None) when
    there is no lock, (None, "empty" | "corrupt") when it cannot be read."""
    try:
        data = store.fs.cat_file(store.path(LOCK_NAME))
    except FileNotFoundError:
        return None, None
    if not data.strip():
        return None, "empty"
    try:
        record = json.loads(data)
        dt.datetime.fromisoformat(record["expires"])
    except (ValueError, TypeError, KeyError):
        return None, "corrupt"
    return record, None


def _lock_age(store: Store) -> float | None:
    """Seconds since the lock file was last written (None if unknown)."""
    try:
        info = store.fs.info(store.path(LOCK_NAME))
    except FileNotFoundError:
        return None
    modified = info.get("mtime") or info.get("LastModified")
    if isinstance(modified, dt.datetime):
        modified = modified.timestamp()
    return None if modified is None else time.time() - float(modified)


def _who(record: dict[str, Any]) -> str:
    return str(record.get("owner") or f"{record.get('host')}:{record.get('pid')}")


def lost_message(store: Store, current: dict[str, Any] | None) -> str:
    who = f"taken over by {_who(current)} ({current.get('purpose')})" if current else \
        "taken over (the lock file was removed)"
    return (f"this run's writer lease on {store.url} was {who}; it stopped before its next "
            "commit. Its finished work is kept: run the command again once that run is done")


class Lease:
    """One held lease: its record, the heartbeat thread that renews it, and ``lost`` (the
    error message once another run took it)."""

    def __init__(self, store: Store, purpose: str, seconds: float) -> None:
        self.store = store
        self.seconds = seconds
        self.run_id = uuid.uuid4().hex[:12]
        host, pid = socket.gethostname(), os.getpid()
        self.record: dict[str, Any] = {
            "owner": f"{host}:{pid}:{self.run_id}", "host": host, "pid": pid,
            "pid_started": _process_start(pid), "pid_namespace": _pid_namespace(),
            "run_id": self.run_id, "purpose": purpose, "lease_seconds": seconds,
            "since": dt.datetime.now(dt.UTC).isoformat()}
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _stamped(self) -> bytes:
        now = dt.datetime.now(dt.UTC)
        self.record.update(renewed=now.isoformat(),
                           expires=(now + dt.timedelta(seconds=self.seconds)).isoformat())
        return json.dumps(self.record).encode()

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialize read-decide-write of the lock file among processes on this host (flock
        on the store folder); object stores have no such primitive (see create_new)."""
        if not self.store.is_local:
            yield
            return
        import fcntl

        fd = os.open(self.store.root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def acquire(self) -> None:
        store = self.store
        store.fs.makedirs(store.root, exist_ok=True)
        with self._guard():
            current, problem = read_lock(store)
            if problem:
                age = _lock_age(store)
                if age is None or age < self.seconds:
                    raise StoreLockedError(
                        f"lock file {store.uri(LOCK_NAME)} is {problem}; if no featurestore "
                        "run is active, delete it")
                log.warning("taking over %s lock file %s, %.0f s old", problem,
                            store.uri(LOCK_NAME), age)
                store.remove(LOCK_NAME)
            elif current:
                if _owner_gone(current):
                    log.warning("taking over the lease of %s (%s): its process is gone",
                                _who(current), current.get("purpose"))
                elif dt.datetime.fromisoformat(current["expires"]) <= dt.datetime.now(dt.UTC):
                    log.warning("taking over the lease of %s (%s): expired at %s",
                                _who(current), current.get("purpose"), current["expires"])
                else:
                    raise StoreLockedError(
                        f"store {store.url} is locked by {_who(current)} "
                        f"({current.get('purpose')}, since {current.get('since')}). Wait for "
                        f"that run to finish; if it died on another host, its lease expires at "
                        f"{current['expires']} and the next run takes over")
                store.remove(LOCK_NAME)
            if not store.create_new(self._stamped(), LOCK_NAME, run_id=self.run_id):
                raise StoreLockedError(
                    f"store {store.url} was locked by another run a moment ago; retry later")
        self._thread = threading.Thread(target=self._heartbeat, daemon=True,
                                        name=f"featurestore-lease {store.url}")
        self._thread.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                with self._guard():
                    current, _ = read_lock(self.store)
                    if (current or {}).get("run_id") != self.run_id:
                        self.lost = lost_message(self.store, current)
                        log.error("%s", self.lost)
                        return
                    self.store.write_bytes(self._stamped(), LOCK_NAME)
            except OSError as exc:  # a passing store fault: the next beat retries
                log.warning("could not renew the lease on %s: %s", self.store.url, exc)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._guard():
            current, _ = read_lock(self.store)
            if (current or {}).get("run_id") == self.run_id:
                self.store.remove(LOCK_NAME)
