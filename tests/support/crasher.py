"""A service that answers `/health` on `ADMIN__PORT`, then exits with code 3 after
`CRASH_AFTER_S`: what a supervisor must restart, then give up on.

Run as `python -m tests.support.crasher`.
"""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status": "UP"}')

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["ADMIN__PORT"])), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Event().wait(float(os.environ.get("CRASH_AFTER_S", "0.3")))
    os._exit(3)


if __name__ == "__main__":
    main()
