"""config-server: the Spring Cloud Config protocol, ciphers, auth, git labels, real services."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from config import ConfigClient

from tests.support.kafka import read_topic
from tests.support.ports import free_port
from tests.support.services import ServiceProcess, metric_value
from tweetpipe.settings import KafkaSettings

USER, PASSWORD = "tweetpipe", "test-password"
AUTH = (USER, PASSWORD)
KEY = "a key only the tests know"


class ConfigServer:
    """`python -m config_server` on a free port with the given settings."""

    def __init__(self, workdir: Path, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = {
            "ADMIN__PORT": str(self.port),
            "CONFIG_SERVER_PASSWORD": PASSWORD,
            "ENCRYPT_KEY": KEY,
            **env,
        }
        self.process = ServiceProcess("config_server", self.env, workdir / f"cs-{self.port}.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ConfigServer:
        self.process.start()
        self.process.wait_healthy(self.port)
        return self

    def get(self, path: str, auth: tuple[str, str] | None = AUTH) -> httpx.Response:
        return httpx.get(self.url + path, auth=auth, timeout=10)

    def post(self, path: str, text: str, auth: tuple[str, str] | None = AUTH) -> httpx.Response:
        headers = {"Content-Type": "text/plain"}
        return httpx.post(self.url + path, content=text, headers=headers, auth=auth, timeout=10)

    def stop(self) -> None:
        self.process.terminate()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ConfigServer]]:
    started: list[ConfigServer] = []
    yield started
    for server in started:
        server.process.kill()


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    repo = tmp_path / "config-repo"
    repo.mkdir()
    (repo / "application.yml").write_text(
        "kafka:\n  partitions: 3\n  tweets_topic: twitter-topic\nshared: from-application\n"
    )
    (repo / "application-docker.yml").write_text("kafka:\n  partitions: 6\n")
    (repo / "orders.yml").write_text(
        "orders:\n  tags: [a, b]\n  pool:\n    size: 4\nshared: from-orders\n"
    )
    (repo / "orders-docker.yml").write_text("orders.pool.size: 16\n")
    (repo / "orders-extra.yml").write_text("orders:\n  extra: true\n")
    return repo


@pytest.fixture
def server(servers: list[ConfigServer], repo_dir: Path, tmp_path: Path) -> ConfigServer:
    started = ConfigServer(tmp_path, {"REPO__DIR": str(repo_dir)}).start()
    servers.append(started)
    return started


def source_names(body: dict[str, object]) -> list[str]:
    return [str(s["name"]).rsplit("/", 1)[-1] for s in body["propertySources"]]  # type: ignore[attr-defined]


def test_environment_lists_property_sources_most_specific_first(server: ConfigServer) -> None:
    body = server.get("/orders/docker").json()
    assert (body["name"], body["profiles"], body["label"], body["version"]) == (
        "orders",
        ["docker"],
        None,
        None,
    )
    assert source_names(body) == [
        "orders-docker.yml",
        "orders.yml",
        "application-docker.yml",
        "application.yml",
    ]
    sources = [s["source"] for s in body["propertySources"]]
    assert sources[0] == {"orders.pool.size": 16}
    assert sources[1] == {
        "orders.tags[0]": "a",
        "orders.tags[1]": "b",
        "orders.pool.size": 4,
        "shared": "from-orders",
    }
    assert sources[2] == {"kafka.partitions": 6}

    # several profiles: the last one named wins, as in Spring
    multi = server.get("/orders/docker,extra").json()
    assert multi["profiles"] == ["docker", "extra"]
    assert source_names(multi) == [
        "orders-extra.yml",
        "orders-docker.yml",
        "orders.yml",
        "application-docker.yml",
        "application.yml",
    ]

    # an application the repo does not know still gets the shared files, like Spring
    unknown = server.get("/billing/docker")
    assert unknown.status_code == 200
    assert source_names(unknown.json()) == ["application-docker.yml", "application.yml"]

    assert server.get("/orders/docker/main").json()["label"] == "main"  # ignored by a directory
    bad = server.get("/orders/do%20cker")
    assert bad.status_code == 400
    assert bad.json() == {"detail": "invalid application or profile name: orders/do cker"}


def test_a_third_party_spring_client_reads_it_unchanged(server: ConfigServer) -> None:
    client = ConfigClient(address=server.url, app_name="orders", profile="docker", label="main")
    client.get_config(auth=AUTH)
    assert client.get("orders.pool.size") == 16
    assert client.get("orders.tags") == ["a", "b"]
    assert client.get("shared") == "from-orders"
    assert client.get("kafka.partitions") == 6
    assert client.get("kafka.tweets_topic") == "twitter-topic"


def test_yaml_properties_and_json_renderings(server: ConfigServer) -> None:
    expected = {
        "kafka": {"partitions": 6, "tweets_topic": "twitter-topic"},
        "orders": {"pool": {"size": 16}, "tags": ["a", "b"]},
        "shared": "from-orders",
    }
    for path in ("/orders-docker.yml", "/orders-docker.yaml", "/main/orders-docker.yml"):
        response = server.get(path)
        assert response.status_code == 200, path
        assert yaml.safe_load(response.text) == expected
    assert server.get("/orders-docker.json").json() == expected
    properties = server.get("/orders-docker.properties").text.splitlines()
    assert properties == [
        "kafka.partitions: 6",
        "kafka.tweets_topic: twitter-topic",
        "orders.pool.size: 16",
        "orders.tags[0]: a",
        "orders.tags[1]: b",
        "shared: from-orders",
    ]
    missing = server.get("/not-a-document")
    assert missing.status_code == 404
    assert "expected" in missing.json()["detail"]


def test_credentials_are_required(server: ConfigServer) -> None:
    for auth in (None, (USER, "wrong"), ("someone", PASSWORD)):
        for response in (
            server.get("/orders/docker", auth=auth),
            server.get("/orders-docker.yml", auth=auth),
            server.post("/encrypt", "x", auth=auth),
            server.post("/decrypt", "x", auth=auth),
        ):
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith("Basic")
            assert response.json() == {"detail": "authentication required"}
    assert server.get("/health", auth=None).status_code == 200
    assert metric_value(server.port, "tweetpipe_config_auth_failures_total") == 12
    assert "wrong credentials for user 'tweetpipe'" in server.process.output
    assert PASSWORD not in server.process.output


def test_encrypt_decrypt_round_trip(
    server: ConfigServer, servers: list[ConfigServer], tmp_path: Path
) -> None:
    secret = "pässwörd with spaces & symbols"
    cipher = server.post("/encrypt", secret).text
    assert secret not in cipher
    assert server.post("/encrypt", secret).text != cipher  # a fresh nonce every time
    assert server.post("/decrypt", cipher).text == secret
    assert server.post("/decrypt", "{cipher}" + cipher).text == secret
    # curl -d sends a form body ending in '='
    form = httpx.post(
        server.url + "/encrypt",
        content="plain=",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=AUTH,
    )
    assert server.post("/decrypt", form.text).text == "plain"
    assert server.get("/encrypt/status").json() == {"status": "OK"}

    tampered = cipher[:-2] + ("00" if cipher[-2:] != "00" else "11")
    for bad in (tampered, "not hex at all", "abcd"):
        response = server.post("/decrypt", bad)
        assert response.status_code == 400
        assert response.json()["status"] == "INVALID"

    other = ConfigServer(tmp_path, {"ENCRYPT_KEY": "another key", "REPO__DIR": str(tmp_path)})
    servers.append(other.start())
    assert other.post("/decrypt", cipher).status_code == 400

    keyless = ConfigServer(tmp_path, {"ENCRYPT_KEY": "", "REPO__DIR": str(tmp_path)})
    keyless.env.pop("ENCRYPT_KEY")
    servers.append(keyless.start())
    response = keyless.post("/encrypt", secret)
    assert response.status_code == 404
    assert response.json()["status"] == "NO_KEY"


def test_cipher_values_are_served_decrypted(server: ConfigServer, repo_dir: Path) -> None:
    cipher = server.post("/encrypt", "s3cr3t").text
    (repo_dir / "payments.yml").write_text(
        f"db:\n  user: payments\n  password: '{{cipher}}{cipher}'\n"
        "api:\n  token: '{cipher}0123456789abcdef0123456789abcdef'\n"
    )
    body = server.get("/payments/local").json()
    assert body["propertySources"][0]["source"] == {
        "db.user": "payments",
        "db.password": "s3cr3t",
        "invalid.api.token": "<n/a>",
    }
    assert yaml.safe_load(server.get("/payments-local.yml").text)["db"]["password"] == "s3cr3t"
    assert metric_value(server.port, "tweetpipe_config_invalid_ciphers_total") >= 1
    assert "cannot decrypt api.token" in server.process.output


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    return subprocess.run(
        [*command, *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def commit_file(repo: Path, name: str, text: str, message: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def git_repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """main: colour blue (tagged v1), then red; branch feature: green, in a config/ folder."""
    repo = tmp_path / "git-repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "config").mkdir()
    shas = {"v1": commit_file(repo, "config/orders.yml", "colour: blue\n", "blue")}
    git(repo, "tag", "-a", "v1", "-m", "first release")
    git(repo, "checkout", "-q", "-b", "feature")
    shas["feature"] = commit_file(repo, "config/orders.yml", "colour: green\n", "green")
    git(repo, "checkout", "-q", "main")
    shas["main"] = commit_file(repo, "config/orders.yml", "colour: red\n", "red")
    return repo, shas


@pytest.mark.parametrize("remote", [False, True], ids=["in-place", "mirrored"])
def test_git_backend_serves_labels_with_commit_versions(
    servers: list[ConfigServer],
    git_repo: tuple[Path, dict[str, str]],
    tmp_path: Path,
    remote: bool,
) -> None:
    repo, shas = git_repo
    env = {
        "REPO__BACKEND": "git",
        "REPO__GIT_URI": f"file://{repo}" if remote else str(repo),
        "REPO__SEARCH_PATH": "config",
        "REPO__REFRESH_S": "0",
        "REPO__GIT_CACHE_DIR": str(tmp_path / "mirror"),
    }
    server = ConfigServer(tmp_path, env).start()
    servers.append(server)

    def colour_and_version(path: str) -> tuple[str, str]:
        body = server.get(path).json()
        return body["propertySources"][0]["source"]["colour"], body["version"]

    assert colour_and_version("/orders/default") == ("red", shas["main"])
    assert colour_and_version("/orders/default/main") == ("red", shas["main"])
    assert colour_and_version("/orders/default/feature") == ("green", shas["feature"])
    assert colour_and_version("/orders/default/v1") == ("blue", shas["v1"])
    assert colour_and_version(f"/orders/default/{shas['v1']}") == ("blue", shas["v1"])
    assert yaml.safe_load(server.get("/feature/orders-default.yml").text) == {"colour": "green"}
    assert (
        server.get("/orders/default/v1")
        .json()["propertySources"][0]["name"]
        .endswith("config/orders.yml")
    )

    missing = server.get("/orders/default/no-such-branch")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no such label: no-such-branch"}

    # a new commit is served on the next request
    newest = commit_file(repo, "config/orders.yml", "colour: violet\n", "violet")
    assert colour_and_version("/orders/default") == ("violet", newest)


def test_outside_the_local_profile_a_password_is_required(tmp_path: Path) -> None:
    port = free_port()
    process = ServiceProcess(
        "config_server", {"PROFILE": "docker", "ADMIN__PORT": str(port)}, tmp_path / "cs.log"
    ).start()
    assert process.wait_exit(60) == 2
    assert "no password configured for the docker profile" in process.output


def generator_env(kafka: KafkaSettings, tmp_path: Path, server_url: str) -> dict[str, str]:
    """A generator that knows only the broker and the config server, nothing else."""
    empty = tmp_path / "no-local-config"
    empty.mkdir(exist_ok=True)
    return {
        "KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "CONFIG_SERVER_URL": server_url,
        "CONFIG_SERVER_PASSWORD": PASSWORD,
        "CONFIG_REPO_DIR": str(empty),
        "GENERATOR__RATE": "0",
        "EUREKA__SERVER_URL": "",
    }


def served_repo(tmp_path: Path, admin_port: int) -> Path:
    """Settings only the config server knows: a topic, a count and the admin port."""
    repo = tmp_path / "served"
    repo.mkdir()
    (repo / "application.yml").write_text(f"admin:\n  port: {admin_port}\n")
    (repo / "twitter-to-kafka.yml").write_text(
        "kafka:\n  tweets_topic: topic-from-config-server\ngenerator:\n  count: 40\n"
    )
    return repo


def test_a_service_takes_its_settings_from_the_config_server(
    servers: list[ConfigServer], kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    admin_port = free_port()
    server = ConfigServer(tmp_path, {"REPO__DIR": str(served_repo(tmp_path, admin_port))})
    servers.append(server.start())
    generator = ServiceProcess(
        "twitter_to_kafka",
        generator_env(kafka_settings, tmp_path, server.url),
        tmp_path / "generator.log",
    ).start()
    try:
        assert generator.wait_exit(120) == 0
    finally:
        generator.kill()
    records = read_topic(kafka_settings, "topic-from-config-server", 40)
    assert len(records) == 40
    assert f"admin endpoints on http://127.0.0.1:{admin_port}" in generator.output


def test_a_service_retries_until_the_config_server_is_up(
    servers: list[ConfigServer], kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    admin_port, server_port = free_port(), free_port()
    env = generator_env(kafka_settings, tmp_path, f"http://127.0.0.1:{server_port}")
    generator = ServiceProcess(
        "twitter_to_kafka", {**env, "CONFIG_SERVER_ATTEMPTS": "10"}, tmp_path / "generator.log"
    ).start()
    try:
        generator.wait_for_log(r"not reachable \(attempt 2 of 10\), retrying", 60)
        server = ConfigServer(
            tmp_path, {"REPO__DIR": str(served_repo(tmp_path, admin_port))}, port=server_port
        )
        servers.append(server.start())
        assert generator.wait_exit(120) == 0
    finally:
        generator.kill()
    assert len(read_topic(kafka_settings, "topic-from-config-server", 40)) == 40


def test_without_fail_fast_a_service_falls_back_to_local_config(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    admin_port = free_port()
    env = generator_env(kafka_settings, tmp_path, f"http://127.0.0.1:{free_port()}")
    env |= {"CONFIG_SERVER_ATTEMPTS": "2", "GENERATOR__COUNT": "15"}
    env |= {"ADMIN__PORT": str(admin_port)}
    generator = ServiceProcess("twitter_to_kafka", env, tmp_path / "generator.log").start()
    try:
        assert generator.wait_exit(120) == 0
    finally:
        generator.kill()
    assert "unavailable, starting from local config" in generator.output
    assert len(read_topic(kafka_settings, kafka_settings.tweets_topic, 15)) == 15


@pytest.mark.parametrize("case", ["server-down", "wrong-password"])
def test_fail_fast_refuses_to_start(
    case: str, servers: list[ConfigServer], repo_dir: Path, tmp_path: Path
) -> None:
    env = {"CONFIG_SERVER_FAIL_FAST": "true", "CONFIG_SERVER_ATTEMPTS": "2"}
    if case == "server-down":
        url = f"http://127.0.0.1:{free_port()}"
        expected = "ConnectError"
    else:
        server = ConfigServer(tmp_path, {"REPO__DIR": str(repo_dir)})
        servers.append(server.start())
        url = server.url
        env["CONFIG_SERVER_PASSWORD"] = "not the password"
        expected = "credentials rejected"
    env["CONFIG_SERVER_URL"] = url
    generator = ServiceProcess("twitter_to_kafka", env, tmp_path / f"{case}.log").start()
    assert generator.wait_exit(60) != 0
    output = generator.output
    assert f"config server {url} unavailable (fail-fast)" in output
    assert expected in output
    assert "Traceback" not in output
