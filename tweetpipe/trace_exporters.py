"""Which span exporters a service sends to: Zipkin (its setting, as the original system has it)
and OTLP, configured by the OpenTelemetry standard environment variables.

- `OTEL_SDK_DISABLED=true`: no tracing at all.
- `OTEL_TRACES_EXPORTER` (comma-separated `otlp`, `zipkin`, `console`, `none`): exactly those.
  `zipkin` sends to `tracing.zipkin_endpoint`, else to `OTEL_EXPORTER_ZIPKIN_ENDPOINT` (the
  exporter's own default, `http://localhost:9411/api/v2/spans`).
- Unset: Zipkin when `tracing.zipkin_endpoint` is set, and OTLP when
  `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is. (The specification's
  default, `otlp`, would make every service send to localhost:4318 unasked.)
- OTLP is OTLP/HTTP with protobuf, the specification's default protocol; the exporter reads the
  endpoint, headers, timeout, compression and certificate from the `OTEL_EXPORTER_OTLP_*`
  variables itself. Another `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` is refused at start-up.
- `OTEL_RESOURCE_ATTRIBUTES` adds resource attributes; `service.name` stays the application name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, get_args

from tweetpipe.settings import TracingSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

ExporterName = Literal["otlp", "zipkin", "console"]
KNOWN: tuple[str, ...] = (*get_args(ExporterName), "none")
OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")


def chosen(settings: TracingSettings, environ: Mapping[str, str]) -> list[ExporterName]:
    """The exporters to install, in a stable order; raises ValueError on a value not understood."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    listed = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if listed:
        names = [name.strip().lower() for name in listed.split(",") if name.strip()]
        unknown = [name for name in names if name not in KNOWN]
        if unknown:
            raise ValueError(
                f"OTEL_TRACES_EXPORTER: unknown exporter {', '.join(unknown)} "
                f"(this service has {', '.join(KNOWN)})"
            )
        wanted = {name for name in names if name != "none"}
    else:
        wanted = set()
        if settings.zipkin_endpoint:
            wanted.add("zipkin")
        if any(environ.get(name) for name in OTLP_ENDPOINTS):
            wanted.add("otlp")
    if "otlp" in wanted:
        for name in PROTOCOLS:
            protocol = environ.get(name, "").strip()
            if protocol and protocol != "http/protobuf":
                raise ValueError(f"{name}={protocol}: this service sends OTLP as http/protobuf")
            if protocol:
                break
    return [name for name in get_args(ExporterName) if name in wanted]


def build(name: ExporterName, settings: TracingSettings) -> SpanExporter:
    """One exporter; each reads its own `OTEL_EXPORTER_*` variables for what is not given."""
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if name == "zipkin":
        from opentelemetry.exporter.zipkin.json import ZipkinExporter

        return ZipkinExporter(endpoint=settings.zipkin_endpoint, timeout=settings.export_timeout_s)
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return ConsoleSpanExporter()


def describe(name: ExporterName, settings: TracingSettings, environ: Mapping[str, str]) -> str:
    """Where `name` sends spans, for the start-up log line."""
    if name == "otlp":
        traces = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
        return f"OTLP {traces or base.rstrip('/') + '/v1/traces'}"
    if name == "zipkin":
        endpoint = settings.zipkin_endpoint or environ.get(
            "OTEL_EXPORTER_ZIPKIN_ENDPOINT", "http://localhost:9411/api/v2/spans"
        )
        return f"Zipkin {endpoint}"
    return "the console"
