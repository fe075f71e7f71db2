"""Retraining jobs: a JSON record per job in the store, run by a small in-process thread pool.

``<store>/_jobs/<job_id>.json`` holds ``job_id, model, backend, tune, as_of, status
(queued|running|completed|failed), submitted_at, started_at, finished_at, metrics, error,
artifact, model_version, export_url, alert, runner``. Any process that can read the store can
follow a job (``get_job``); only the process that runs it writes the record. A job whose
process died reads as failed (``_heartbeat``).

A job: export the training set (``featurestore.training.export_xgboost`` / ``export_fm`` into
``<store>/_exports/<model>/<job_id>/``, unless an existing export URL is given), train with the
backend, register a version, compare with production (alerts, promotion), record the outcome.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import logging
import threading
import time
import traceback
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .. import layout
from .._exceptions import (
    ConfigError,
    FeatureStoreError,
    NotFoundError,
    QueueFullError,
    TrainingError,
)
from ..plugins import TRAINING_BACKEND_CLASS_FOR_TYPE, is_known
from ..settings import Settings, export_roots, is_under
from ..storage import Store
from . import _heartbeat, registry
from .alerts import evaluate_and_promote
from .backends import backend_class
from .models import model_spec

__all__ = ["BACKENDS", "new_job", "run_job", "submit", "get_job", "list_jobs", "wait_for",
           "TERMINAL", "check_export_url"]

log = logging.getLogger(__name__)

BACKENDS = tuple(TRAINING_BACKEND_CLASS_FOR_TYPE)  # the built-in ones
TERMINAL = ("completed", "failed")
JOBS = layout.JOBS

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_pending = 0  # jobs submitted to the pool and not finished yet (guarded by _executor_lock)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _executor_instance() -> ThreadPoolExecutor:
    # One worker: training saturates the cores; more jobs simply queue.
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrain")
        return _executor


def _save(store: Store, record: dict[str, Any]) -> None:
    store.write_json(record, JOBS, f"{record['job_id']}.json")


def new_job(store: Store, model: str, backend: str = "local", *, tune: bool = False,
            as_of: dt.date | str | None = None, export_url: str | None = None) -> dict[str, Any]:
    """Validate the request and write a ``queued`` record; returns it."""
    model_spec(model)
    if not is_known(backend, TRAINING_BACKEND_CLASS_FOR_TYPE):
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)} "
                          "or a dotted class path")
    backend_class(backend)  # a dotted path must import before the job is queued
    if as_of is not None:
        try:
            as_of = dt.date.fromisoformat(str(as_of)).isoformat()
        except ValueError:
            raise ConfigError(f"as_of {as_of!r} is not a date like 2026-03-05") from None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    record: dict[str, Any] = {
        "job_id": f"{model}-{stamp}-{uuid.uuid4().hex[:6]}", "model": model,
        "backend": backend, "tune": bool(tune), "as_of": as_of, "status": "queued",
        "submitted_at": _now(), "started_at": None, "finished_at": None, "metrics": {},
        "error": None, "artifact": None, "model_version": None, "export_url": export_url,
        "alert": None, "runner": _heartbeat.RUNNER,
    }
    _heartbeat.acquire(store)  # released when run_job finishes it
    _save(store, record)
    return record


def get_job(store: Store, job_id: str) -> dict[str, Any]:
    if "/" in job_id or job_id.startswith("."):
        raise NotFoundError(f"no retrain job {job_id!r}")
    try:
        record = store.read_json(JOBS, f"{job_id}.json")
    except FileNotFoundError:
        raise NotFoundError(f"no retrain job {job_id!r} in {store.url}; POST /retrain "
                            "returns the id to use") from None
    reason = _heartbeat.stale_reason(store, record)
    if reason is not None:  # its process died: it will never finish
        record.update(status="failed", error=reason)
    return record


def list_jobs(store: Store) -> list[dict[str, Any]]:
    out = []
    for name in store.listdir(JOBS):
        if name.endswith(".json") and not name.startswith((".", "_")):
            out.append(get_job(store, name[:-5]))
    return sorted(out, key=lambda r: r["submitted_at"])


def _export(store: Store, record: dict[str, Any]) -> str:
    spec = model_spec(record["model"])
    if record.get("export_url"):
        return record["export_url"]
    try:
        training = importlib.import_module("featurestore.training")
    except ImportError as exc:
        raise TrainingError(f"building a training set needs featurestore.training ({exc}); "
                            "pass an existing export with export_url") from None
    out = store.uri(layout.EXPORTS, record["model"], record["job_id"])
    export = getattr(training, spec.export)
    accepted = inspect.signature(export).parameters
    kwargs: dict[str, Any] = {"storage_options": store.storage_options or None}
    if record.get("as_of"):
        if "end" not in accepted:
            raise TrainingError(f"{spec.export} takes no as-of date; retrain {spec.name} "
                                "without as_of")
        kwargs["end"] = dt.date.fromisoformat(record["as_of"])
    result = export(store, out, **kwargs)
    # ExportResult names it .url in the brief, .out_url on the training branch: accept both.
    return getattr(result, "url", None) or getattr(result, "out_url", None) or out


def run_job(store: Store, job_id: str, settings: Settings) -> dict[str, Any]:
    """Run a queued job to completion in this thread; returns the final record (never raises
    for a training failure: the record says ``failed`` with the error)."""
    record = store.read_json(JOBS, f"{job_id}.json")
    if record.get("runner") not in (None, _heartbeat.RUNNER):  # created elsewhere: beat here
        record["runner"] = _heartbeat.RUNNER
        _heartbeat.acquire(store)
    record.update(status="running", started_at=_now())
    _save(store, record)
    try:
        spec = model_spec(record["model"])
        export_url = _export(store, record)
        record["export_url"] = export_url
        _save(store, record)
        backend = backend_class(record["backend"])(settings)
        result = backend.train(spec, export_url, storage_options=store.storage_options or None,
                               tune=record["tune"], job_id=job_id)
        from .local import read_export_metadata

        meta = read_export_metadata(export_url, store.storage_options or None)
        features = list(meta.get("feature_names") or result.details.get("feature_names") or [])
        version = registry.register_version(
            store, spec.name, metrics=result.metrics, model_bytes=result.model_bytes,
            model_filename=result.model_filename,
            training_set={"url": export_url, "metadata": meta},
            features=features or [f"block:{b}" for b in _block_names(meta)],
            info={"job_id": job_id, "backend": record["backend"], "params": result.params,
                  "artifact": result.artifact, "details": result.details})
        artifact = result.artifact or registry.get_version(store, spec.name, version)[
            "model_file"]
        record.update(metrics=result.metrics, model_version=version, artifact=artifact)
        record["alert"] = evaluate_and_promote(store, settings, spec, version, result.metrics,
                                               job_id)
        record.update(status="completed", finished_at=_now())
    except Exception as exc:  # any failure is the job's outcome, not the server's
        if not isinstance(exc, FeatureStoreError):
            log.error("retrain job %s failed:\n%s", job_id, traceback.format_exc())
        record.update(status="failed", finished_at=_now(),
                      error=f"{type(exc).__name__}: {exc}")
    _save(store, record)
    _heartbeat.release(store)
    return record


def _block_names(meta: dict[str, Any]) -> list[str]:
    blocks = meta.get("blocks") or []
    if isinstance(blocks, dict):
        return [str(k) for k in blocks]
    return [str(b.get("name", i)) if isinstance(b, dict) else str(b) for i, b in
            enumerate(blocks)]


def check_export_url(store: Store, settings: Settings, export_url: str) -> None:
    """Refuse an ``export_url`` outside the export roots and ``export_input_prefixes``.

    The API server reads what it is given: without this, a token holder could make it read any
    local path or fetch any URL (an internal HTTP address).

    Args:
        store: the store the job belongs to.
        settings: ``export_roots``, ``export_input_prefixes`` and ``sagemaker_s3_prefix``.
        export_url: the export the request names.

    Raises:
        ConfigError: the URL is not under an allowed prefix (or is not a path or s3:// URL).
    """
    allowed = [*export_roots(settings, store.url), *settings.export_input_prefixes]
    if not any(is_under(export_url, root) for root in allowed):
        raise ConfigError(f"export_url={export_url!r} is outside the store's exports and "
                          "FEATURESTORE_EXPORT_INPUT_PREFIXES; use an export under one of them "
                          "or omit export_url to build a new one")


def submit(store: Store, settings: Settings, model: str, backend: str = "local", *,
           tune: bool = False, as_of: dt.date | str | None = None,
           export_url: str | None = None) -> tuple[dict[str, Any], Future]:
    """Queue a job and start it on the in-process pool (the API's path).

    Args:
        store: the store to train from and register into.
        settings: the server's settings (``retrain_queue_limit``, allowed export prefixes).
        model: model name; backend: ``local`` or ``sagemaker``; tune, as_of: as for new_job.
        export_url: an existing export, checked with :func:`check_export_url`.

    Returns:
        (the queued record, the future of its run).

    Raises:
        QueueFullError: ``retrain_queue_limit`` jobs are already queued or running here.
        ConfigError: an invalid request or a refused export_url.
    """
    global _pending
    if export_url is not None:
        check_export_url(store, settings, export_url)
    with _executor_lock:
        if _pending >= settings.retrain_queue_limit:
            raise QueueFullError(f"{_pending} retrain jobs are already queued or running (limit "
                                 "FEATURESTORE_RETRAIN_QUEUE_LIMIT="
                                 f"{settings.retrain_queue_limit}); retry when one finishes")
        _pending += 1  # claimed before the record is written, so no burst overshoots
    try:
        record = new_job(store, model, backend, tune=tune, as_of=as_of, export_url=export_url)
        future = _executor_instance().submit(run_job, store, record["job_id"], settings)
    except BaseException:
        _finished()
        raise
    future.add_done_callback(lambda _: _finished())
    return record, future


def _finished() -> None:
    global _pending
    with _executor_lock:
        _pending -= 1


def wait_for(store: Store, job_id: str, timeout: float = 3600.0, poll: float = 0.5
             ) -> dict[str, Any]:
    """Poll the job record until it is completed or failed (works from any process)."""
    deadline = time.monotonic() + timeout
    while True:
        record = get_job(store, job_id)
        if record["status"] in TERMINAL:
            return record
        if time.monotonic() > deadline:
            raise TrainingError(f"job {job_id} still {record['status']} after {timeout:.0f} s")
        time.sleep(poll)
