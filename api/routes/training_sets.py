"""Training-set exports: ``POST /training-sets`` (token) and ``GET /training-sets/{id}``.

``POST`` builds the point-in-time training set for ``from``..``to`` and writes it to ``out``
(default ``<store>/_exports/<id>/``): ``format: "csv"`` is the SageMaker XGBoost layout,
``"parquet"`` the plain set. With ``wait: true`` (default) it answers 200 when the export is
written, with its counts; with ``wait: false`` it answers 202 at once and the export runs in a
background thread, its status readable at ``GET /training-sets/{id}``. ``out`` must lie below an
export root (``FEATURESTORE_EXPORT_ROOTS``, default ``<store>/_exports``; and
``FEATURESTORE_SAGEMAKER_S3_PREFIX``), resolved (``..``, symlinks), and never in the store's
internals (tables, ``_ledger``, ``_models``, ``_exports/_jobs``...): the API writes nowhere else.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from featurestore._exceptions import ConfigError, NotFoundError
from featurestore.settings import Settings, export_roots, is_under, resolve_location
from featurestore.storage import Store
from featurestore.training import build_training_set, export_xgboost
from featurestore.training.pointintime import HORIZON_DAYS

from ..deps import IdPath, SettingsDep, StoreDep, WriteAuth

__all__ = ["router"]

router = APIRouter(tags=["training"])

JOBS_DIR = "_exports/_jobs"


class TrainingSetRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    start: dt.date | None = Field(None, alias="from", description="first as-of date")
    end: dt.date | None = Field(None, alias="to", description="last as-of date")
    out: str | None = Field(None, description="output folder; default <store>/_exports/<id>/")
    format: Literal["csv", "parquet"] = "csv"
    gap_days: int = Field(HORIZON_DAYS, ge=0, le=365)
    wait: bool = True


class TrainingSetAnswer(BaseModel):
    id: str
    status: Literal["running", "completed", "failed"]
    format: str
    out: str
    rows: dict[str, int] | int | None = None
    excluded_incomplete_label: int | None = None
    positives: int | None = None
    metadata: dict[str, Any] | None = None
    error: str | None = None


def _allowed_out(store: Store, settings: Settings, out: str) -> bool:
    """Whether ``out`` is below an export root and, inside the store, below ``_exports/<id>``.

    The second rule holds whatever the roots are: an export written over a table, the ledger or
    the job records would break every later run.
    """
    if not any(is_under(out, root) for root in export_roots(settings, store.url)):
        return False
    if not is_under(out, store.url):
        return True
    relative = resolve_location(out)[len(resolve_location(store.url)) + 1:].split("/")
    return relative[0] == "_exports" and len(relative) > 1 and \
        not relative[1].startswith(("_", "."))


def _run(store: Store, req: TrainingSetRequest, out: str, export_id: str) -> TrainingSetAnswer:
    options = store.storage_options if Store(out).protocol == store.protocol else None
    if req.format == "csv":
        res = export_xgboost(store, out, start=req.start, end=req.end, gap_days=req.gap_days,
                             storage_options=options)
        m = res.metadata
        return TrainingSetAnswer(
            id=export_id, status="completed", format="csv", out=res.out_url, rows=m["rows"],
            excluded_incomplete_label=m["excluded_incomplete_label"],
            positives=None, metadata=m)
    ts = build_training_set(store, start=req.start, end=req.end, output=out,
                            storage_options=options)
    return TrainingSetAnswer(id=export_id, status="completed", format="parquet",
                             out=ts.output or out, rows=ts.rows,
                             excluded_incomplete_label=ts.excluded_incomplete_label,
                             positives=ts.positives)


def _background(store: Store, req: TrainingSetRequest, out: str, export_id: str) -> None:
    try:
        answer = _run(store, req, out, export_id)
    except Exception as exc:  # recorded for GET; a thread has nobody else to tell
        answer = TrainingSetAnswer(id=export_id, status="failed", format=req.format, out=out,
                                   error=f"{type(exc).__name__}: {exc}")
    store.write_json(answer.model_dump(), JOBS_DIR, f"{export_id}.json")


@router.post("/training-sets", response_model=TrainingSetAnswer, dependencies=[WriteAuth],
             responses={202: {"model": TrainingSetAnswer}})
def create_training_set(req: TrainingSetRequest, store: StoreDep, settings: SettingsDep,
                        response: Response) -> TrainingSetAnswer:
    """Export a point-in-time training set; answers where it is written and its counts."""
    export_id = uuid.uuid4().hex[:12]
    out = req.out or store.uri("_exports", export_id)
    if not _allowed_out(store, settings, out):
        raise ConfigError(f"out={req.out!r} is outside the store's exports folder and the "
                          "export roots (FEATURESTORE_EXPORT_ROOTS, "
                          "FEATURESTORE_SAGEMAKER_S3_PREFIX); write below one of them or omit "
                          "out for the default <store>/_exports/<id>/")
    if req.start and req.end and req.start > req.end:
        raise ConfigError(f"from={req.start} is after to={req.end}")
    if req.wait:
        return _run(store, req, out, export_id)
    answer = TrainingSetAnswer(id=export_id, status="running", format=req.format, out=out)
    store.write_json(answer.model_dump(), JOBS_DIR, f"{export_id}.json")
    threading.Thread(target=_background, args=(store, req, out, export_id), daemon=True,
                     name=f"training-set-{export_id}").start()
    response.status_code = status.HTTP_202_ACCEPTED
    return answer


@router.get("/training-sets/{export_id}", response_model=TrainingSetAnswer,
            dependencies=[WriteAuth])
def get_training_set(export_id: IdPath, store: StoreDep) -> TrainingSetAnswer:
    """Status of an export started with ``wait: false``."""
    if not export_id.isalnum():
        raise NotFoundError(f"no training-set export {export_id!r}")
    try:
        return TrainingSetAnswer.model_validate(store.read_json(JOBS_DIR, f"{export_id}.json"))
    except FileNotFoundError:
        raise NotFoundError(f"no training-set export {export_id!r}: ids come from "
                            "POST /training-sets") from None


