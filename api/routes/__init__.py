"""One router module per resource. ``ROUTERS`` is what ``create_app`` includes, in order."""

from __future__ import annotations

import importlib

from fastapi import APIRouter

__all__ = ["ROUTER_MODULES", "all_routers"]

#: Module names under ``api.routes``; each exposes ``router: APIRouter``.
# Hot routes first: routes are matched in order.
ROUTER_MODULES = ("features", "table_features", "health", "tables", "metrics", "training_sets",
                  "retrain", "models")


def all_routers() -> list[APIRouter]:
    return [importlib.import_module(f"{__name__}.{m}").router for m in ROUTER_MODULES]
