"""A Zipkin-API receiver for the container rehearsal (no Zipkin image can be had here).

Accepts what services export (`POST /api/v2/spans`, a JSON list of Zipkin v2 spans), keeps the
newest spans in memory, and answers the read calls the rehearsal makes: `GET /api/v2/services`
(service names seen, as Zipkin lists them), `GET /api/v2/spans?serviceName=` (span names) and
`GET /health`. Standard library only; port 9411 as Zipkin.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

KEEP = 100_000
spans: deque[dict[str, Any]] = deque(maxlen=KEEP)
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        if urlparse(self.path).path != "/api/v2/spans":
            self.reply(404, {"error": "not found"})
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            received = json.loads(body)
            if not isinstance(received, list):
                raise ValueError("expected a JSON list of spans")
        except ValueError as exc:
            self.reply(400, {"error": str(exc)})
            return
        with lock:
            spans.extend(s for s in received if isinstance(s, dict))
        self.reply(202, None)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        with lock:
            current = list(spans)
        if url.path == "/health":
            self.reply(200, {"status": "UP", "zipkin": {"status": "UP"}})
        elif url.path == "/api/v2/services":
            names = {s.get("localEndpoint", {}).get("serviceName") for s in current}
            self.reply(200, sorted(n for n in names if n))
        elif url.path == "/api/v2/spans":
            service = parse_qs(url.query).get("serviceName", [""])[0]
            names = {
                s.get("name")
                for s in current
                if s.get("localEndpoint", {}).get("serviceName") == service
            }
            self.reply(200, sorted(n for n in names if n))
        else:
            self.reply(404, {"error": "not found"})

    def reply(self, status: int, body: object) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 9411), Handler).serve_forever()
