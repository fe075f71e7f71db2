"""Model registry: ``GET /models`` and ``GET /models/{name}`` (versions, metrics, production).

Damaged records are listed (``production_damaged``, per-version ``damaged``), never a 500.

Anonymous readers get logical names only (model, version, job id, metrics); the locations of
model files and training sets (``artifact``, ``model_file``, ``training_set``) are answered only
with the write token.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from featurestore.retrain import registry

from ..deps import IdPath, ReadAuth, StoreDep, is_operator

router = APIRouter(tags=["models"])

#: Version fields that are store locations: for operators only.
LOCATION_FIELDS = ("artifact", "model_file", "training_set")


def _public(summary: dict[str, Any], operator: bool) -> dict[str, Any]:
    if operator:
        return summary
    versions = [{k: v for k, v in version.items() if k not in LOCATION_FIELDS}
                for version in summary["versions"]]
    return {**summary, "versions": versions}


@router.get("/models", dependencies=[ReadAuth])
def list_models(store: StoreDep, request: Request) -> dict[str, Any]:
    operator = is_operator(request)
    return {"models": [_public(s, operator) for s in registry.list_summaries(store)]}


@router.get("/models/{name}", dependencies=[ReadAuth])
def get_model(name: IdPath, store: StoreDep, request: Request) -> dict[str, Any]:
    return _public(registry.model_summary(store, name), is_operator(request))
