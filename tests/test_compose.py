"""The cluster profile's files: valid for docker-compose, consistent with the code and each other.

There is no Docker engine here, so nothing is started: Debian's `docker-compose` (v1) validates
and merges the files (`config` needs no engine), and the checks below read the merged result.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any, get_args
from urllib.parse import urlparse

import pytest
import yaml

from tweetpipe.settings import REPO_ROOT, Profile, ServiceSettings

COMPOSE_DIR = REPO_ROOT / "infra" / "docker-compose"
PROMETHEUS_CONFIG = REPO_ROOT / "infra" / "prometheus" / "prometheus.yml"
CONFIG_REPO = REPO_ROOT / "infra" / "config-repo"
GRAFANA = REPO_ROOT / "infra" / "grafana"
DOCKERFILE = REPO_ROOT / "infra" / "docker" / "Dockerfile"
LOGSTASH_PIPELINE = REPO_ROOT / "infra" / "logstash" / "pipeline"

INFRASTRUCTURE = [
    "kafka_cluster.yml",
    "elastic_cluster.yml",
    "keycloak_authorization_server.yml",
    "postgres.yml",
    "redis.yml",
    "monitoring.yml",
    "zipkin.yml",
    "elk.yml",
]
EVERYTHING = ["common.yml", *INFRASTRUCTURE, "services.yml"]
COMBINATIONS = {
    # The two the README names:
    "just Kafka": ["common.yml", "kafka_cluster.yml"],
    "everything": EVERYTHING,
    # Each file is usable on its own with common.yml (elk needs the cluster it ships logs to):
    "just Elasticsearch": ["common.yml", "elastic_cluster.yml"],
    "just Keycloak": ["common.yml", "keycloak_authorization_server.yml"],
    "just PostgreSQL": ["common.yml", "postgres.yml"],
    "just Redis": ["common.yml", "redis.yml"],
    "just monitoring": ["common.yml", "monitoring.yml"],
    "just Zipkin": ["common.yml", "zipkin.yml"],
    "logs": ["common.yml", "elastic_cluster.yml", "elk.yml"],
    "infrastructure without services": ["common.yml", *INFRASTRUCTURE],
}
SERVICE_LOG_DIR = "/var/log/tweetpipe"


def compose(files: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing (Debian package docker-compose; ./dev installs it)"
    command = [binary]
    for name in files:
        command += ["-f", name]
    return subprocess.run(
        [*command, *args], cwd=COMPOSE_DIR, capture_output=True, text=True, timeout=120
    )


@cache
def merged() -> dict[str, Any]:
    """Every file merged by docker-compose itself, anchors expanded, `${VARS}` substituted."""
    result = compose(EVERYTHING, "config")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = merged()["services"]
    return found


def python_module(service: dict[str, Any]) -> str | None:
    """`<module>` of a `python -m <module>` command, else None."""
    command = service.get("command")
    if isinstance(command, list) and command[:2] == ["python", "-m"]:
        return str(command[2])
    return None


def python_services() -> dict[str, str]:
    """Compose service name → the module it runs."""
    return {
        name: module
        for name, service in services().items()
        if (module := python_module(service)) is not None
    }


def health_url(service: dict[str, Any]) -> str | None:
    test = service.get("healthcheck", {}).get("test", [])
    if test[:4] == ["CMD", "python", "-m", "tweetpipe.healthcheck"]:
        return str(test[4])
    return None


def prometheus_jobs() -> dict[str, list[str]]:
    """The fixed jobs: name → targets (the job that finds services through Eureka has none)."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
        if "static_configs" in job
    }


def eureka_sd_servers() -> list[str]:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    return [
        sd["server"] for job in config["scrape_configs"] for sd in job.get("eureka_sd_configs", [])
    ]


def registers_with_eureka(module: str) -> bool:
    """The service holds a registry lease while it runs (its runtime is given an Eureka app)."""
    spec = importlib.util.find_spec(f"{module}.app")
    if spec is None or spec.origin is None:
        return False
    source = Path(spec.origin).read_text()
    return re.search(r"ServiceRuntime\([^)]*\beureka_app=", source) is not None


def settings_class(module: str) -> type[ServiceSettings] | None:
    """The `ServiceSettings` subclass in `<module>.settings`, if the module has one."""
    if importlib.util.find_spec(f"{module}.settings") is None:
        return None
    namespace = importlib.import_module(f"{module}.settings")
    found = [
        cls
        for _, cls in inspect.getmembers(namespace, inspect.isclass)
        if issubclass(cls, ServiceSettings) and cls.__module__ == namespace.__name__
    ]
    return found[0] if len(found) == 1 else None


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_compose_files_are_valid(name: str) -> None:
    result = compose(COMBINATIONS[name], "config", "-q")
    assert result.returncode == 0, f"{name}: {result.stderr}"


