"""Prometheus metrics with a per-app registry: request counts and latency per route template,
snapshot age and as-of. A pure ASGI middleware (cheaper than ``BaseHTTPMiddleware``)."""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import time

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

__all__ = ["Metrics", "MetricsMiddleware", "METHODS", "UNMATCHED"]


#: Latency histogram buckets (seconds): fine below 10 ms, where the feature lookups live.
LATENCY_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5)


class _RequestStats:
    """Request counts per (method, route, status) and latency histograms per (method, route).

    Plain lists and dicts updated by the middleware on the event-loop thread only, exposed as a
    custom collector: ``Counter.inc`` and ``Histogram.observe`` take a lock and walk the buckets
    on every request, which cost more than a feature lookup. Exposition computes the cumulative
    buckets and the count from the per-bucket counts, so a scrape is always self-consistent.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}
        self.histograms: dict[tuple[str, str], list] = {}  # [per-bucket counts..., sum]

    def observe(self, method: str, route: str, status: int | str, seconds: float) -> None:
        key = (method, route, str(status))
        self.counts[key] = self.counts.get(key, 0) + 1
        hist = self.histograms.get((method, route))
        if hist is None:
            hist = self.histograms[(method, route)] = [0] * (len(LATENCY_BUCKETS) + 1) + [0.0]
        hist[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        hist[-1] += seconds

    def collect(self):
        requests = CounterMetricFamily("featurestore_http_requests", "HTTP requests",
                                       labels=["method", "route", "status"])
        for labels, n in list(self.counts.items()):
            requests.add_metric(list(labels), n)
        latency = HistogramMetricFamily("featurestore_http_request_duration_seconds",
                                        "HTTP request latency", labels=["method", "route"])
        for labels, hist in list(self.histograms.items()):
            counts, total = hist[:-1], hist[-1]
            cumulative = list(itertools.accumulate(counts))
            bounds = [*map(floatToGoString, LATENCY_BUCKETS), "+Inf"]
            latency.add_metric(list(labels), list(zip(bounds, cumulative)), total)
        return [requests, latency]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = _RequestStats()
        self.registry.register(self.requests)
        self.snapshot_age = Gauge("featurestore_snapshot_age_seconds",
                                  "seconds since the served snapshot was loaded", ["table"],
                                  registry=self.registry)
        self.snapshot_as_of = Gauge("featurestore_snapshot_as_of_timestamp_seconds",
                                    "served as_of date (unix seconds, midnight UTC)", ["table"],
                                    registry=self.registry)

    def observe_snapshot(self, snapshot) -> None:
        if snapshot is None:
            return
        now = time.time()
        for name, table in snapshot.tables.items():
            self.snapshot_age.labels(name).set(now - table.loaded_at)
            day = dt.datetime.fromisoformat(table.as_of).replace(tzinfo=dt.timezone.utc)
            self.snapshot_as_of.labels(name).set(day.timestamp())


#: Label values are bounded whatever clients send: methods outside this set count as "OTHER",
#: paths matching no route as "other" (never the raw path), statuses outside 100-599 as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "other"


class MetricsMiddleware:
    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.stats = metrics.requests

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
            template = getattr(route, "path", None) or UNMATCHED  # a template, never raw
            method = scope.get("method", "")
            if method not in METHODS:
                method = "OTHER"
            code = status[0] if 100 <= status[0] <= 599 else "other"
            self.stats.observe(method, template, code, time.perf_counter() - start)
