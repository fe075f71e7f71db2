"""Progress of a retrain job run in this process: its recorded status and the elapsed time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..storage import Store

__all__ = ["job_progress"]


@contextlib.contextmanager
def job_progress(store: Store, job_id: str, enabled: bool = True) -> Iterator[None]:
    """Show the job's status (queued, running...) and elapsed time on stderr while the block
    runs, when stderr is a terminal.

    Args:
        store: the store holding the job record.
        job_id: the job.
        enabled: False never draws (``--json``).
    """
    from ..progress import spinner
    from ..retrain.jobs import get_job

    def status() -> str:
        return get_job(store, job_id)["status"]

    with spinner(f"retrain {job_id}", status=status, progress=None if enabled else False):
        yield
