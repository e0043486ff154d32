"""Discovery end to end: query-service instances register with the local Eureka-protocol
registry, the gateway finds them there (no fixed addresses), spreads calls over them, and a
crashed instance drops out when its lease expires without any request failing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.issuer import DevIssuer, bearer
from tests.support.ports import free_port
from tests.support.registry import RegistryProcess
from tests.support.services import ServiceProcess
from tweetpipe.model import Tweet
from tweetpipe.search import open_store
from tweetpipe.settings import SearchSettings
from tweetpipe.waiting import wait_until

LEASE_S = 3
NOW = datetime.now(UTC)
SEARCH = "/elastic-query-service/documents/search"


def searches_answered(port: int) -> float:
    """How many `/documents/search` requests this instance answered with 200."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "http_requests_total"
        and sample.labels.get("handler") == "/documents/search"
        and sample.labels.get("status") == "200"
    )


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryProcess]:
    with RegistryProcess(tmp_path / "registry.log", eviction_interval_s=0.5) as running:
        yield running


@pytest.fixture
def index(tmp_path: Path) -> Path:
    """One small index both instances read."""
    path = tmp_path / "index"
    store = open_store(SearchSettings(tantivy_path=path, tantivy_writer_heap_mb=32), writer=True)
    store.ensure_ready()
    store.bulk_upsert(
        [
            Tweet(id=n, user_id=1 + n % 7, text=f"kafka tweet {n}", created_at=NOW, lang="en")
            for n in range(1, 31)
        ]
    )
    store.refresh()
    store.close()
    return path


def start_query_service(
    name: str, tmp: Path, index: Path, registry: RegistryProcess, issuer: DevIssuer
) -> tuple[ServiceProcess, int]:
    port = free_port()
    process = ServiceProcess(
        "query_service",
        {
            "ADMIN__PORT": str(port),
            "DATA_DIR": str(tmp / name),
            "SEARCH__TANTIVY_PATH": str(index),
            "AUTH__ISSUER_URL": issuer.realm_url,
            "ENRICHMENT__SOURCE": "none",
            "EUREKA__SERVER_URL": registry.url,
            "EUREKA__RENEWAL_INTERVAL_S": "1",
            "EUREKA__LEASE_DURATION_S": str(LEASE_S),
        },
        tmp / f"{name}.log",
    ).start()
    process.wait_healthy(port)
    return process, port


def test_the_gateway_finds_instances_in_the_registry_and_outlives_a_crashed_one(
    tmp_path: Path, registry: RegistryProcess, index: Path, dev_issuer: DevIssuer
) -> None:
    first, first_port = start_query_service("first", tmp_path, index, registry, dev_issuer)
    second, second_port = start_query_service("second", tmp_path, index, registry, dev_issuer)
    gateway_port = free_port()
    routes = [{"id": "elastic-query-service", "service_id": "ELASTIC-QUERY-SERVICE"}]
    gateway = ServiceProcess(
        "gateway",
        {
            "ADMIN__PORT": str(gateway_port),
            "ROUTES": json.dumps(routes),  # no fixed addresses: only the registry knows them
            "AUTH__ISSUER_URL": dev_issuer.realm_url,
            "RATE_LIMIT__ENABLED": "false",
            "EUREKA__SERVER_URL": registry.url,
            "EUREKA__CACHE_S": "0.5",
            "DATA_DIR": str(tmp_path / "gateway"),
        },
        tmp_path / "gateway.log",
    ).start()
    try:
        gateway.wait_healthy(gateway_port)

        def instances() -> set[int]:
            app: dict[str, Any] | None = registry.app("ELASTIC-QUERY-SERVICE")
            return {int(i["port"]["$"]) for i in app["instance"]} if app else set()

        wait_until(lambda: instances() == {first_port, second_port})
        # The gateway registers itself too.
        wait_until(lambda: registry.app("GATEWAY-SERVICE") is not None)

        auth = bearer(dev_issuer.password_token("app_super_user"))

        def search() -> httpx.Response:
            return httpx.get(
                f"http://127.0.0.1:{gateway_port}{SEARCH}",
                params={"q": "kafka", "size": 5},
                headers=auth,
                timeout=10,
            )

        before = {port: searches_answered(port) for port in (first_port, second_port)}
        replies = [search() for _ in range(20)]
        assert [r.status_code for r in replies] == [200] * 20
        assert {r.json()["total"] for r in replies} == {30}
        spread = {port: searches_answered(port) - before[port] for port in before}
        assert spread == {first_port: 10, second_port: 10}  # round-robin over both

        # A crash: no cancel reaches the registry, so the lease runs out on its own.
        second.kill()
        crashed_at = time.monotonic()
        statuses = []
        while second_port in instances():
            statuses.append(search().status_code)
            assert time.monotonic() - crashed_at < 10 * LEASE_S, "the lease never expired"
        statuses += [search().status_code for _ in range(10)]
        assert set(statuses) == {200}, statuses  # the gateway retried on the live instance
        assert instances() == {first_port}
    finally:
        gateway.kill()
        first.kill()
        second.kill()
