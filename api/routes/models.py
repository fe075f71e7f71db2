"""Model registry: ``GET /models`` and ``GET /models/{name}`` (versions, metrics, production).

Damaged records are listed (``production_damaged``, per-version ``damaged``), never a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from featurestore.retrain import registry

from ..deps import ReadAuth, StoreDep

router = APIRouter(tags=["models"])


@router.get("/models", dependencies=[ReadAuth])
def list_models(store: StoreDep) -> dict[str, Any]:
    return {"models": registry.list_summaries(store)}


@router.get("/models/{name}", dependencies=[ReadAuth])
def get_model(name: str, store: StoreDep) -> dict[str, Any]:
    return registry.model_summary(store, name)
