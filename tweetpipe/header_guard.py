"""Requests carrying a single-valued header twice are refused before any app code sees them.

Two `Authorization` headers are ambiguous: a server reading the first and a proxy or library
reading the last would act for different callers. HTTP gives these headers no list syntax
(RFC 9110 §11.6.2, §7.2), so the only safe answer is 400. Every tweetpipe HTTP server is built by
`tweetpipe.serving.make_server`, which wraps the app in this guard: the APIs, the gateway, the
config server, the admin ports and the single-machine stand-ins all answer the same way.
"""

from __future__ import annotations

import orjson
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

SINGLE_VALUED = (b"authorization", b"proxy-authorization", b"host")
"""Lower-case names, as ASGI servers hand them over."""

REFUSED = Counter(
    "tweetpipe_http_duplicate_headers_total",
    "Requests refused with 400 for repeating a single-valued header, by header",
    ["header"],
)


def _repeated(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    seen: set[bytes] = set()
    for name, _ in headers:
        if name in SINGLE_VALUED:
            if name in seen:
                return name
            seen.add(name)
    return None


class SingleValuedHeaders:
    """ASGI middleware: 400 with a JSON body when a header of `SINGLE_VALUED` is repeated."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (name := _repeated(scope["headers"])) is not None:
            header = name.decode().title()
            REFUSED.labels(header).inc()
            body = orjson.dumps({"detail": f"the {header} header may be sent only once"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
