"""An in-test Zipkin collector: accepts `POST /api/v2/spans` (Zipkin v2 JSON) and keeps the spans.

No Zipkin server can run here; this speaks the one endpoint the services' exporter uses, and
rejects what a real collector would reject (not a JSON list of spans with ids and names).
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.span_receiver import SpanReceiver

Span = dict[str, Any]
REQUIRED = ("traceId", "id", "name", "localEndpoint")


class ZipkinReceiver(SpanReceiver[Span]):
    def __init__(self, port: int) -> None:
        self.rejected: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/api/v2/spans":
                    self._answer(404)
                    return
                try:
                    spans = json.loads(body)
                    assert isinstance(spans, list)
                    for span in spans:
                        missing = [k for k in REQUIRED if k not in span]
                        assert not missing, f"span without {missing}: {span}"
                except (ValueError, AssertionError) as exc:
                    receiver.rejected.append(str(exc))
                    self._answer(400)
                    return
                receiver.keep(spans)
                self._answer(202)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(port, Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v2/spans"

    def describe(self, span: Span) -> tuple[str, str]:
        return (str(span["localEndpoint"].get("serviceName")), str(span["name"]))
