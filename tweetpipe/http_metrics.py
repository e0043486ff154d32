"""Request rate, errors and latency for every FastAPI app, in the registry `/metrics` serves.

The metrics are created once per process and shared by every app in it (the instrumentator's
defaults would register them per app and silently skip the second one).
"""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info

NOT_MEASURED = ["^/metrics$", "^/health$"]
"""Scrapes and probes are not traffic."""

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, status code and route template",
    ["method", "status", "handler"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request (to the end of the body), by route template",
    ["method", "handler"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def _record(info: Info) -> None:
    REQUESTS.labels(info.method, info.modified_status, info.modified_handler).inc()
    LATENCY.labels(info.method, info.modified_handler).observe(info.modified_duration)


def instrument_http_metrics(app: FastAPI) -> FastAPI:
    """Count and time every request to `app`; unknown paths are grouped as handler `none`."""
    instrumentator = Instrumentator(
        should_group_status_codes=False,  # 401 vs 404 vs 429 matter here
        excluded_handlers=NOT_MEASURED,
    )
    instrumentator.add(_record)
    instrumentator.instrument(app)
    return app
