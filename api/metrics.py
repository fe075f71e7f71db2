"""Prometheus metrics with a per-app registry: request counts and latency per route template,
snapshot age and as-of. A pure ASGI middleware (cheaper than ``BaseHTTPMiddleware``)."""

from __future__ import annotations

import datetime as dt
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics", "MetricsMiddleware"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("featurestore_http_requests_total", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "featurestore_http_request_duration_seconds", "HTTP request latency",
            ["method", "route"], registry=self.registry,
            buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
        self._children: dict[tuple[str, str, int], tuple] = {}
        self.snapshot_age = Gauge("featurestore_snapshot_age_seconds",
                                  "seconds since the served snapshot was loaded", ["table"],
                                  registry=self.registry)
        self.snapshot_as_of = Gauge("featurestore_snapshot_as_of_timestamp_seconds",
                                    "served as_of date (unix seconds, midnight UTC)", ["table"],
                                    registry=self.registry)

    def children(self, method: str, route: str, status: int):
        """Cached labelled children: ``labels()`` validates and locks on every call."""
        key = (method, route, status)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route))
        return found

    def observe_snapshot(self, snapshot) -> None:
        if snapshot is None:
            return
        now = time.time()
        for name, table in snapshot.tables.items():
            self.snapshot_age.labels(name).set(now - table.loaded_at)
            day = dt.datetime.fromisoformat(table.as_of).replace(tzinfo=dt.timezone.utc)
            self.snapshot_as_of.labels(name).set(day.timestamp())


class MetricsMiddleware:
    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def _send(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            method = scope.get("method", "")
            count, latency = self.metrics.children(method, template, status[0])
            count.inc()
            latency.observe(time.perf_counter() - start)
