"""The gateway's own metrics (HTTP metrics come from the shared instrumentation)."""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "tweetpipe_gateway_requests_total",
    "Requests answered per route, by status code (fallbacks and 429s included)",
    ["route", "status"],
)
RATE_LIMITED = Counter(
    "tweetpipe_gateway_rate_limited_total", "Requests refused with 429, per route", ["route"]
)
BREAKER_STATE = Gauge(
    "tweetpipe_gateway_breaker_state",
    "Circuit breaker state per route: 0 closed, 1 half-open, 2 open",
    ["route"],
)
UPSTREAM_SECONDS = Histogram(
    "tweetpipe_gateway_upstream_seconds",
    "Time until the upstream's response headers arrived, per route",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
FALLBACKS = Counter(
    "tweetpipe_gateway_fallbacks_total",
    "Fallback answers per route and cause (breaker open, upstream down, timeout, no instance)",
    ["route", "cause"],
)
