"""JSON logs in Elastic Common Schema, one line per event, tagged with service and trace ids.

Every process logs JSON to stdout (and optionally a file Logstash reads); `tweetpipe up` renders
those lines for people. Context goes in `extra={"dotted.key": value}`, never into the message.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import ecs_logging
from opentelemetry import trace


class _TraceContext(logging.Filter):
    """Stamp each record with the current OpenTelemetry trace and span ids, when there is one."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.__dict__["trace.id"] = format(context.trace_id, "032x")
            record.__dict__["span.id"] = format(context.span_id, "016x")
        return True


def configure_logging(service: str, level: str = "INFO", log_file: Path | None = None) -> None:
    formatter = ecs_logging.StdlibFormatter(
        extra={"service.name": service}, exclude_fields=["log.original", "process.thread"]
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(_TraceContext())
        root.addHandler(handler)
    root.setLevel(level.upper())
    # The Kafka client is chatty at INFO (every connection and rebalance step).
    logging.getLogger("kafka").setLevel(logging.WARNING)
    for noisy in ("uvicorn.access", "uvicorn.error", "elastic_transport.transport", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
