"""The gateway against real upstream servers, a real Redis and real gateway processes."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.services import ServiceProcess, metric_value

ROUTE = "echo-service"


class Upstream:
    def __init__(self, name: str, tmp: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = ServiceProcess(
            "tests.support.upstream",
            {"UPSTREAM_PORT": str(self.port), "UPSTREAM_NAME": name},
            tmp / f"{name}.log",
        )

    def start(self) -> Upstream:
        self.process.start().wait_healthy(self.port)
        return self


@pytest.fixture
def upstreams(tmp_path: Path) -> Iterator[list[Upstream]]:
    started = [Upstream(name, tmp_path).start() for name in ("one", "two")]
    yield started
    for upstream in started:
        upstream.process.kill()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def fresh_redis(redis_server: RedisServer) -> RedisServer:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server


class Gateway:
    def __init__(self, process: ServiceProcess, port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30, **kwargs)  # type: ignore[arg-type]


GatewayFactory = Callable[..., Gateway]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayFactory]:
    started: list[ServiceProcess] = []

    def start(urls: list[str], timeout_s: float = 3.0, **env: str) -> Gateway:
        port = free_port()
        routes = [{"id": ROUTE, "service_id": "ECHO-SERVICE", "urls": urls, "timeout_s": timeout_s}]
        process = ServiceProcess(
            "gateway",
            {
                "ADMIN__PORT": str(port),
                "ROUTES": json.dumps(routes),
                "DATA_DIR": str(tmp_path),
                "CONFIG_REPO_DIR": str(tmp_path / "no-config-repo"),
                **env,
            },
            tmp_path / f"gateway-{port}.log",
        ).start()
        started.append(process)
        process.wait_healthy(port)
        return Gateway(process, port)

    yield start
    for process in started:
        process.kill()


def test_forwards_path_query_body_and_end_to_end_headers(
    upstreams: list[Upstream], gateway: GatewayFactory
) -> None:
    gw = gateway([upstreams[0].url])
    body = os.urandom(3 * 1024 * 1024)
    reply = httpx.post(
        f"{gw.url}/{ROUTE}/echo/a/b?x=1&y=two",
        content=body,
        headers={
            "Authorization": "Bearer not-checked-here",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "Connection": "x-private-hop",
            "X-Private-Hop": "secret",
            "X-Request-Id": "req-42",
        },
        timeout=30,
    )
    assert reply.status_code == 200
    echoed = reply.json()
    seen = {k: v for k, v in echoed["headers"]}
    assert echoed["path"] == "/echo/a/b"
    assert echoed["query"] == "x=1&y=two"
    assert echoed["body_size"] == len(body)
    assert echoed["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert seen["authorization"] == "Bearer not-checked-here"
    assert seen["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert seen["x-request-id"] == "req-42"
    assert seen["x-forwarded-prefix"] == f"/{ROUTE}"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert "x-private-hop" not in seen
    assert reply.headers["x-request-id"] == "req-42"
    assert reply.headers["x-upstream"] == "one"
    assert "keep-alive" not in reply.headers  # hop-by-hop from upstream stripped too
    assert reply.headers["x-ratelimit-burst-capacity"] == "10"


def test_unknown_route_is_a_json_404(upstreams: list[Upstream], gateway: GatewayFactory) -> None:
    gw = gateway([upstreams[0].url])
    reply = gw.get("/nowhere/echo/x")
    assert reply.status_code == 404
    assert reply.json()["detail"] == "no route for /nowhere/echo/x"
    assert reply.headers["x-request-id"]


def test_round_robin_spreads_calls_and_survives_a_dead_instance(
    upstreams: list[Upstream], gateway: GatewayFactory
) -> None:
    gw = gateway([u.url for u in upstreams], RATE_LIMIT__ENABLED="false")
    spread = Counter(gw.get(f"/{ROUTE}/echo/x").json()["instance"] for _ in range(20))
    assert spread == {"one": 10, "two": 10}

    upstreams[1].process.kill()
    replies = [gw.get(f"/{ROUTE}/echo/x") for _ in range(20)]
    assert [r.status_code for r in replies] == [200] * 20
    assert {r.json()["instance"] for r in replies} == {"one"}


def test_large_responses_stream_without_waiting_for_the_whole_body(
    upstreams: list[Upstream], gateway: GatewayFactory
) -> None:
    gw = gateway([upstreams[0].url])
    with httpx.stream("GET", f"{gw.url}/{ROUTE}/stream?chunks=8&chunk_kb=512", timeout=30) as reply:
        assert reply.status_code == 200
        chunks = reply.iter_raw()
        first = next(chunks)
        # The upstream holds the rest until released: the first bytes came through alone.
        assert set(first) == {ord("a")}
        httpx.post(f"{upstreams[0].url}/release", timeout=5)
        total = len(first) + sum(len(c) for c in chunks)
    assert total == 8 * 512 * 1024


def test_rate_limit_burst_and_replenish_are_shared_by_two_gateways(
    upstreams: list[Upstream], gateway: GatewayFactory, fresh_redis: RedisServer
) -> None:
    # 10 requests of 5 tokens in the bucket, one request's worth back every 5 s: the burst has
    # 5 s to be spent before a token-drip could let an extra request through (a loaded machine)
    env = {
        "RATE_LIMIT__REDIS_URL": fresh_redis.url,
        "RATE_LIMIT__BURST": "50",
        "RATE_LIMIT__REPLENISH_PER_S": "1",
        "RATE_LIMIT__REQUESTED_TOKENS": "5",
    }
    first, second = gateway([upstreams[0].url], **env), gateway([upstreams[0].url], **env)
    statuses = [(first if i % 2 else second).get(f"/{ROUTE}/echo/x").status_code for i in range(10)]
    assert statuses == [200] * 10  # the burst, drawn from one shared bucket

    refused = first.get(f"/{ROUTE}/echo/x")
    assert refused.status_code == 429
    assert refused.json()["route"] == ROUTE
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.headers["X-RateLimit-Requested-Tokens"] == "5"
    assert second.get(f"/{ROUTE}/echo/x").status_code == 429

    time.sleep(5.1)  # one request's tokens back: one more request, then refused again
    assert second.get(f"/{ROUTE}/echo/x").status_code == 200
    assert first.get(f"/{ROUTE}/echo/x").status_code == 429
    refused_total = metric_value(first.port, "tweetpipe_gateway_rate_limited_total") + (
        metric_value(second.port, "tweetpipe_gateway_rate_limited_total")
    )
    assert refused_total == 3


def test_breaker_opens_serves_the_fallback_then_recovers(
    upstreams: list[Upstream], gateway: GatewayFactory
) -> None:
    gw = gateway(
        [upstreams[0].url],
        RATE_LIMIT__ENABLED="false",
        BREAKER__OPEN_S="2",
        BREAKER__HALF_OPEN_CALLS="2",
    )
    state = lambda: metric_value(gw.port, "tweetpipe_gateway_breaker_state")  # noqa: E731
    assert [gw.get(f"/{ROUTE}/flaky").status_code for _ in range(6)] == [200] * 6
    httpx.post(f"{upstreams[0].url}/failing/true", timeout=5)

    # Window of 10: 6 good + 4 bad = 40 % stays closed; the 5th failure makes 50 % and trips.
    codes = [gw.get(f"/{ROUTE}/flaky").status_code for _ in range(5)]
    assert codes == [500] * 5  # the service's own error is passed on while closed
    assert state() == 2

    fallback = gw.get(f"/{ROUTE}/flaky")
    assert fallback.status_code == 503
    assert fallback.json() == {
        "detail": f"{ROUTE} is unavailable right now; please retry later",
        "route": ROUTE,
        "cause": "breaker_open",
    }

    httpx.post(f"{upstreams[0].url}/failing/false", timeout=5)
    time.sleep(2.2)
    assert gw.get(f"/{ROUTE}/flaky").status_code == 200  # trial call
    assert state() == 1
    assert gw.get(f"/{ROUTE}/flaky").status_code == 200
    assert state() == 0


def test_slow_upstream_times_out_into_the_fallback(
    upstreams: list[Upstream], gateway: GatewayFactory
) -> None:
    gw = gateway([upstreams[0].url], timeout_s=0.5)
    reply = gw.get(f"/{ROUTE}/slow?seconds=3")
    assert reply.status_code == 503
    assert reply.json()["cause"] == "timeout"
    assert metric_value(gw.port, "tweetpipe_gateway_fallbacks_total") == 1


def test_no_live_instance_is_a_fallback_not_an_error(
    tmp_path: Path, gateway: GatewayFactory
) -> None:
    gw = gateway([f"http://127.0.0.1:{free_port()}"])
    reply = gw.get(f"/{ROUTE}/echo/x")
    assert reply.status_code == 503
    assert reply.json()["cause"] == "upstream_down"
