"""``GET /metrics``: Prometheus text format from the app's own registry."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request) -> Response:
    """Request counts and latency histograms per route, snapshot age and as-of."""
    m = request.app.state.metrics
    online = request.app.state.online
    m.observe_snapshot(online.snapshot if getattr(online, "in_process", True)
                       else await online.served())
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
