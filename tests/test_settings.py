"""Settings precedence: env > config server > config-repo files > defaults."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import orjson
import pytest

from tweetpipe.config_sources import ConfigUnavailable, unflatten
from tweetpipe.settings import REPO_ROOT
from twitter_to_kafka.settings import GeneratorSettings


@pytest.fixture
def config_repo(tmp_path: Path) -> Path:
    (tmp_path / "application.yml").write_text("kafka:\n  linger_ms: 11\n  partitions: 6\n")
    (tmp_path / "application-docker.yml").write_text("kafka:\n  linger_ms: 22\n")
    (tmp_path / "twitter-to-kafka.yml").write_text("generator:\n  rate: 3\n")
    (tmp_path / "twitter-to-kafka-docker.yml").write_text("generator.users: 77\n")
    return tmp_path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("PROFILE", "CONFIG_SERVER_URL", "KAFKA__LINGER_MS", "GENERATOR__RATE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_run_the_local_profile(clean_env: pytest.MonkeyPatch) -> None:
    settings = GeneratorSettings()
    assert settings.profile == "local"
    assert settings.kafka.servers == ["127.0.0.1:9092"]
    assert settings.generator.keywords == ["Java", "Microservices", "Kafka", "Elasticsearch"]
    assert settings.config_repo_dir == REPO_ROOT / "infra" / "config-repo"


def test_files_layer_by_specificity(config_repo: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PROFILE", "docker")
    settings = GeneratorSettings(config_repo_dir=config_repo)
    assert settings.kafka.linger_ms == 22  # application-docker over application
    assert settings.kafka.partitions == 6  # untouched keys survive the merge
    assert settings.generator.rate == 3  # the application's own file
    assert settings.generator.users == 77  # dotted keys nest like YAML sections


def test_environment_beats_files(config_repo: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("KAFKA__LINGER_MS", "33")
    clean_env.setenv("GENERATOR__RATE", "0")
    settings = GeneratorSettings(config_repo_dir=config_repo)
    assert settings.kafka.linger_ms == 33
    assert settings.generator.rate == 0
    assert settings.kafka.partitions == 6


class _SpringConfig(BaseHTTPRequestHandler):
    """Answers like a Spring Cloud Config server: most specific property source first."""

    requests: list[str] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        body = {
            "name": "twitter-to-kafka",
            "profiles": ["local"],
            "label": None,
            "version": None,
            "propertySources": [
                {"name": "twitter-to-kafka.yml", "source": {"generator.rate": 9}},
                {
                    "name": "application.yml",
                    "source": {
                        "generator.rate": 1,
                        "kafka.linger_ms": 44,
                        "generator.keywords[0]": "Rust",
                        "generator.keywords[1]": "Go",
                    },
                },
            ],
        }
        payload = orjson.dumps(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def config_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _SpringConfig)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_config_server_sits_between_env_and_files(
    config_server: str, config_repo: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("CONFIG_SERVER_URL", config_server)
    clean_env.setenv("KAFKA__LINGER_MS", "55")
    settings = GeneratorSettings(config_repo_dir=config_repo)
    assert _SpringConfig.requests[-1] == "/twitter-to-kafka/local"
    assert settings.generator.rate == 9  # most specific property source wins
    assert settings.generator.keywords == ["Rust", "Go"]  # Spring's indexed lists
    assert settings.kafka.linger_ms == 55  # env beats the config server
    assert settings.kafka.partitions == 6  # files still fill the gaps


def test_unreachable_config_server_fails_fast_when_asked(
    clean_env: pytest.MonkeyPatch, config_repo: Path
) -> None:
    clean_env.setenv("CONFIG_SERVER_URL", "http://127.0.0.1:9")
    clean_env.setenv("CONFIG_SERVER_ATTEMPTS", "2")
    assert GeneratorSettings(config_repo_dir=config_repo).generator.rate == 3  # falls back
    clean_env.setenv("CONFIG_SERVER_FAIL_FAST", "true")
    with pytest.raises(ConfigUnavailable, match=r"127\.0\.0\.1:9"):
        GeneratorSettings(config_repo_dir=config_repo)


def test_unflatten_handles_nesting_and_lists() -> None:
    assert unflatten({"a.b.c": 1, "a.d": 2, "l[1]": "y", "l[0]": "x"}) == {
        "a": {"b": {"c": 1}, "d": 2},
        "l": ["x", "y"],
    }


def test_shipped_config_repo_loads_for_both_profiles(clean_env: pytest.MonkeyPatch) -> None:
    local = GeneratorSettings()
    clean_env.setenv("PROFILE", "docker")
    docker = GeneratorSettings()
    assert local.kafka.replication_factor == 1
    assert docker.kafka.replication_factor == 3
    assert len(docker.kafka.servers) == 3
