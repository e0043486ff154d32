"""Alert rules and the cluster's Prometheus configuration, with Debian's promtool and Prometheus.

`promtool check` validates the rules and `infra/prometheus/prometheus.yml`; `promtool test rules`
runs the unit tests in `tests/prometheus/alerts.test.yml`. The cluster's Eureka discovery job is
then run for real: a service registers with the project's Eureka-protocol registry and a real
Prometheus, with that job as written, finds and scrapes it under its application name.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devstack.broker import TansuBroker
from devstack.prometheus import PrometheusServer
from tests.support.ports import free_port
from tests.support.registry import RegistryProcess
from tests.support.services import ServiceProcess
from tweetpipe.settings import REPO_ROOT

PROMETHEUS_DIR = REPO_ROOT / "infra" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
CLUSTER_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_TESTS = REPO_ROOT / "tests" / "prometheus" / "alerts.test.yml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

ALERTS = {
    "TweetpipeConsumerLagGrowing",
    "TweetpipeDeadLettersArriving",
    "TweetpipeCircuitBreakerOpen",
    "TweetpipeHighServerErrorRatio",
    "TweetpipeTargetDown",
}

pytestmark = pytest.mark.skipif(
    not Path(PROMTOOL).exists(), reason="promtool is missing (Debian package prometheus)"
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )


def test_the_rules_are_valid() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_the_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts == ALERTS
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    checks = [check for case in cases for check in case.get("alert_rule_test", [])]
    fired = {c["alertname"] for c in checks if c["exp_alerts"]}
    quiet = {c["alertname"] for c in checks if not c["exp_alerts"]}
    assert fired == ALERTS
    assert quiet == ALERTS


def test_the_cluster_config_is_valid() -> None:
    result = promtool("check", "config", str(CLUSTER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid prometheus config file syntax" in result.stdout
    assert "SUCCESS: 6 rules found" in result.stdout  # the rule file it names, found beside it


def _eureka_job(server_url: str) -> dict[str, Any]:
    """The cluster config's Eureka discovery job, as written, pointed at `server_url`."""
    config = yaml.safe_load(CLUSTER_CONFIG.read_text())
    (job,) = [j for j in config["scrape_configs"] if "eureka_sd_configs" in j]
    for sd in job["eureka_sd_configs"]:
        sd["server"] = server_url
        sd["refresh_interval"] = "1s"
    return dict(job)


def _wait(what: str, check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s  # a guard, not a measurement
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_prometheus_finds_services_through_eureka_by_application_name(tmp_path: Path) -> None:
    """twitter-to-kafka registers as TWITTER-TO-KAFKA-SERVICE; Prometheus, with the cluster's
    discovery job and rules, scrapes it as job `twitter-to-kafka` and sees its tweets."""
    port = free_port()
    with (
        TansuBroker(free_port(), log_path=tmp_path / "broker.log") as broker,
        RegistryProcess(tmp_path / "registry.log") as registry,
    ):
        generator = ServiceProcess(
            "twitter_to_kafka",
            {
                "ADMIN__PORT": str(port),
                "DATA_DIR": str(tmp_path / "data"),
                "KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "EUREKA__SERVER_URL": registry.url,
                "GENERATOR__RATE": "20",
            },
            tmp_path / "generator.log",
        ).start()
        try:
            generator.wait_healthy(port, timeout_s=90)
            _wait("registered", lambda: registry.app("TWITTER-TO-KAFKA-SERVICE") is not None)
            with PrometheusServer(
                free_port(),
                targets=[],
                data_dir=tmp_path / "prometheus",
                scrape_interval_s=1,
                rule_files=[RULES],
                scrape_configs=[_eureka_job(registry.url)],
            ) as prometheus:

                def query(expr: str) -> list[dict[str, Any]]:
                    reply = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr})
                    body = reply.json()
                    assert body["status"] == "success", body
                    result: list[dict[str, Any]] = body["data"]["result"]
                    return result

                produced = 'tweetpipe_tweets_produced_total{job="twitter-to-kafka"}'
                _wait("scraped through Eureka", lambda: bool(query(f"{produced} > 0")))
                targets = httpx.get(f"{prometheus.url}/api/v1/targets").json()["data"]
                (target,) = targets["activeTargets"]
                assert target["health"] == "up"
                assert target["scrapeUrl"] == f"http://127.0.0.1:{port}/metrics"
                assert target["labels"] == {
                    "job": "twitter-to-kafka",
                    "instance": f"127.0.0.1:{port}",
                    "eureka_app": "TWITTER-TO-KAFKA-SERVICE",
                }
                groups = httpx.get(f"{prometheus.url}/api/v1/rules").json()["data"]["groups"]
                loaded = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
                assert loaded == ALERTS
        finally:
            generator.terminate()
