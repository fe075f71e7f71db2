"""The online stores' background poll thread (``featurestore.online.poller.Poller``)."""

from __future__ import annotations

import threading
import time

from featurestore.online.poller import Poller


def test_steps_until_stopped_with_the_interval_asked_each_time():
    calls: list[float] = []
    asked = []

    def interval() -> float:
        asked.append(len(calls))
        return 0.01 if len(calls) < 3 else 0.05

    poller = Poller("test-poll", lambda: calls.append(time.monotonic()), interval)
    poller.start()
    poller.start()  # a second start does not start a second thread
    deadline = time.monotonic() + 5
    while len(calls) < 5 and time.monotonic() < deadline:
        time.sleep(0.005)
    poller.stop()
    assert len(calls) >= 5
    assert len(asked) >= len(calls) - 1
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert min(gaps[3:]) >= 0.045  # the longer interval, once three steps were done
    threads = [t.name for t in threading.enumerate()]
    assert threads.count("test-poll") == 0  # stopped and joined
    done = len(calls)
    time.sleep(0.1)
    assert len(calls) == done  # no step after stop
