"""`tweetpipe up`: broker and services as child processes, readiness, clean Ctrl-C."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx

from tests.support.issuer import bearer
from tests.support.local_stack import UpProcess
from tweetpipe.search import open_store
from tweetpipe.settings import SearchSettings


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_up_runs_the_pipeline_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    up = UpProcess(
        tmp_path,
        "--count",
        "400",
        "--rate",
        "0",
        MONITORING="true",
        PROMETHEUS__SCRAPE_INTERVAL_S="1",
    )
    ports, index, output = up.ports, up.index, up.output
    try:
        up.start()
        assert up.process is not None
        stack = up.process
        deadline = time.monotonic() + 180  # a guard, not a measurement: CI machines are shared
        health = httpx.get(f"http://127.0.0.1:{ports['KAFKA_TO_ELASTIC']}/health").json()
        assert health["status"] == "UP"
        assert set(health["components"]) == {"kafka", "search"}

        store = open_store(SearchSettings(backend="tantivy", tantivy_path=index))
        while store.count() < 400:
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.2)
        store.close()

        # every API wants a token from the dev issuer `tweetpipe up` runs
        token = up.token()
        auth = bearer(token)

        # the stream stage counts the same tweets
        def kafka_count() -> int:
            url = f"http://127.0.0.1:{ports['KAFKA_STREAMS']}/get-word-count-by-word/kafka"
            reply = httpx.get(url, headers=auth, timeout=5)
            return int(reply.json()["word_count"]) if reply.status_code == 200 else 0

        while kafka_count() < 40:  # about one tweet in four mentions Kafka
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.5)

        # and the analytics service stores the stream stage's window counts
        def analytics_top() -> list[dict[str, object]]:
            url = f"http://127.0.0.1:{ports['ANALYTICS_SERVICE']}/analytics/top"
            reply = httpx.get(url, params={"window": "latest", "n": 5}, headers=auth, timeout=5)
            return list(reply.json().get("words", [])) if reply.status_code == 200 else []

        while not analytics_top():
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.5)

        # the search API, through the gateway, with a token from the dev issuer
        search = httpx.get(
            f"http://127.0.0.1:{ports['GATEWAY']}/elastic-query-service/documents/search",
            params={"q": "kafka", "size": 3},
            headers=auth,
            timeout=10,
        )
        assert search.status_code == 200, search.text
        assert search.json()["total"] > 0
        assert search.json()["hits"][0]["document"]["links"]["self"].startswith(
            "/elastic-query-service/documents/"
        )
        anonymous = httpx.get(
            f"http://127.0.0.1:{ports['GATEWAY']}/elastic-query-service/documents/search"
        )
        assert anonymous.status_code == 401

        # the APIs and the gateway hold leases in the local registry
        apps = httpx.get(
            f"http://127.0.0.1:{ports['REGISTRY']}/eureka/apps",
            headers={"Accept": "application/json"},
        ).json()["applications"]["application"]
        registered = {
            app["name"]: {i["port"]["$"] for i in app["instance"] if i["status"] == "UP"}
            for app in apps
        }
        for app, port_name in {
            "ELASTIC-QUERY-SERVICE": "QUERY_SERVICE",
            "ANALYTICS-SERVICE": "ANALYTICS_SERVICE",
            "KAFKA-STREAMS-SERVICE": "KAFKA_STREAMS",
            "GATEWAY-SERVICE": "GATEWAY",
        }.items():
            assert registered.get(app) == {ports[port_name]}, registered

        # Prometheus scrapes every service, each under its application name
        def targets() -> dict[str, str]:
            url = f"http://127.0.0.1:{ports['PROMETHEUS']}/api/v1/targets"
            active = httpx.get(url, timeout=5).json()["data"]["activeTargets"]
            return {t["labels"]["job"]: t["health"] for t in active}

        jobs = {
            "eureka-server",
            "config-server",
            "dev-issuer",
            "twitter-to-kafka",
            "kafka-to-elastic",
            "kafka-streams-service",
            "analytics-service",
            "elastic-query-service",
            "gateway-service",
        }

        def down() -> set[str]:
            """Jobs not (yet) scraped successfully, or not yet among Prometheus's targets; the
            generator has finished its 400."""
            found = targets()
            assert set(found) <= jobs, found
            up = {job for job, health in found.items() if health == "up"}
            return jobs - up - {"twitter-to-kafka"}

        while down():
            assert time.monotonic() < deadline, targets()
            time.sleep(0.5)
        web_client = f"http://127.0.0.1:{ports['WEB_CLIENT']}/_stcore/health"
        assert httpx.get(web_client, timeout=5).status_code == 200

        stack.send_signal(signal.SIGINT)
        assert stack.wait(timeout=60) == 0, output.read_text()
    finally:
        up.kill()
    log = output.read_text()
    assert "kafka-to-elastic is up" in log
    assert f"Prometheus        http://127.0.0.1:{ports['PROMETHEUS']}" in log
    assert "produced 400 tweets" in log  # the generator's own progress, prefixed
    assert "twitter-to-kafka" in log
    assert "stopped" in log.splitlines()[-1]
    assert not any(listening(port) for port in ports.values())
    assert (tmp_path / "data" / "logs" / "kafka-to-elastic.log").stat().st_size > 0
    assert list((tmp_path / "data" / "streams").rglob("partition-*.sqlite"))
