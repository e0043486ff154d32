"""The cluster profile, run here in real containers: the container rehearsal.

podman serves the Docker API, Debian's docker-compose drives it, and the project's compose files
run unchanged but for `infra/docker-compose/rehearsal.yml`, which swaps the images no registry
here serves for local stand-ins (see that file and the README). Every tweetpipe service runs
from the image `infra/docker/Dockerfile` builds, on a base image made from Debian's packages.
Everything is checked from the host through the published ports, as a user would, except the
census of what the generator produced, which is read from the topic inside the compose network
(the stand-in broker advertises its in-network name only).

The engine not starting is a failure with its reason, never a skip.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.issuer import demo_user_token
from tests.support.podman import Engine, EngineUnavailable, HealthTicker
from tests.support.ports import free_port
from tweetpipe.settings import REPO_ROOT

COMPOSE_DIR = REPO_ROOT / "infra" / "docker-compose"
FILES = [
    "common.yml",
    "kafka_cluster.yml",
    "elastic_cluster.yml",
    "keycloak_authorization_server.yml",
    "postgres.yml",
    "redis.yml",
    "monitoring.yml",
    "zipkin.yml",
    "elk.yml",
    "services.yml",
    "rehearsal.yml",
]
NOT_RUN = {"grafana", "kibana", "logstash", "kibana-data-view"}
"""No stand-in: Grafana's dashboards and the log pipeline are checked as files elsewhere."""
PROJECT = "tweetpipe-rehearsal"
BASE_IMAGE = "localhost/tweetpipe-base:rehearsal"
PORTS = [
    "KAFKA_BROKER_1_PORT",
    "KAFKA_BROKER_2_PORT",
    "KAFKA_BROKER_3_PORT",
    "ELASTIC_PORT",
    "KIBANA_PORT",
    "KEYCLOAK_PORT",
    "POSTGRES_PORT",
    "REDIS_PORT",
    "PROMETHEUS_PORT",
    "GRAFANA_PORT",
    "ZIPKIN_PORT",
    "CONFIG_SERVER_PORT",
    "EUREKA_PORT",
    "TWITTER_TO_KAFKA_PORT",
    "KAFKA_TO_ELASTIC_PORT",
    "KAFKA_STREAMS_PORT",
    "ANALYTICS_PORT",
    "QUERY_SERVICE_PORT",
    "GATEWAY_PORT",
    "WEB_CLIENT_PORT",
]
REALM = "microservices-realm"
CONFIG_CLIENTS = {
    "twitter-to-kafka",
    "kafka-to-elastic",
    "kafka-streams-service",
    "analytics-service",
    "elastic-query-service",
    "gateway-service",
    "web-client",
}
REGISTERED = {
    "ELASTIC-QUERY-SERVICE",
    "ANALYTICS-SERVICE",
    "KAFKA-STREAMS-SERVICE",
    "GATEWAY-SERVICE",
}
WORDS = ["kafka", "java"]
T = TypeVar("T")

pytestmark = [pytest.mark.rehearsal, pytest.mark.timeout(2400)]


