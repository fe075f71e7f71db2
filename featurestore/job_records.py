"""Every job the store records, in one list: retrain jobs (``featurestore retrain``,
``POST /retrain``) and training-set exports started with ``POST /training-sets`` and
``wait: false``. ``featurestore jobs`` lists and follows them."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import layout
from ._exceptions import NotFoundError
from .storage import Store

__all__ = ["JobView", "list_all_jobs", "get_any_job", "follow_job", "FINAL_STATUSES"]

#: A job in one of these states never changes again.
FINAL_STATUSES = ("completed", "failed")


@dataclasses.dataclass
class JobView:
    """The fields a listing shows, whatever the kind of job; ``record`` is the whole record."""

    job_id: str
    kind: str  # "retrain" or "training-set"
    status: str
    what: str  # the model (retrain) or the format and output (export)
    submitted_at: str | None
    error: str | None
    record: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "kind": self.kind, "status": self.status,
                "what": self.what, "submitted_at": self.submitted_at, "error": self.error,
                "record": self.record}


def _retrain_view(record: dict[str, Any]) -> JobView:
    what = f"{record.get('model')} on {record.get('backend')}"
    if record.get("model_version"):
        what += f" -> version {record['model_version']}"
    return JobView(record["job_id"], "retrain", record["status"], what,
                   record.get("submitted_at"), record.get("error"), record)


def _export_view(record: dict[str, Any], modified: str | None) -> JobView:
    return JobView(record["id"], "training-set", record["status"],
                   f"{record.get('format')} -> {record.get('out')}", modified,
                   record.get("error"), record)


def _export_records(store: Store) -> Iterator[JobView]:
    for name in store.listdir(layout.EXPORT_JOBS):
        if not name.endswith(".json") or name.startswith((".", "_")):
            continue
        try:
            modified = store.fs.modified(store.path(layout.EXPORT_JOBS, name)).isoformat()
        except (NotImplementedError, OSError, FileNotFoundError):
            modified = None
        yield _export_view(store.read_json(layout.EXPORT_JOBS, name), modified)


def list_all_jobs(store: Store) -> list[JobView]:
    """Every recorded job, oldest first.

    Args:
        store: the store.

    Returns:
        The jobs (a retrain job whose process died is shown ``failed``, with why).
    """
    from .retrain.jobs import list_jobs

    jobs = [_retrain_view(r) for r in list_jobs(store)] + list(_export_records(store))
    return sorted(jobs, key=lambda j: j.submitted_at or "")


def get_any_job(store: Store, job_id: str) -> JobView:
    """One job by id, retrain or export.

    Raises:
        NotFoundError: no job has this id.
    """
    from .retrain.jobs import get_job

    if "/" in job_id or job_id.startswith(".") or not job_id:
        raise NotFoundError(f"no job {job_id!r}")
    if store.exists(layout.JOBS, f"{job_id}.json"):
        return _retrain_view(get_job(store, job_id))
    if store.exists(layout.EXPORT_JOBS, f"{job_id}.json"):
        return _export_view(store.read_json(layout.EXPORT_JOBS, f"{job_id}.json"), None)
    raise NotFoundError(f"no job {job_id!r} in {store.url}: featurestore jobs --store "
                        f"{store.url} lists the recorded ones")


def follow_job(store: Store, job_id: str, on_change: Callable[[JobView], None],
               poll: float = 1.0, timeout: float | None = None) -> JobView:
    """Poll a job until it ends, calling ``on_change`` at the start and on every status change.

    Args:
        store: the store.
        job_id: the job.
        on_change: called with the job's view when its status changes (and once at first).
        poll: seconds between reads of the record.
        timeout: give up after this many seconds (None: wait as long as it takes).

    Returns:
        The job's final view (or its last one after ``timeout``).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    last = None
    while True:
        view = get_any_job(store, job_id)
        if view.status != last:
            on_change(view)
            last = view.status
        if view.status in FINAL_STATUSES or (deadline is not None
                                             and time.monotonic() >= deadline):
            return view
        time.sleep(poll)
