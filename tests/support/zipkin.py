"""An in-test Zipkin collector: accepts `POST /api/v2/spans` (Zipkin v2 JSON) and keeps the spans.

No Zipkin server can run here; this speaks the one endpoint the services' exporter uses, and
rejects what a real collector would reject (not a JSON list of spans with ids and names).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Span = dict[str, Any]
REQUIRED = ("traceId", "id", "name", "localEndpoint")


class ZipkinReceiver:
    def __init__(self, port: int) -> None:
        self.port = port
        self.spans: list[Span] = []
        self.rejected: list[str] = []
        self._lock = threading.Lock()
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
                with receiver._lock:
                    receiver.spans.extend(spans)
                self._answer(202)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v2/spans"

    def snapshot(self) -> list[Span]:
        with self._lock:
            return list(self.spans)

    def wait_for(
        self, condition: Callable[[list[Span]], bool], timeout_s: float = 60.0
    ) -> list[Span]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            spans = self.snapshot()
            if condition(spans):
                return spans
            time.sleep(0.2)
        names = sorted({(s["localEndpoint"].get("serviceName"), s["name"]) for s in self.spans})
        raise AssertionError(f"spans never matched; received {len(self.spans)}: {names}")

    def __enter__(self) -> ZipkinReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
