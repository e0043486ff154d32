"""Forwarding one request: rate limit, breaker, instance choice, then a streamed answer.

Bodies stream both ways (the request body is never read whole; the response body is passed
on chunk by chunk as it arrives). `Authorization` and trace headers pass through; hop-by-hop
headers do not. The services' admin endpoints (`/metrics`, `/health`) are not routed: they are
a 404, like a path no route serves, unless `upstream_admin.routed` is set. Every answer
carries an `X-Request-Id` (the caller's or a new one), which is also sent upstream so logs on
both sides can be joined.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from gateway.breaker import BreakerOpen, RouteBreaker, UpstreamFailed
from gateway.metrics import FALLBACKS, RATE_LIMITED, REQUESTS, UPSTREAM_SECONDS
from gateway.ratelimit import RateLimiter
from gateway.routing import AdminPaths, Route, match

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
RETRYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Sent to the next instance when one refuses the connection (they carry no body)."""
BUFFER_LIMIT = 64 * 1024
"""Answers up to this size (by Content-Length) are read whole; larger ones stream."""
REQUEST_ID = "x-request-id"

Identify = Callable[[Request], Awaitable[str]]
log = logging.getLogger(__name__)


def _small(response: httpx.Response) -> bool:
    """A body of known length under `BUFFER_LIMIT`; anything else streams through."""
    length = response.headers.get("content-length", "")
    return length.isdigit() and int(length) <= BUFFER_LIMIT


def _end_to_end(headers: httpx.Headers | list[tuple[str, str]]) -> list[tuple[str, str]]:
    items = headers.multi_items() if isinstance(headers, httpx.Headers) else headers
    named = {
        token.strip().lower()
        for name, value in items
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return [(k, v) for k, v in items if k.lower() not in HOP_BY_HOP and k.lower() not in named]


class Proxy:
    def __init__(
        self,
        *,
        routes: list[Route],
        client: httpx.AsyncClient,
        limiter: RateLimiter,
        breakers: dict[str, RouteBreaker],
        identify: Identify,
        admin_paths: AdminPaths,
    ) -> None:
        """`admin_paths`: the upstreams' internal endpoints, answered 404 like unknown routes."""
        self._admin_paths = admin_paths
        self._routes = routes
        self._client = client
        self._limiter = limiter
        self._breakers = breakers
        self._identify = identify

    async def handle(self, request: Request) -> Response:
        request_id = request.headers.get(REQUEST_ID) or uuid.uuid4().hex
        found = match(self._routes, request.url.path)
        if found is None or self._admin_paths.hidden(found[1]):
            return JSONResponse(
                {"detail": f"no route for {request.url.path}"},
                404,
                headers={REQUEST_ID: request_id},
            )
        route, path = found
        response = await self._route(request, route, path, request_id)
        response.headers[REQUEST_ID] = request_id
        for name, value in self._limiter.headers.items():
            response.headers.setdefault(name, value)
        REQUESTS.labels(route.id, str(response.status_code)).inc()
        return response

    async def _route(self, request: Request, route: Route, path: str, request_id: str) -> Response:
        verdict = await self._limiter.check(route.id, await self._identify(request))
        if not verdict.allowed:
            RATE_LIMITED.labels(route.id).inc()
            return JSONResponse(
                {
                    "detail": "too many requests; retry later",
                    "route": route.id,
                    "retry_after_s": verdict.retry_after_s,
                },
                429,
                headers={"Retry-After": str(verdict.retry_after_s)},
            )
        failed: httpx.Response | None = None
        try:
            with self._breakers[route.id].guard():
                upstream = await self._send(request, route, path, request_id)
                if upstream.status_code >= 500:
                    failed = upstream
                    raise UpstreamFailed(f"{route.id} answered {upstream.status_code}")
        except BreakerOpen:
            return self._fallback(route, "breaker_open")
        except UpstreamFailed as exc:
            if failed is None:  # no answer at all
                return self._fallback(route, str(exc.args[0]) if exc.args else "upstream_error")
            upstream = failed  # pass the service's own 5xx body on; the breaker has counted it
        headers = dict(_end_to_end(upstream.headers))
        if _small(upstream):
            # Most answers are a few KiB: one read and one send cost less than streaming them.
            try:
                body = b"".join([chunk async for chunk in upstream.aiter_raw()])  # as sent
            finally:
                await upstream.aclose()
            return Response(body, status_code=upstream.status_code, headers=headers)
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=headers,
            background=BackgroundTask(upstream.aclose),
        )

    async def _send(
        self, request: Request, route: Route, path: str, request_id: str
    ) -> httpx.Response:
        """The first instance that accepts the connection answers; raises `UpstreamFailed`."""
        instances = await route.instances()
        if not instances:
            raise UpstreamFailed("no_instance")
        if request.method not in RETRYABLE_METHODS:
            instances = instances[:1]
        headers = self._upstream_headers(request, route, request_id)
        timeout = httpx.Timeout(route.settings.timeout_s)
        for base in instances:
            upstream_request = self._client.build_request(
                request.method,
                base + path,
                params=request.url.query.encode(),
                headers=headers,
                content=request.stream() if request.method not in RETRYABLE_METHODS else None,
                timeout=timeout,
            )
            started = time.perf_counter()
            try:
                response = await self._client.send(upstream_request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # No connection, so nothing was sent: the next instance may answer. (The aiohttp
                # transport reports a refused connection as ConnectTimeout.)
                route.bench(base)
                log.warning("%s: %s could not be reached: %s", route.id, base, exc)
                continue
            except httpx.TimeoutException as exc:
                log.warning("%s: %s timed out: %r", route.id, base, exc)
                raise UpstreamFailed("timeout") from exc
            except httpx.HTTPError as exc:
                log.warning("%s: %s failed: %r", route.id, base, exc)
                raise UpstreamFailed("upstream_error") from exc
            route.restore(base)
            UPSTREAM_SECONDS.labels(route.id).observe(time.perf_counter() - started)
            return response
        raise UpstreamFailed("upstream_down")

    @staticmethod
    def _upstream_headers(request: Request, route: Route, request_id: str) -> list[tuple[str, str]]:
        headers = _end_to_end(request.headers.items())
        client = request.client.host if request.client else ""
        forwarded_for = request.headers.get("x-forwarded-for")
        headers = [
            (k, v)
            for k, v in headers
            if k.lower() not in {REQUEST_ID, "x-forwarded-for", "x-forwarded-prefix"}
        ]
        headers += [
            (REQUEST_ID, request_id),
            ("x-forwarded-for", f"{forwarded_for}, {client}" if forwarded_for else client),
            ("x-forwarded-proto", request.url.scheme),
            ("x-forwarded-host", request.headers.get("host", "")),
            ("x-forwarded-prefix", f"/{route.id}"),
        ]
        return headers

    @staticmethod
    def _fallback(route: Route, cause: str) -> JSONResponse:
        FALLBACKS.labels(route.id, cause).inc()
        return JSONResponse(
            {
                "detail": f"{route.id} is unavailable right now; please retry later",
                "route": route.id,
                "cause": cause,
            },
            503,
            headers={"Retry-After": "5"},
        )
