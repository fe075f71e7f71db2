"""Retraining: ``POST /retrain`` (token) queues a job; ``GET /retrain/{job_id}`` follows it.

``POST`` answers 429 when ``retrain_queue_limit`` jobs are queued or running, and refuses an
``export_url`` outside the export roots and ``export_input_prefixes``. ``GET`` answers anonymous
readers without locations: ``artifact`` and ``export_url`` are null and paths in ``error`` are
cut to their file name; the write token gets the full record.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from featurestore._lazy import lazy_module

from ..deps import IdPath, ReadAuth, SettingsDep, StoreDep, WriteAuth, hide_locations, is_operator

# the job runner (and its model backends) load with the first retrain request, not before
# /ready
jobs = lazy_module("featurestore.retrain")

router = APIRouter(tags=["retrain"])


class RetrainRequest(BaseModel):
    model: Literal["purchase-xgboost", "retail-fm", "retail-als", "retail-knn"]
    backend: Literal["sagemaker", "local"] = "local"
    tune: bool = False
    as_of: dt.date | None = Field(None, description="last as-of date of the training set")
    export_url: str | None = Field(
        None, description="train on this existing export instead of building a new one")


class RetrainAccepted(BaseModel):
    job_id: str
    status: str


class JobStatus(BaseModel):
    job_id: str
    model: str
    backend: str
    status: str
    metrics: dict[str, Any]
    error: str | None
    submitted_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    artifact: str | None = None
    model_version: str | None = None
    tune: bool = False
    as_of: str | None = None
    export_url: str | None = None
    alert: dict[str, Any] | None = None
    runner: str | None = Field(None, description="host-pid of the process running the job")


@router.post("/retrain", status_code=202, response_model=RetrainAccepted,
             dependencies=[WriteAuth])
def retrain(body: RetrainRequest, store: StoreDep, settings: SettingsDep) -> RetrainAccepted:
    """Queue a retraining job; it runs in this server process's job pool."""
    record, _ = jobs.submit(store, settings, body.model, body.backend, tune=body.tune,
                       as_of=body.as_of, export_url=body.export_url)
    return RetrainAccepted(job_id=record["job_id"], status=record["status"])


@router.get("/retrain/{job_id}", response_model=JobStatus, dependencies=[ReadAuth])
def retrain_status(job_id: IdPath, store: StoreDep, request: Request) -> JobStatus:
    record = jobs.get_job(store, job_id)
    if not is_operator(request):
        record.update(artifact=None, export_url=None)
        if record.get("error"):
            record["error"] = hide_locations(record["error"], store)
    return JobStatus(**record)
