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
from typing import Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from featurestore.training.split_policy import DEFAULT_SPLIT_POLICY, HORIZON_DAYS

from ..deps import FeatureStoreDep, IdPath, WriteAuth

__all__ = ["router"]

router = APIRouter(tags=["training"])


class TrainingSetRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    start: dt.date | None = Field(None, alias="from", description="first as-of date")
    end: dt.date | None = Field(None, alias="to", description="last as-of date")
    out: str | None = Field(None, description="output folder; default <store>/_exports/<id>/")
    format: Literal["csv", "parquet"] = "csv"
    gap_days: int = Field(HORIZON_DAYS, ge=0, le=365)
    split_policy: Literal["time", "grouped", "auto"] = Field(
        DEFAULT_SPLIT_POLICY, description="csv splits: by time, by customer group, or auto "
        "(docs/training.md); recorded in metadata.json")
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


@router.post("/training-sets", response_model=TrainingSetAnswer, dependencies=[WriteAuth],
             responses={202: {"model": TrainingSetAnswer}})
def create_training_set(req: TrainingSetRequest, fs: FeatureStoreDep,
                        response: Response) -> TrainingSetAnswer:
    """Export a point-in-time training set; answers where it is written and its counts."""
    job = fs.export_training_set(out=req.out, fmt=req.format, start=req.start, end=req.end,
                                 gap_days=req.gap_days, wait=req.wait,
                                 split_policy=req.split_policy)
    if job["status"] == "running":
        response.status_code = status.HTTP_202_ACCEPTED
    return TrainingSetAnswer.model_validate(job)


@router.get("/training-sets/{export_id}", response_model=TrainingSetAnswer,
            dependencies=[WriteAuth])
def get_training_set(export_id: IdPath, fs: FeatureStoreDep) -> TrainingSetAnswer:
    """Status of an export started with ``wait: false``."""
    return TrainingSetAnswer.model_validate(fs.export_status(export_id))
