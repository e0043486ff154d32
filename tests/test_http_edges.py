"""Edges of the public HTTP surface, against the real services and a real gateway in front.

- a single-valued header sent twice (`Authorization`) is a 400 with a JSON body, on every API
  and on the gateway, whatever the first one says;
- the gateway does not route to the services' admin endpoints (`/metrics`, `/health`) unless
  a setting says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.issuer import DevIssuer
from tests.support.ports import free_port
from tests.support.services import ServiceProcess, metric_value
from tests.test_streams import Instance
from tweetpipe.search import open_store
from tweetpipe.settings import KafkaSettings, SearchSettings
from tweetpipe.waiting import wait_until


@dataclass
class Stack:
    """The three APIs, each as a process, and how to start gateways in front of them."""

    urls: dict[str, str]
    """Route id → base URL of its one instance."""
    token: str
    workdir: Path
    processes: list[ServiceProcess]

    def gateway(self, **env: str) -> str:
        port = free_port()
        routes = [
            {"id": route, "service_id": route.upper(), "urls": [url]}
            for route, url in self.urls.items()
        ]
        process = ServiceProcess(
            "gateway",
            {
                "ADMIN__PORT": str(port),
                "ROUTES": json.dumps(routes),
                "DATA_DIR": str(self.workdir),
                "CONFIG_REPO_DIR": str(self.workdir / "no-config-repo"),
                "RATE_LIMIT__ENABLED": "false",
                **env,
            },
            self.workdir / f"gateway-{port}.log",
        ).start()
        self.processes.append(process)
        process.wait_healthy(port)
        return f"http://127.0.0.1:{port}"


PATHS = {
    "elastic-query-service": "/documents/search?q=kafka",
    "analytics-service": "/analytics/top?window=latest",
    "kafka-streams-service": "/get-word-count-by-word/kafka",
}


@pytest.fixture
def stack(kafka_settings: KafkaSettings, tmp_path: Path, dev_issuer: DevIssuer) -> Iterator[Stack]:
    search = SearchSettings(backend="tantivy", tantivy_path=tmp_path / "index")
    store = open_store(search, writer=True)
    store.ensure_ready()
    store.close()
    common = {"AUTH__ISSUER_URL": dev_issuer.realm_url, "DATA_DIR": str(tmp_path / "data")}
    query_port, analytics_port = free_port(), free_port()
    processes = [
        ServiceProcess(
            "query_service",
            {
                **common,
                "ADMIN__PORT": str(query_port),
                "SEARCH__TANTIVY_PATH": str(search.tantivy_path),
                "DATABASE_URL": f"sqlite:///{tmp_path / 'permissions.db'}",
                "ENRICHMENT__SOURCE": "analytics",
                "ENRICHMENT__ANALYTICS_URL": f"http://127.0.0.1:{analytics_port}",
            },
            tmp_path / "query.log",
        ),
        ServiceProcess(
            "analytics_service",
            {
                **common,
                "ADMIN__PORT": str(analytics_port),
                "KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
                "DATABASE_URL": f"sqlite:///{tmp_path / 'analytics.db'}",
            },
            tmp_path / "analytics.log",
        ),
    ]
    for process in processes:
        process.start()
    processes[0].wait_healthy(query_port)
    processes[1].wait_healthy(analytics_port)
    streams = Instance(kafka_settings, tmp_path / "streams", "a", dev_issuer).start()
    assert streams.process is not None
    processes.append(streams.process)
    # the word count answers once it owns its partitions (a group join on the local broker)
    wait_until(
        lambda: streams.count("kafka") is not None,
        60,
        "the word count to answer",
        ignore=(httpx.HTTPError,),
    )
    running = Stack(
        urls={
            "elastic-query-service": f"http://127.0.0.1:{query_port}",
            "analytics-service": f"http://127.0.0.1:{analytics_port}",
            "kafka-streams-service": streams.url,
        },
        token=dev_issuer.password_token("app_super_user"),
        workdir=tmp_path,
        processes=processes,
    )
    yield running
    for process in running.processes:
        process.kill()


def _twice(first: str, second: str) -> list[tuple[str, str]]:
    return [("Authorization", first), ("Authorization", second)]


def test_two_authorization_headers_are_a_400_on_every_service_and_the_gateway(
    stack: Stack,
) -> None:
    good = f"Bearer {stack.token}"
    gateway = stack.gateway()
    targets = [stack.urls[route] + path for route, path in PATHS.items()]
    targets += [f"{gateway}/{route}{path}" for route, path in PATHS.items()]
    for url in targets:
        assert httpx.get(url, headers={"Authorization": good}, timeout=10).status_code == 200, url
        for headers in (_twice(good, good), _twice(good, "Bearer forged"), _twice("x", good)):
            reply = httpx.get(url, headers=headers, timeout=10)
            assert reply.status_code == 400, (url, reply.text)
            assert reply.headers["content-type"] == "application/json"
            assert reply.json() == {"detail": "the Authorization header may be sent only once"}
    # the gateway answered itself: nothing reached the services
    port = int(gateway.rsplit(":", 1)[1])
    refused = '{header="Authorization"}'
    assert metric_value(port, "tweetpipe_http_duplicate_headers_total", refused) == 9
    for url in stack.urls.values():
        service_port = int(url.rsplit(":", 1)[1])
        counted = metric_value(service_port, "tweetpipe_http_duplicate_headers_total", refused)
        assert counted == 3


ADMIN_PATHS = ["/metrics", "/health", "/metrics/", "//metrics", "/x/../metrics", "/%6detrics"]


def test_the_gateway_does_not_route_to_the_services_admin_endpoints(stack: Stack) -> None:
    auth = {"Authorization": f"Bearer {stack.token}"}
    gateway = stack.gateway()
    for route, api_path in PATHS.items():
        for admin in ADMIN_PATHS:
            url = f"{gateway}/{route}{admin}"
            reply = httpx.get(url, headers=auth, timeout=10)
            assert reply.status_code == 404, (url, reply.text)
            assert reply.json()["detail"].startswith("no route for"), url
        # the service itself still serves them; its API stays routed
        assert httpx.get(stack.urls[route] + "/metrics", timeout=10).status_code == 200
        assert (
            httpx.get(f"{gateway}/{route}{api_path}", headers=auth, timeout=10).status_code == 200
        )
    # the gateway's own admin endpoints are its own business
    assert httpx.get(f"{gateway}/health", timeout=10).status_code == 200

    opened = stack.gateway(UPSTREAM_ADMIN__ROUTED="true")
    scraped = httpx.get(f"{opened}/elastic-query-service/metrics", timeout=10)
    assert scraped.status_code == 200
    assert "tweetpipe_" in scraped.text or "http_requests_total" in scraped.text
