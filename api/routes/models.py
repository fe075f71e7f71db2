"""Model registry: ``GET /models`` and ``GET /models/{name}`` (versions, metrics, production)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from featurestore.retrain import registry

from ..deps import ReadAuth, StoreDep

router = APIRouter(tags=["models"])


@router.get("/models", dependencies=[ReadAuth])
def list_models(store: StoreDep) -> dict[str, Any]:
    return {"models": [registry.model_summary(store, n) for n in registry.list_models(store)]}


@router.get("/models/{name}", dependencies=[ReadAuth])
def get_model(name: str, store: StoreDep) -> dict[str, Any]:
    return registry.model_summary(store, name)
