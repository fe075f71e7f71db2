"""Liveness: ``GET /health``."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/health", response_model=Health)
def health() -> Health:
    """The process is up (it may still be loading its first snapshot; see ``/ready``)."""
    return Health(status="ok")
