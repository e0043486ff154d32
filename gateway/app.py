"""gateway-service: the single entry point in front of the query, analytics and streams APIs.

- `routing.py`: `/{route}/**` → an instance found through Eureka, in turn;
- `ratelimit.py`: token buckets per caller (user or address), in Redis or in process;
- `breaker.py`: a circuit breaker per route, with JSON fallbacks naming the route;
- `proxy.py`: the forwarding itself, streaming bodies both ways;
- `callers.py`: the caller's identity, from a verified token.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response
from httpx_aiohttp import AiohttpTransport
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from gateway.breaker import RouteBreaker
from gateway.callers import CallerIdentity
from gateway.proxy import Proxy
from gateway.ratelimit import RateLimiter
from gateway.routing import AdminPaths, Route
from gateway.settings import GatewaySettings
from tweetpipe.admin import HealthCheck, admin_router
from tweetpipe.auth import TokenValidator
from tweetpipe.discovery import Discovery
from tweetpipe.runtime import ServiceRuntime
from tweetpipe.telemetry import instrument_app, traced_transport

SERVICE = "gateway-service"
EUREKA_APP = "GATEWAY-SERVICE"
AUDIENCE = "elastic-query-service"
"""Tokens are read only to key rate limits by user: every token of the realm's clients carries
the query service's audience."""
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
log = logging.getLogger(__name__)


def create_app(
    *,
    settings: GatewaySettings,
    validator: TokenValidator,
    discovery: Discovery | None,
    redis: Redis | None,
    checks: Mapping[str, HealthCheck],
) -> FastAPI:
    """Routes find their instances through `discovery` when given, else their fixed `urls`."""
    lookup = discovery.urls if discovery is not None else None
    routes = [Route(route, lookup) for route in settings.routes]
    limiter = RateLimiter(settings.rate_limit, redis)
    breakers = {route.id: RouteBreaker(route.id, settings.breaker) for route in settings.routes}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # httpx's API over aiohttp's connections: httpx's own async pool costs the gateway about
        # as much CPU per request as the search behind it (encode/httpx#3215; README,
        # "Performance"). Instances are called directly, never through proxies from the env.
        # Idle connections are dropped before the instances' uvicorn drops them (5 s), so a
        # request never races an instance closing the connection it was sent on.
        limits = httpx.Limits(
            max_connections=200, max_keepalive_connections=100, keepalive_expiry=4.0
        )
        transport = traced_transport(AiohttpTransport(limits=limits))
        async with httpx.AsyncClient(
            transport=transport, follow_redirects=False, trust_env=False
        ) as client:
            app.state.proxy = Proxy(
                routes=routes,
                client=client,
                limiter=limiter,
                breakers=breakers,
                identify=CallerIdentity(validator),
                admin_paths=AdminPaths(settings.upstream_admin),
            )
            yield
        if discovery is not None:
            await discovery.aclose()

    app = FastAPI(title=SERVICE, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(admin_router(SERVICE, checks))

    @app.api_route("/{path:path}", methods=METHODS, include_in_schema=False)
    async def forward(request: Request) -> Response:
        proxy: Proxy = request.app.state.proxy
        return await proxy.handle(request)

    return instrument_app(app)


def run(settings: GatewaySettings) -> int:
    """Serve until SIGTERM/SIGINT."""
    with ServiceRuntime(SERVICE, settings, eureka_app=EUREKA_APP) as runtime:
        redis_url = settings.rate_limit.redis_url
        redis = Redis.from_url(redis_url) if redis_url else None
        checks: dict[str, HealthCheck] = {}
        if redis_url:
            sync_redis = SyncRedis.from_url(redis_url, socket_timeout=1)
            checks["redis"] = lambda: bool(sync_redis.ping())
        discovery = Discovery.from_settings(settings.eureka)
        validator = TokenValidator(settings.auth.for_audience(AUDIENCE))
        app = create_app(
            settings=settings, validator=validator, discovery=discovery, redis=redis, checks=checks
        )
        source = f"registry {settings.eureka.server_url}, else " if discovery else ""
        for route in settings.routes:
            log.info(
                "route /%s/** → %s (%sfixed %s)", route.id, route.service_id, source, route.urls
            )
        runtime.serve(app)
    return runtime.exit_code
