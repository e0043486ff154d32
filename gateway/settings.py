"""gateway-service settings: the routes, and how hard each one is protected."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from tweetpipe.settings import AdminSettings, AuthSettings, ServiceSettings


class RouteSettings(BaseModel):
    """`/{id}/**` goes to an instance of `service_id`, with the prefix stripped."""

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    service_id: str
    """The Eureka application name."""
    urls: list[str] = Field(default_factory=list)
    """Fixed instances, used when discovery is off (no `eureka.server_url`) or knows none."""
    timeout_s: float = Field(default=3.0, gt=0)
    """Time allowed for the upstream to connect and answer (first byte); bodies then stream."""


class BreakerSettings(BaseModel):
    """Per-route circuit breaker, by failure rate over the most recent calls."""

    failure_rate_percent: float = Field(default=50.0, gt=0, le=100)
    window_calls: int = Field(default=10, ge=1)
    open_s: float = Field(default=60.0, gt=0)
    """How long the breaker stays open before letting trial calls through."""
    half_open_calls: int = Field(default=3, ge=1)
    """Successful trial calls needed to close it again."""


class RateLimitSettings(BaseModel):
    """Token bucket per caller and route: `burst` at once, refilled at `replenish_per_s`."""

    enabled: bool = True
    replenish_per_s: int = Field(default=5, ge=1)
    burst: int = Field(default=10, ge=1)
    requested_tokens: int = Field(default=1, ge=1)
    """Tokens one request costs (Spring Cloud Gateway's `requestedTokens`): with
    `replenish_per_s=1`, `burst=60`, `requested_tokens=60` a caller gets one request a minute."""
    redis_url: str | None = None
    """Shared buckets for several gateway instances; unset keeps them in this process."""


DEFAULT_ROUTES = [
    RouteSettings(
        id="elastic-query-service",
        service_id="ELASTIC-QUERY-SERVICE",
        urls=["http://127.0.0.1:8183"],
    ),
    RouteSettings(
        id="analytics-service", service_id="ANALYTICS-SERVICE", urls=["http://127.0.0.1:8084"]
    ),
    RouteSettings(
        id="kafka-streams-service",
        service_id="KAFKA-STREAMS-SERVICE",
        urls=["http://127.0.0.1:8083"],
    ),
]


class AdminPathSettings(BaseModel):
    """The services' internal admin endpoints, which the public entry point does not route."""

    paths: list[str] = Field(default_factory=lambda: ["/metrics", "/health", "/actuator"])
    """Upstream paths (after the route prefix) answered 404, with everything under them."""
    routed: bool = False
    """Route them anyway (e.g. a trusted network that scrapes through the gateway)."""


class GatewaySettings(ServiceSettings):
    application: ClassVar[str] = "gateway-service"

    routes: list[RouteSettings] = DEFAULT_ROUTES
    breaker: BreakerSettings = BreakerSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    upstream_admin: AdminPathSettings = AdminPathSettings()
    auth: AuthSettings = AuthSettings()
    """Tokens are checked only to key rate limits by user; the services authorise."""
    admin: AdminSettings = AdminSettings(port=8080)
    """The one HTTP server of this service: the routes plus `/health` and `/metrics`."""
