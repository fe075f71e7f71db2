"""The background thread both online stores use to follow the store's commits: call one
step now and then until stopped (memory: reload the snapshot; Redis: re-read the push record)."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Poller"]


class Poller:
    """Runs ``step`` in a daemon thread, then waits ``interval()`` seconds, until stopped.

    Args:
        name: the thread's name (shown in thread dumps).
        step: one poll; it handles its own errors (an escaping one ends the thread).
        interval: seconds to wait after a step, asked afresh each time (shorter while
            nothing is loaded yet, so a first commit is picked up quickly).
    """

    def __init__(self, name: str, step: Callable[[], None], interval: Callable[[], float]):
        self.name = name
        self._step = step
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._step()
            self._stop.wait(self._interval())

    def start(self) -> None:
        """Start the thread (once; later calls do nothing)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread, waiting up to 5 s for a step in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
