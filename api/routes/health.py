"""Liveness and readiness: ``GET /health``, ``GET /ready``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..deps import OnlineDep, hide_locations

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Served(BaseModel):
    as_of: str
    generation: int  # committed generation of the partition (0: none recorded)


class Ready(BaseModel):
    status: str
    snapshot: dict[str, str]  # table -> served as-of (kept as it was)
    served: dict[str, Served]  # table -> served as-of and generation


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is up (it may still be loading its first snapshot; see ``/ready``)."""
    return Health(status="ok")


@router.get("/ready", response_model=Ready,
            responses={503: {"description": "no snapshot loaded yet"}})
async def ready(online: OnlineDep) -> Ready | JSONResponse:
    """Ready once a feature snapshot is loaded (a shared online store: answering, with
    ``customer_features`` pushed and nothing lost); 503 with the reason until then."""
    served = getattr(online, "served", None)  # an older custom store has only `snapshot`
    snapshot = await served() if served is not None else online.snapshot
    if snapshot is None or "customer_features" not in snapshot.tables:
        reason = (hide_locations(online.last_error, online.store) if online.last_error
                  else "no customer_features as_of partition in the store yet")
        if getattr(online, "in_process", True) or not online.last_error:
            detail = (f"not ready: loading the first snapshot ({reason}); "
                      "materialize features and retry")
        else:
            detail = f"not ready: {reason}"
        return JSONResponse({"detail": detail}, status_code=503)
    return Ready(status="ready", snapshot={t: s.as_of for t, s in snapshot.tables.items()},
                 served={t: Served(as_of=s.as_of, generation=s.generation)
                         for t, s in snapshot.tables.items()})
