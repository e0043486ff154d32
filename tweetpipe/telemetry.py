"""Tracing (OpenTelemetry → Zipkin and/or OTLP) and HTTP metrics, the same way in every service.

Tracing is off unless `tracing.zipkin_endpoint` or the standard `OTEL_*` variables ask for an
exporter (`tweetpipe.trace_exporters`), and then costs nothing: the SDK and the
instrumentations are imported only when it is on, and hot loops check `tracing_enabled()`.
HTTP metrics are always on: they land in the default Prometheus registry that `/metrics` serves.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
from fastapi import FastAPI
from opentelemetry import trace

from tweetpipe import trace_exporters
from tweetpipe.http_metrics import instrument_http_metrics
from tweetpipe.settings import TracingSettings
from tweetpipe.tracing import tracing_enabled

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)

NOT_TRACED_URLS = "/health,/metrics"
"""Probes and scrapes would drown the traces people look for."""


class Telemetry:
    """Tracing as installed for one service; `shutdown()` flushes the spans still queued."""

    def __init__(self, service: str, flush: Callable[[], None] | None) -> None:
        self.service = service
        self._flush = flush
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._flush is not None

    def shutdown(self) -> None:
        with self._lock:
            flush, self._flush = self._flush, None
        if flush is not None:
            flush()


def start_tracing(service: str, settings: TracingSettings) -> Telemetry:
    """Install the SDK with the chosen exporters and the client instrumentations, once.

    Called by each service at start-up, before it builds clients and apps. Spans still queued
    are flushed at interpreter exit (services exit normally on SIGTERM) or by `shutdown()`.
    """
    exporters = trace_exporters.chosen(settings, os.environ)
    if not exporters:
        return Telemetry(service, None)
    if tracing_enabled():
        raise RuntimeError("tracing is already installed in this process")
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.kafka import KafkaInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from tweetpipe.sampling import sampler

    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service}),
        sampler=sampler(settings.sample_ratio),
        shutdown_on_exit=False,  # our own exit hook below, so shutdown() and exit flush once
    )
    for name in exporters:
        provider.add_span_processor(
            BatchSpanProcessor(
                trace_exporters.build(name, settings), max_queue_size=settings.max_queue_size
            )
        )
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    KafkaInstrumentor().instrument(tracer_provider=provider)
    # Elasticsearch: the 8.x client creates its own spans through the global provider.
    telemetry = Telemetry(service, provider.shutdown)  # shutdown flushes the batch processor
    atexit.register(telemetry.shutdown)
    where = " and ".join(trace_exporters.describe(n, settings, os.environ) for n in exporters)
    log.info(
        "tracing to %s (sample ratio %g)",
        where,
        settings.sample_ratio,
        extra={"tracing.exporters": ",".join(exporters)},
    )
    return telemetry


def instrument_app(app: FastAPI) -> FastAPI:
    """HTTP metrics on every FastAPI app, plus server spans when tracing is on."""
    instrument_http_metrics(app)
    if tracing_enabled():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls=NOT_TRACED_URLS)
    return app


def traced_transport(transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
    """`transport` with client spans and trace headers when tracing is on. The instrumentation
    `start_tracing` installs covers httpx's own transport only; any other is wrapped here."""
    if not tracing_enabled():
        return transport
    from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport

    return AsyncOpenTelemetryTransport(transport)


def instrument_engine(engine: Engine) -> Engine:
    """A span per SQL statement on `engine`, when tracing is on."""
    if tracing_enabled():
        # The instrumentor's `instrument(engine=…)` works once per process; its engine tracer
        # is what it attaches, and can be attached to every engine a service makes.
        from opentelemetry import metrics
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

        name = "opentelemetry.instrumentation.sqlalchemy"
        connections = metrics.get_meter(name).create_up_down_counter(
            "db.client.connections.usage", unit="connections"
        )
        EngineTracer(trace.get_tracer(name), engine, connections)  # type: ignore[no-untyped-call]
    return engine
