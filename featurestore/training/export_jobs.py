"""Training-set export jobs: one export run now, or in a background thread with its status
recorded in ``<store>/_exports/_jobs/<id>.json`` (``POST /training-sets``, SPEC §6).

The output folder must lie below an export root (``export_roots``: ``FEATURESTORE_EXPORT_ROOTS``,
default ``<store>/_exports``, and ``FEATURESTORE_SAGEMAKER_S3_PREFIX``), resolved (``..``,
symlinks), and inside the store only below ``_exports/<name>``: an export written over a
table, the ledger or the job records would break every later run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import uuid
from typing import Any

from .. import layout
from .._exceptions import ConfigError, NotFoundError
from ..settings import Settings, export_roots, is_under, resolve_location
from ..storage import Store, options_for
from .pointintime import build_training_set
from .split_policy import DEFAULT_SPLIT_POLICY
from .xgboost_export import export_xgboost

__all__ = ["ExportJob", "allowed_out", "export_target", "run_export", "start_export",
           "read_export"]

FORMATS = ("csv", "parquet")


@dataclasses.dataclass
class ExportJob:
    """An export's record: what ``POST`` answers and ``GET /training-sets/{id}`` reads."""

    id: str
    status: str  # running | completed | failed
    format: str
    out: str
    rows: dict[str, int] | int | None = None
    excluded_incomplete_label: int | None = None
    positives: int | None = None
    metadata: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def allowed_out(store: Store, settings: Settings, out: str) -> bool:
    """Whether ``out`` is below an export root and, inside the store, below
    ``_exports/<name>`` (see the module docstring).

    Args:
        store: the store.
        settings: the settings naming the export roots.
        out: the output folder.

    Returns:
        True when the export may be written there.
    """
    if not any(is_under(out, root) for root in export_roots(settings, store.url)):
        return False
    if not is_under(out, store.url):
        return True
    relative = resolve_location(out)[len(resolve_location(store.url)) + 1:].split("/")
    return relative[0] == layout.EXPORTS and len(relative) > 1 and \
        not relative[1].startswith(("_", "."))


def export_target(store: Store, settings: Settings, out: str | None,
                  start: dt.date | None = None, end: dt.date | None = None
                  ) -> tuple[str, str]:
    """A new export's id and output folder, checked.

    Args:
        store: the store.
        settings: the settings.
        out: the output folder asked for (None: ``<store>/_exports/<id>``).
        start: first as-of date asked for.
        end: last as-of date asked for.

    Returns:
        (export id, output folder).

    Raises:
        ConfigError: ``out`` outside the export roots, or ``start`` after ``end``.
    """
    export_id = uuid.uuid4().hex[:12]
    target = out or store.uri(layout.EXPORTS, export_id)
    if not allowed_out(store, settings, target):
        raise ConfigError(f"out={out!r} is outside the store's exports folder and the "
                          "export roots (FEATURESTORE_EXPORT_ROOTS, "
                          "FEATURESTORE_SAGEMAKER_S3_PREFIX); write below one of them or omit "
                          "out for the default <store>/_exports/<id>/")
    if start and end and start > end:
        raise ConfigError(f"from={start} is after to={end}")
    return export_id, target


def run_export(store: Store, export_id: str, out: str, *, fmt: str = "csv",
               start: dt.date | None = None, end: dt.date | None = None,
               gap_days: int = 30, split_policy: str = DEFAULT_SPLIT_POLICY) -> ExportJob:
    """Write one export now (dask's threaded scheduler in this process).

    Args:
        store: the store.
        export_id: the export's id.
        out: the checked output folder (:func:`export_target`).
        fmt: ``csv`` (the SageMaker XGBoost layout) or ``parquet`` (the plain set).
        start: first as-of date.
        end: last as-of date.
        gap_days: as-of dates purged between the csv splits.
        split_policy: ``time``, ``grouped`` or ``auto`` (csv; :mod:`.split_policy`).

    Returns:
        The completed export's record.
    """
    options = options_for(out, store)
    if fmt == "csv":
        res = export_xgboost(store, out, start=start, end=end, gap_days=gap_days,
                             storage_options=options, split_policy=split_policy)
        m = res.metadata
        return ExportJob(id=export_id, status="completed", format="csv", out=res.out_url,
                         rows=m["rows"], excluded_incomplete_label=m["excluded_incomplete_label"],
                         positives=None, metadata=m)
    ts = build_training_set(store, start=start, end=end, output=out, storage_options=options)
    return ExportJob(id=export_id, status="completed", format="parquet", out=ts.output or out,
                     rows=ts.rows, excluded_incomplete_label=ts.excluded_incomplete_label,
                     positives=ts.positives)


def _record(store: Store, job: ExportJob) -> None:
    store.write_json(job.to_dict(), layout.EXPORT_JOBS, f"{job.id}.json")


def _background(store: Store, export_id: str, out: str, kwargs: dict[str, Any]) -> None:
    try:
        job = run_export(store, export_id, out, **kwargs)
    except Exception as exc:  # noqa: BLE001 - recorded for GET; a thread has nobody else to tell
        job = ExportJob(id=export_id, status="failed", format=kwargs["fmt"], out=out,
                        error=f"{type(exc).__name__}: {exc}")
    _record(store, job)


def start_export(store: Store, export_id: str, out: str, *, fmt: str = "csv",
                 start: dt.date | None = None, end: dt.date | None = None,
                 gap_days: int = 30, split_policy: str = DEFAULT_SPLIT_POLICY) -> ExportJob:
    """Record the export as running and write it in a daemon thread, which records the
    outcome (``completed`` or ``failed`` with the error) when it ends.

    Args:
        as for :func:`run_export`.

    Returns:
        The running export's record.
    """
    job = ExportJob(id=export_id, status="running", format=fmt, out=out)
    _record(store, job)
    kwargs = {"fmt": fmt, "start": start, "end": end, "gap_days": gap_days,
              "split_policy": split_policy}
    threading.Thread(target=_background, args=(store, export_id, out, kwargs), daemon=True,
                     name=f"training-set-{export_id}").start()
    return job


def read_export(store: Store, export_id: str) -> dict[str, Any]:
    """The record of an export started with :func:`start_export`.

    Args:
        store: the store.
        export_id: the export's id.

    Returns:
        The record (the fields of :class:`ExportJob`).

    Raises:
        NotFoundError: no such export.
    """
    if not export_id.isalnum():
        raise NotFoundError(f"no training-set export {export_id!r}")
    try:
        return store.read_json(layout.EXPORT_JOBS, f"{export_id}.json")
    except FileNotFoundError:
        raise NotFoundError(f"no training-set export {export_id!r}: ids come from "
                            "POST /training-sets") from None
