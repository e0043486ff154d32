"""W3C trace context carried in Kafka record headers, so one trace spans every stage."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from kafka.consumer.fetcher import ConsumerRecord
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject
from opentelemetry.util.types import AttributeValue

KafkaHeaders = list[tuple[str, bytes]]
SpanAttributes = dict[str, AttributeValue]


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


@contextmanager
def traced_batch(
    name: str, records: Callable[[], Iterable[tuple[ConsumerRecord, SpanAttributes]]]
) -> Iterator[None]:
    """Spans for one consumed batch, so each record's trace continues into this stage.

    Each record that carries a `traceparent` header gets a consumer span in that trace (the
    producer's span is its parent) lasting as long as the batch's work. The batch span around
    that work (store calls, dead letters, commit) continues the first such record's trace.
    `records` is called only when tracing is on.
    """
    if not tracing_enabled():
        yield
        return
    tracer = trace.get_tracer("tweetpipe")
    count = 0
    traced: list[tuple[otel_context.Context, ConsumerRecord, SpanAttributes]] = []
    for record, attributes in records():
        count += 1
        parent = context_from_headers(record.headers or [])
        if trace.get_current_span(parent).get_span_context().is_valid:
            traced.append((parent, record, attributes))
    spans = [
        tracer.start_span(
            name,
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={**_coordinates(record), **attributes},
        )
        for parent, record, attributes in traced
    ]
    try:
        with tracer.start_as_current_span(
            f"{name} batch",
            context=traced[0][0] if traced else None,
            attributes={"messaging.batch.message_count": count},
        ):
            yield
    finally:
        for span in spans:
            span.end()


def _coordinates(record: ConsumerRecord) -> SpanAttributes:
    return {
        "messaging.system": "kafka",
        "messaging.destination.name": record.topic,
        "messaging.kafka.destination.partition": record.partition,
        "messaging.kafka.message.offset": record.offset,
    }