def eventually(
    what: str, probe: Callable[[], T | None], timeout_s: float, every_s: float = 2.0
) -> T:
    """`probe()`'s first truthy answer; fails with `what` and the last answer or error."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            answer = probe()
            if answer:
                return answer
            last = answer
        except (httpx.HTTPError, ValueError, KeyError, AssertionError) as exc:
            last = exc
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:.0f} s; last: {last!r}")
        time.sleep(every_s)


@dataclass
class Cluster:
    engine: Engine
    ports: dict[str, int]
    log: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        nproc, nofile, memlock = self.engine.limits()
        return {
            **self.engine.env,
            "COMPOSE_PROJECT_NAME": PROJECT,
            "PYTHON_IMAGE": BASE_IMAGE,
            "REHEARSAL_NPROC": str(nproc),
            "REHEARSAL_NOFILE": str(nofile),
            "REHEARSAL_MEMLOCK": str(memlock),
            **{name: str(port) for name, port in self.ports.items()},
        }

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        command = ["docker-compose", *(a for f in FILES for a in ("-f", f)), *args]
        started = time.monotonic()
        with self.log.open("a") as out:
            out.write(f"\n$ {' '.join(args)}\n")
        result = subprocess.run(
            command, cwd=COMPOSE_DIR, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        with self.log.open("a") as out:
            out.write(result.stdout + result.stderr)
            out.write(f"[exit {result.returncode} after {time.monotonic() - started:.0f} s]\n")
        if check and result.returncode != 0:
            pytest.fail(
                f"docker-compose {' '.join(args)}: {result.stderr[-3000:]}{self.failed_logs()}"
            )
        return result.stdout

    def failed_logs(self) -> str:
        """The output of every container of the project that exited non-zero: compose names
        only the container, and `down -v` removes it with its logs."""
        listed = self.engine.podman(
            "ps",
            "-a",
            "--format",
            "json",
            "--filter",
            f"label=com.docker.compose.project={PROJECT}",
        )
        report = ""
        for container in json.loads(listed.stdout or "[]"):
            if container.get("Exited") and container.get("ExitCode", 0) != 0:
                logs = self.engine.podman("logs", container["Id"])
                name = container["Labels"]["com.docker.compose.service"]
                report += f"\n--- {name} exited {container['ExitCode']}:\n"
                report += (logs.stdout + logs.stderr)[-3000:]
        with self.log.open("a") as out:
            out.write(report)
        return report

    def save_logs(self) -> Path:
        """Every container's output, one file per service, before `down` removes them."""
        directory = self.log.parent / "containers"
        directory.mkdir(exist_ok=True)
        for name in self.compose("ps", "--services", check=False).split():
            logs = self.engine.podman("logs", self.container(name))
            (directory / f"{name}.log").write_text(logs.stdout + logs.stderr)
        return directory

    def url(self, port: str, path: str = "", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.ports[port]}{path}"

    def container(self, service: str) -> str:
        return f"{PROJECT}_{service}_1"

    def timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    directory = tmp_path_factory.mktemp("podman")
    try:
        running = Engine(directory).start()
    except EngineUnavailable as exc:
        pytest.fail(f"the container engine cannot start here: {exc}")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def cluster(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    log = tmp_path_factory.mktemp("rehearsal") / "compose.log"
    ports = {name: free_port() for name in PORTS}
    running = Cluster(engine, ports, log)
    running.compose("down", "-v", "--remove-orphans", check=False)  # an earlier run cut short
    try:
        yield running
    finally:
        saved = running.save_logs()
        running.compose("down", "-v", "--remove-orphans", "--timeout", "20", check=False)
        print(f"rehearsal timings (s): {running.timings}; logs: {log}, {saved}")


def services(cluster: Cluster) -> list[str]:
    names = cluster.compose("config", "--services").split()
    return sorted(set(names) - NOT_RUN)


def health_states(cluster: Cluster) -> dict[str, str]:
    """Compose service → health status ('' for none), of the project's running containers."""
    listed = cluster.engine.podman(
        "ps", "-a", "--format", "json", "--filter", f"label=com.docker.compose.project={PROJECT}"
    )
    states: dict[str, str] = {}
    for container in json.loads(listed.stdout or "[]"):
        service = container["Labels"]["com.docker.compose.service"]
        inspect = cluster.engine.podman("inspect", container["Id"], "--format", "json")
        state = json.loads(inspect.stdout)[0]["State"]
        health = (state.get("Health") or state.get("Healthcheck") or {}).get("Status", "")
        states[service] = health if state["Status"] == "running" else f"exited {state['ExitCode']}"
    return states


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def token(cluster: Cluster) -> str:
    """A user's token from the issuer at its browser-facing URL (Keycloak's KC_HOSTNAME)."""
    return demo_user_token(cluster.url("KEYCLOAK_PORT", f"/realms/{REALM}", "localhost"))


def census(cluster: Cluster) -> dict[str, Any]:
    """What twitter-topic holds, counted inside the network by tests/support/topic_census.py."""
    script = (REPO_ROOT / "tests" / "support" / "topic_census.py").read_text()
    result = subprocess.run(
        [
            "podman", "exec", "-i", cluster.container("kafka-to-elastic"),
            "python", "-", ",".join(WORDS), "60",
        ],
        input=script, env=cluster.env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_the_cluster_profile_runs_end_to_end_in_containers(cluster: Cluster) -> None:
    engine = cluster.engine
    started = time.monotonic()
    base = subprocess.run(
        [str(REPO_ROOT / "infra" / "rehearsal" / "base-image.sh"), BASE_IMAGE],
        env=engine.env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert base.returncode == 0, f"base image: {base.stderr[-3000:]}"
    cluster.timed("base image", started)

    # Build exactly as compose builds: the services' image and the stand-ins' image.
    started = time.monotonic()
    cluster.compose("build", "config-server", "kafka-broker-1", timeout=1500)
    cluster.timed("build", started)
    image_user = engine.podman(
        "run", "--rm", "tweetpipe:0.1.0", "stat", "-c", "%u %a", "/data/streams", "/data",
        "/var/log/tweetpipe",
    )  # fmt: skip
    assert image_user.returncode == 0, image_user.stderr
    assert [line.split()[0] for line in image_user.stdout.splitlines()] == ["10001"] * 3

    # Up, every health check passing (compose itself waits on the ones depends_on names).
    wanted = services(cluster)
    started = time.monotonic()
    with HealthTicker(engine, PROJECT):
        cluster.compose("up", "-d", *wanted, timeout=900)

        def all_healthy() -> dict[str, str] | None:
            states = health_states(cluster)
            pending = {
                s: h
                for s, h in states.items()
                if h not in ("healthy", "", "exited 0") or (h == "" and s != "eureka")
            }
            missing = set(wanted) - set(states)
            return None if pending or missing else states

        states = eventually("every container healthy", all_healthy, 600, every_s=3)
        cluster.timed("up until healthy", started)
        assert states["kafka-init-topics"] == "exited 0"
        check_from_the_host(cluster)
        faults_lose_and_duplicate_nothing(cluster)

    started = time.monotonic()
    cluster.compose("down", "-v", "--timeout", "20")
    cluster.timed("down", started)
    left = engine.podman(
        "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"
    ).stdout.split()
    volumes = engine.podman(
        "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"
    ).stdout.split()
    assert (left, volumes) == ([], [])


def check_from_the_host(cluster: Cluster) -> None:
    access = token(cluster)
    assert (
        claims(access)["iss"] == f"http://localhost:{cluster.ports['KEYCLOAK_PORT']}/realms/{REALM}"
    )
    auth = {"Authorization": f"Bearer {access}"}
    gateway = cluster.ports["GATEWAY_PORT"]

    def search() -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{gateway}/elastic-query-service/documents/search"
        reply = httpx.get(url, params={"q": "kafka", "size": 3}, headers=auth, timeout=30)
        body: dict[str, Any] = reply.json()
        return body if reply.status_code == 200 and body["total"] > 0 else None

    found = eventually("tweets found by a search through the gateway", search, 240)
    assert all("kafka" in hit["document"]["text"].lower() for hit in found["hits"]), found

    def word_count() -> int:
        url = f"http://127.0.0.1:{gateway}/kafka-streams-service/get-word-count-by-word/kafka"
        reply = httpx.get(url, headers=auth, timeout=10)
        return int(reply.json()["word_count"]) if reply.status_code == 200 else 0

    eventually("word counts through the gateway", word_count, 240)

    def analytics() -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{gateway}/analytics-service/analytics/top"
        reply = httpx.get(url, params={"n": 5}, headers=auth, timeout=10)
        return list(reply.json().get("words", [])) if reply.status_code == 200 else []

    top = eventually("analytics through the gateway", analytics, 240)
    assert all(w["word_count"] > 0 for w in top), top

    page = httpx.get(cluster.url("WEB_CLIENT_PORT", "/"), timeout=10)
    assert page.status_code == 200
    assert "<title>" in page.text.lower(), page.text[:300]
    assert httpx.get(cluster.url("WEB_CLIENT_PORT", "/_stcore/health"), timeout=10).text == "ok"

    def targets_up() -> dict[str, str] | None:
        reply = httpx.get(cluster.url("PROMETHEUS_PORT", "/api/v1/targets"), timeout=10)
        found = {t["labels"]["job"]: t["health"] for t in reply.json()["data"]["activeTargets"]}
        return found if len(found) >= 8 and set(found.values()) == {"up"} else None

    eventually("every Prometheus target up", targets_up, 120)

    def registered() -> set[str] | None:
        reply = httpx.get(
            cluster.url("EUREKA_PORT", "/eureka/apps"),
            headers={"Accept": "application/json"},
            timeout=10,
        )
        apps = reply.json()["applications"]["application"]
        up = {a["name"] for a in apps if any(i["status"] == "UP" for i in a["instance"])}
        return up if up >= REGISTERED else None

    eventually("every API registered in Eureka", registered, 120)

    served = httpx.get(cluster.url("CONFIG_SERVER_PORT", "/metrics"), timeout=10).text
    readers = set(
        re.findall(
            r'tweetpipe_config_environments_served_total\{application="([^"]+)",profiles="docker"\}',
            served,
        )
    )
    assert readers >= CONFIG_CLIENTS, f"read no docker profile: {CONFIG_CLIENTS - readers}"
    # …and applied it: the sink writes to the Elasticsearch node (search.backend), not tantivy.
    count = httpx.get(cluster.url("ELASTIC_PORT", "/twitter-index/_count"), timeout=30)
    assert count.json()["count"] > 0

    spans = httpx.get(cluster.url("ZIPKIN_PORT", "/api/v2/services"), timeout=10).json()
    assert {"twitter-to-kafka", "kafka-to-elastic"} <= set(spans), spans


def faults_lose_and_duplicate_nothing(cluster: Cluster) -> None:
    """A stage restarted mid-run and another killed: every produced tweet indexed once, word
    counts equal to the produced tweets' words."""
    started = time.monotonic()
    cluster.compose("restart", "--timeout", "20", "kafka-to-elastic")
    time.sleep(10)
    cluster.engine.podman("kill", "--signal", "KILL", cluster.container("kafka-streams-service"))
    time.sleep(5)
    cluster.compose("start", "kafka-streams-service")
    time.sleep(15)
    cluster.compose("stop", "--timeout", "20", "twitter-to-kafka")
    produced = census(cluster)
    assert produced["records"] == produced["distinct"], produced  # nothing produced twice
    auth = {"Authorization": f"Bearer {token(cluster)}"}

    def indexed() -> int | None:
        reply = httpx.get(cluster.url("ELASTIC_PORT", "/twitter-index/_count"), timeout=30)
        count = int(reply.json()["count"])
        return count if count >= produced["distinct"] else None

    assert eventually("every produced tweet indexed", indexed, 600, 5) == produced["distinct"]

    gateway = cluster.ports["GATEWAY_PORT"]
    for word in WORDS:
        expected = produced["totals"][word]

        def counted(word: str = word, expected: int = expected) -> int | None:
            url = f"http://127.0.0.1:{gateway}/kafka-streams-service/get-word-count-by-word/{word}"
            reply = httpx.get(url, headers=auth, timeout=10)
            count = int(reply.json()["word_count"]) if reply.status_code == 200 else -1
            return count if count >= expected else None

        assert eventually(f"all-time count of {word}", counted, 600, 5) == expected

        def series(word: str = word) -> dict[str, int] | None:
            url = f"http://127.0.0.1:{gateway}/analytics-service/analytics/words/{word}/series"
            reply = httpx.get(url, params={"limit": 1000}, headers=auth, timeout=10)
            points = reply.json()["points"] if reply.status_code == 200 else []
            stored = {str(int(_epoch(p["window_start"]))): int(p["word_count"]) for p in points}
            return stored if stored == produced["windows"][word] else None

        eventually(f"analytics windows of {word} equal to the produced tweets'", series, 300, 5)
    cluster.timed("faults and reconciliation", started)


def _epoch(moment: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


def test_engine_env_points_only_at_project_files(tmp_path: Path) -> None:
    """The rehearsal configures podman through its own file and socket, never the machine's."""
    env = Engine(tmp_path).env
    assert env["CONTAINERS_CONF"] == str(REPO_ROOT / "infra" / "rehearsal" / "containers.conf")
    assert env["DOCKER_HOST"] == f"unix://{tmp_path / 'podman.sock'}"
    assert os.path.commonpath([env["CONTAINERS_CONF"], str(REPO_ROOT)]) == str(REPO_ROOT)