def test_the_readme_commands_are_the_validated_combinations() -> None:
    """The `docker-compose … up` lines a user copies from the README are the ones CI checks."""
    text = (REPO_ROOT / "README.md").read_text().replace("\\\n", " ")
    commands = [line for line in text.splitlines() if line.startswith("docker-compose ")]
    files = [re.findall(r"-f (\S+)", command) for command in commands]
    assert files == [COMBINATIONS["just Kafka"], COMBINATIONS["everything"]]
    assert all(command.rstrip().endswith(("up", "up --build")) for command in commands)


def test_every_compose_file_is_validated() -> None:
    on_disk = sorted(p.name for p in COMPOSE_DIR.glob("*.yml"))
    assert on_disk == sorted([*EVERYTHING, "rehearsal.yml"])


def test_the_rehearsal_override_merges_and_replaces_only_the_unobtainable_images() -> None:
    result = compose([*EVERYTHING, "rehearsal.yml"], "config")
    assert result.returncode == 0, result.stderr
    rehearsed = yaml.safe_load(result.stdout)["services"]
    changed = {
        name for name, s in rehearsed.items() if s.get("image") != services()[name].get("image")
    }
    assert changed == {
        "kafka-controller", "kafka-broker-1", "kafka-broker-2", "kafka-broker-3",
        "kafka-init-topics", "elastic-1", "elastic-2", "elastic-3", "keycloak", "postgres",
        "redis", "prometheus", "eureka", "zipkin",
    }  # fmt: skip
    for name in python_services():
        assert rehearsed[name] == services()[name], f"the rehearsal changes {name}"


