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

import dataclasses
import datetime as dt
import importlib
import inspect
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
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
from ..storage import Store, absolute_url
from . import _heartbeat, registry
from .alerts import evaluate_and_promote
from .backends import backend_class
from .models import model_spec

__all__ = ["BACKENDS", "JobPlan", "plan_job", "execute_job", "commit_job", "new_job",
           "run_job", "submit", "get_job", "list_jobs", "wait_for", "TERMINAL",
           "check_export_url"]

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
        "error": None, "artifact": None, "model_version": None,
        "export_url": absolute_url(export_url) if export_url else export_url,
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


@dataclasses.dataclass(frozen=True)
class JobPlan:
    """What running one retrain job does (pure: see :func:`plan_job`).

    Attributes:
        job_id: the job.
        model: the model's name.
        backend: the training backend's name or dotted path.
        tune: tune hyperparameters.
        adopt: this process takes the job over (it was created by another runner) and beats
            its heartbeat.
        export_url: an export to train on as given, or None to build one.
        export_out: where a new export is written (``<store>/_exports/<model>/<job id>``).
        export: the ``featurestore.training`` function that builds it.
        as_of: the last as-of date of a new export (None: the latest).
    """

    job_id: str
    model: str
    backend: str
    tune: bool
    adopt: bool
    export_url: str | None
    export_out: str
    export: str
    as_of: dt.date | None


def plan_job(record: dict[str, Any], runner: str, exports_url: str) -> JobPlan:
    """Plan a queued job from its record, no I/O.

    Args:
        record: the job record.
        runner: this process's runner id.
        exports_url: the store's exports folder URL.

    Returns:
        The plan.

    Raises:
        NotFoundError: the record names an unknown model (the job fails with it).
    """
    spec = model_spec(record["model"])
    return JobPlan(
        job_id=record["job_id"], model=spec.name, backend=record["backend"],
        tune=bool(record["tune"]), adopt=record.get("runner") not in (None, runner),
        export_url=record.get("export_url") or None,
        export_out=f"{exports_url}/{record['model']}/{record['job_id']}", export=spec.export,
        as_of=dt.date.fromisoformat(record["as_of"]) if record.get("as_of") else None)


def _export(store: Store, plan: JobPlan) -> str:
    """The export the job trains on: the given one, or a new one built now."""
    if plan.export_url:
        return plan.export_url
    try:
        training = importlib.import_module("featurestore.training")
    except ImportError as exc:
        raise TrainingError(f"building a training set needs featurestore.training ({exc}); "
                            "pass an existing export with export_url") from None
    export = getattr(training, plan.export)
    accepted = inspect.signature(export).parameters
    kwargs: dict[str, Any] = {"storage_options": store.storage_options or None}
    if plan.as_of is not None:
        if "end" not in accepted:
            raise TrainingError(f"{plan.export} takes no as-of date; retrain {plan.model} "
                                "without as_of")
        kwargs["end"] = plan.as_of
    result = export(store, plan.export_out, **kwargs)
    # ExportResult names it .url in the brief, .out_url on the training branch: accept both.
    return getattr(result, "url", None) or getattr(result, "out_url", None) or plan.export_out


def execute_job(store: Store, settings: Settings, plan: JobPlan,
                exported: Callable[[str], None]) -> dict[str, Any]:
    """Export (unless given), train with the backend, register the version, compare with
    production (alerts, promotion).

    Args:
        store: the store.
        settings: settings (backends, alerts).
        plan: the plan.
        exported: called with the export URL once it is written (recorded at once, so a
            failed training still names its data).

    Returns:
        The record fields of the outcome: ``metrics``, ``model_version``, ``artifact``,
        ``alert``.

    Raises:
        Exception: any failure of the job (the caller records it).
    """
    spec = model_spec(plan.model)
    export_url = absolute_url(_export(store, plan))  # recorded: never relative to a cwd
    exported(export_url)
    backend = backend_class(plan.backend)(settings)
    result = backend.train(spec, export_url, storage_options=store.storage_options or None,
                           tune=plan.tune, job_id=plan.job_id)
    from .local import read_export_metadata

    meta = read_export_metadata(export_url, store.storage_options or None)
    features = list(meta.get("feature_names") or result.details.get("feature_names") or [])
    if spec.kind == "implicit":
        features = ["purchases:invoices per (customer, item)"]
    files = {**_recommender_files(spec.kind, export_url, meta, result, store), **result.files}
    version = registry.register_version(
        store, spec.name, metrics=result.metrics, model_bytes=result.model_bytes,
        model_filename=result.model_filename,
        training_set={"url": export_url, "metadata": meta},
        features=features or [f"block:{b}" for b in _block_names(meta)],
        info={"job_id": plan.job_id, "backend": plan.backend, "params": result.params,
              "artifact": result.artifact, "details": result.details}, files=files)
    artifact = result.artifact or registry.get_version(store, spec.name, version)["model_file"]
    alert = evaluate_and_promote(store, settings, spec, version, result.metrics, plan.job_id)
    return {"metrics": result.metrics, "model_version": version, "artifact": artifact,
            "alert": alert}


def commit_job(store: Store, record: dict[str, Any]) -> None:
    """Write the job's final record, then release this runner's heartbeat."""
    _save(store, record)
    _heartbeat.release(store)


def run_job(store: Store, job_id: str, settings: Settings) -> dict[str, Any]:
    """Run a queued job to completion in this thread: plan (:func:`plan_job`), execute
    (:func:`execute_job`), commit (:func:`commit_job`); returns the final record (never
    raises for a training failure: the record says ``failed`` with the error)."""
    record = store.read_json(JOBS, f"{job_id}.json")
    if record.get("runner") not in (None, _heartbeat.RUNNER):  # created elsewhere: beat here
        record["runner"] = _heartbeat.RUNNER
        _heartbeat.acquire(store)
    record.update(status="running", started_at=_now())
    _save(store, record)

    def exported(url: str) -> None:
        record["export_url"] = url
        _save(store, record)

    try:
        plan = plan_job(record, _heartbeat.RUNNER, store.uri(layout.EXPORTS))
        record.update(execute_job(store, settings, plan, exported))
        record.update(status="completed", finished_at=_now())
    except Exception as exc:  # any failure is the job's outcome, not the server's
        if not isinstance(exc, FeatureStoreError):
            log.error("retrain job %s failed:\n%s", job_id, traceback.format_exc())
        record.update(status="failed", finished_at=_now(),
                      error=f"{type(exc).__name__}: {exc}")
    commit_job(store, record)
    return record


def _recommender_files(kind: str, export_url: str, meta: dict[str, Any], result: Any,
                       store: Store) -> dict[str, bytes]:
    """For an FM with its model in hand and an export that has the recommender index: the
    index (kept with the version, so recommendations never depend on the export) and the
    offline evaluation (recall@10, NDCG@10 vs popularity) merged into ``result.metrics``."""
    if kind != "fm" or not result.model_bytes or not meta.get("index"):
        return {}
    import fsspec

    from ..recommend import INDEX, FMRecommender, evaluate

    with fsspec.open(f"{export_url.rstrip('/')}/{meta['index']}", "rb",
                     **(store.storage_options or {})) as f:
        index = f.read()
    if "recall_at_10_new" not in result.metrics:  # a regressor: random held-out pairs
        result.metrics.update(evaluate(FMRecommender.from_bytes(result.model_bytes, index)))
    return {INDEX: index}


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
