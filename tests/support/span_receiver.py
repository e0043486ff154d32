"""What the in-test trace collectors (Zipkin, OTLP) share: a loopback HTTP server in a thread,
the spans it kept, and waiting until they match."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Generic, Self, TypeVar

from tweetpipe.lifecycle import StartStop
from tweetpipe.waiting import wait_until

S = TypeVar("S")


class SpanReceiver(StartStop, Generic[S]):
    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self.port = port
        self.spans: list[S] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def keep(self, spans: list[S]) -> None:
        with self._lock:
            self.spans.extend(spans)

    def snapshot(self) -> list[S]:
        with self._lock:
            return list(self.spans)

    def describe(self, span: S) -> tuple[str, str]:
        """(service, span name), for the message when spans never match."""
        raise NotImplementedError

    def wait_for(self, condition: Callable[[list[S]], bool], timeout_s: float = 60.0) -> list[S]:
        try:
            wait_until(lambda: condition(self.snapshot()), timeout_s, "spans", interval_s=0.2)
        except TimeoutError:
            names = sorted({self.describe(s) for s in self.snapshot()})
            raise AssertionError(
                f"spans never matched; received {len(self.spans)}: {names}"
            ) from None
        return self.snapshot()

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