def test_every_variable_is_pinned_in_env_file() -> None:
    defined = {
        line.split("=", 1)[0]
        for line in (COMPOSE_DIR / ".env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    used = set()
    for name in EVERYTHING:
        used |= set(re.findall(r"\$\{([A-Z0-9_]+)\}", (COMPOSE_DIR / name).read_text()))
    assert used - defined == set(), "variables used but not defined in .env"
    images = [s["image"] for s in services().values()]
    assert all(":" in image and not image.endswith(":latest") for image in images), images


def test_every_python_module_in_compose_exists_and_is_in_the_image() -> None:
    modules = python_services()
    assert len(modules) >= 8, modules
    dockerfile = DOCKERFILE.read_text()
    for name, module in modules.items():
        assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"
        assert importlib.util.find_spec(f"{module}.__main__") is not None, (
            f"{name}: `python -m {module}` needs {module}/__main__.py"
        )
        assert f"COPY {module} ./{module}" in dockerfile, f"{module} is not copied into the image"
        assert services()[name]["build"]["dockerfile"] == "infra/docker/Dockerfile"


def test_compose_service_names_are_the_application_names() -> None:
    """Config files, Prometheus jobs, Eureka and log files all go by the application name."""
    for name, module in python_services().items():
        cls = settings_class(module)
        if cls is not None:
            assert cls.application == name, f"{module} calls itself {cls.application}"
        env = services()[name]["environment"]
        assert env["LOG_FILE"] == f"{SERVICE_LOG_DIR}/{name}.json"


def test_every_service_serving_metrics_has_a_scrape_target() -> None:
    """A fixed job, or a lease in the Eureka server Prometheus discovers services from."""
    jobs = prometheus_jobs()
    docker = yaml.safe_load((CONFIG_REPO / "application-docker.yml").read_text())
    assert eureka_sd_servers() == [docker["eureka"]["server_url"]]
    scraped, discovered = set(), set()
    for name, service in services().items():
        url = health_url(service)
        if url is None or urlparse(url).path != "/health":
            continue  # serves no tweetpipe admin router (e.g. Streamlit's own health path)
        port = urlparse(url).port
        if name in jobs:
            assert jobs[name] == [f"{name}:{port}"], (
                f"{name}: scrape {jobs[name]}, serves on {port}"
            )
        else:
            module = python_module(service)
            assert module is not None, name
            assert registers_with_eureka(module), (
                f"{name} serves /metrics but is neither a job in prometheus.yml nor in Eureka"
            )
            discovered.add(name)
        scraped.add(name)
    assert len(scraped) >= 7, scraped
    assert len(discovered) >= 6, discovered
    for job, targets in jobs.items():
        if job == "prometheus":
            continue
        for target in targets:
            host = target.rsplit(":", 1)[0]
            assert host in services(), f"job {job} scrapes {target}: no such service"


def test_every_config_repo_file_names_a_service() -> None:
    applications = set(python_services()) | {"application"}
    profiles = set(get_args(Profile))
    for path in sorted(CONFIG_REPO.glob("*.y*ml")):
        stem = path.stem
        matches = [
            app
            for app in applications
            if stem == app or (stem.startswith(f"{app}-") and stem[len(app) + 1 :] in profiles)
        ]
        assert matches, f"{path.name}: no service called that (known: {sorted(applications)})"
        assert isinstance(yaml.safe_load(path.read_text()) or {}, dict), path.name


def test_docker_profile_addresses_name_compose_services() -> None:
    """Every host a `*-docker.yml` setting points at is a service of the compose files."""
    published = {
        int(port["published"])
        for service in services().values()
        for port in service.get("ports", [])
    }
    hosts = 0
    for path in sorted(CONFIG_REPO.glob("*-docker.y*ml")):
        for value in _strings(yaml.safe_load(path.read_text()) or {}):
            for host, port in re.findall(r"(?:^|[/@,])([a-z][a-z0-9-]*):(\d+)", value):
                hosts += 1
                if host == "localhost":  # what a browser uses: a published port
                    assert int(port) in published, f"{path.name}: {value}"
                else:
                    assert host in services(), f"{path.name}: {value}: no service {host}"
    assert hosts >= 6


def _strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


def test_bind_mounted_files_exist() -> None:
    """Including the Keycloak realm, Prometheus config, Grafana provisioning, Logstash pipeline."""
    mounted = []
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if source and source.startswith("/"):
                assert Path(source).exists(), f"{name} mounts {source}, which does not exist"
                mounted.append(Path(source))
    realm = REPO_ROOT / "infra" / "keycloak" / "microservices-realm.json"
    assert realm in mounted
    assert json.loads(realm.read_text())["realm"] == "microservices-realm"
    assert PROMETHEUS_CONFIG in mounted


def test_grafana_provisioning_matches_its_mounts() -> None:
    grafana = services()["grafana"]
    targets = {
        Path(v.split(":")[0]): v.split(":")[1] for v in grafana["volumes"] if v.startswith("/")
    }
    dashboards_at = targets[GRAFANA / "dashboards"]
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/tweetpipe.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == dashboards_at
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (GRAFANA / "dashboards" / Path(home).name).is_file()
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (prometheus,) = datasources["datasources"]
    assert urlparse(prometheus["url"]).hostname in services()
    for path in (GRAFANA / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == prometheus["uid"], f"{path.name}: {panel}"


def test_logstash_reads_the_log_files_services_write() -> None:
    logstash = services()["logstash"]
    assert f"service-logs:{SERVICE_LOG_DIR}:ro" in logstash["volumes"]
    pipeline = "".join(p.read_text() for p in LOGSTASH_PIPELINE.glob("*.conf"))
    assert f'path => "{SERVICE_LOG_DIR}/*.json"' in pipeline
    for name in python_services():
        assert f"service-logs:{SERVICE_LOG_DIR}:rw" in services()[name]["volumes"], name


def test_services_wait_for_what_they_need() -> None:
    for name, module in python_services().items():
        depends = services()[name].get("depends_on", {})
        if module != "config_server":
            assert depends.get("config-server") == {"condition": "service_healthy"}, name
        assert health_url(services()[name]) is not None, f"{name} has no health check"
    sink_needs = services()["kafka-to-elastic"]["depends_on"]
    assert sink_needs["kafka-init-topics"] == {"condition": "service_completed_successfully"}
    assert sink_needs["elastic-1"] == {"condition": "service_healthy"}


def test_every_volume_mount_point_is_in_the_image_owned_by_the_service_user() -> None:
    """Docker makes a missing mount point, and a new named volume on it, root's: the service
    (uid 10001) could not write there. The rehearsal checks the built image too."""
    dockerfile = DOCKERFILE.read_text().replace("\\\n", " ")
    (create,) = re.findall(r"mkdir -p ([^&\n]+)", dockerfile)
    (chown,) = re.findall(r"chown tweetpipe ([^&\n]+)", dockerfile)
    made, owned = set(create.split()), set(chown.split())
    targets = {
        volume.split(":")[1]
        for name in python_services()
        for volume in services()[name].get("volumes", [])
    }
    assert "/data/streams" in targets
    for target in targets:
        assert any(target == m or m.startswith(target + "/") for m in made), target
        assert target in owned, f"{target} is not the service user's"


def test_every_service_listens_on_the_port_its_healthcheck_probes() -> None:
    """`ADMIN__HOST` alone would leave the admin section's port at 0 (a random port): the docker
    profile found by the rehearsal listening nowhere its health check, scrape or route looked."""
    for name in python_services():
        url = health_url(services()[name])
        assert url is not None, name
        env = services()[name]["environment"]
        assert str(env.get("ADMIN__PORT")) == str(urlparse(url).port), name
