"""W3C trace context carried in Kafka record headers, so one trace spans every stage."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject

KafkaHeaders = list[tuple[str, bytes]]


def headers_with_trace_context() -> KafkaHeaders:
    """Headers carrying the current span's context (empty when tracing is off)."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return [(key, value.encode()) for key, value in carrier.items()]


def context_from_headers(headers: Iterable[tuple[str, bytes | None]]) -> otel_context.Context:
    carrier = {key: value.decode(errors="replace") for key, value in headers if value is not None}
    return extract(carrier)


def tracing_enabled() -> bool:
    """True once an SDK tracer provider is installed; hot loops skip span work otherwise."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
