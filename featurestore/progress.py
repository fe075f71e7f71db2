"""Progress of the work a command runs on the Dask cluster, from task completion.

A small scheduler plugin counts the tasks submitted (``released -> waiting``) and finished
(``-> memory``) while a command holds its client; a client-side thread polls the counts and
draws a tqdm bar on stderr. The total grows as steps submit more graphs, so the bar says "tasks
done of tasks submitted so far" - honest for pipelines whose later graphs depend on earlier
results. Off when stderr is not a terminal (cron, pipes, CI), so logs never fill with bars.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import SchedulerPlugin

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["TaskCounter", "task_progress", "wanted", "spinner"]

log = logging.getLogger(__name__)

PLUGIN_NAME = "featurestore-task-progress"


def wanted(progress: bool | None) -> bool:
    """Whether to draw: ``progress`` when given, else only when stderr is a terminal.

    Args:
        progress: True / False to force, None for "when stderr is a terminal".

    Returns:
        Whether a bar should be drawn.
    """
    if progress is not None:
        return progress
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


class TaskCounter(SchedulerPlugin):
    """Counts tasks submitted and finished on the scheduler since it was registered."""

    name = PLUGIN_NAME

    def __init__(self) -> None:
        self.submitted = 0
        self.done = 0
        self.erred = 0

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if start == "released" and finish == "waiting":
            self.submitted += 1
        elif finish == "memory" and start == "processing":
            self.done += 1
        elif finish == "erred":
            self.erred += 1


def _counts(dask_scheduler: Any = None) -> tuple[int, int]:
    plugin = dask_scheduler.plugins.get(PLUGIN_NAME)
    return (plugin.done, plugin.submitted) if plugin is not None else (0, 0)


@contextlib.contextmanager
def task_progress(client: Client, desc: str, progress: bool | None = None,
                  poll: float = 0.25) -> Iterator[None]:
    """Draw a bar of the cluster's task completion for the duration of the block.

    Args:
        client: the command's Dask client.
        desc: the bar's label (the command).
        progress: force on/off; None draws only when stderr is a terminal.
        poll: seconds between reads of the scheduler's counts.
    """
    if not wanted(progress):
        yield
        return
    try:
        client.register_plugin(TaskCounter(), name=PLUGIN_NAME)
    except Exception as exc:  # noqa: BLE001 - a remote scheduler without featurestore
        log.info("no task progress bar: %s", exc)
        yield
        return
    from tqdm import tqdm

    bar = tqdm(total=0, unit="task", desc=desc, file=sys.stderr, leave=True)

    def refresh() -> None:
        done, submitted = client.run_on_scheduler(_counts)
        bar.total = max(submitted, done)
        bar.n = done
        bar.refresh()

    try:
        with _redrawn(refresh, poll, "task-progress"):
            yield
    finally:
        with contextlib.suppress(Exception):
            refresh()
            client.unregister_scheduler_plugin(PLUGIN_NAME)
        bar.close()


@contextlib.contextmanager
def spinner(desc: str, status: Any = None, progress: bool | None = None,
            poll: float = 0.5) -> Iterator[None]:
    """Elapsed time and a status for work that does not run as Dask tasks (a local
    training, a SageMaker job): a tqdm counter without a total.

    Args:
        desc: the label.
        status: a callable returning the current status text (polled), or None.
        progress: force on/off; None draws only when stderr is a terminal.
        poll: seconds between refreshes.
    """
    if not wanted(progress):
        yield
        return
    from tqdm import tqdm

    bar = tqdm(total=None, desc=desc, file=sys.stderr, bar_format="{desc} {elapsed} {postfix}")

    def refresh() -> None:
        if status is not None:
            bar.set_postfix_str(str(status()), refresh=False)
        bar.refresh()

    try:
        with _redrawn(refresh, poll, "spinner"):
            yield
    finally:
        bar.close()


@contextlib.contextmanager
def _redrawn(refresh: Any, poll: float, name: str) -> Iterator[None]:
    """Call ``refresh`` every ``poll`` seconds in a daemon thread while the block runs (a
    failing refresh is skipped: the cluster may be closing); stop and join it on exit."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(poll):
            with contextlib.suppress(Exception):
                refresh()

    thread = threading.Thread(target=loop, daemon=True, name=name)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
