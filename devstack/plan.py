"""What `tweetpipe up` runs on one machine: which services, on which ports, wired to what.

Every service goes by its application name (the Eureka app, the Prometheus job, the log file
under `<data_dir>/logs/`). The platform comes first: the Eureka-protocol registry, the config
server (every other service reads its settings from it) and the dev issuer; then the pipeline,
the APIs, the gateway and the web client. The gateway finds the APIs through the registry and
falls back to their fixed local addresses while it has no answer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field

from analytics_service.settings import AnalyticsSettings
from devstack.drain import DrainOptions, ExportedLag, Stream
from devstack.prometheus import PrometheusOptions, ScrapeTarget, prometheus_available
from devstack.stack import ServiceSpec
from devstack.supervise import SupervisorOptions
from kafka_streams.settings import StreamsSettings
from kafka_to_elastic.settings import SinkSettings
from tweetpipe.config_sources import DEFAULT_USERNAME, DEV_PASSWORD
from tweetpipe.settings import SearchSettings, ServiceSettings

REALM = "microservices-realm"


class LocalPorts(BaseModel):
    broker: int = 9092
    registry: int = 8761
    config_server: int = 8888
    issuer: int = 8180
    gateway: int = 8080
    query_service: int = 8183
    web_client: int = 8501
    twitter_to_kafka: int = 8081
    kafka_to_elastic: int = 8082
    kafka_streams: int = 8083
    analytics_service: int = 8084
    prometheus: int = 9090


class StackSettings(ServiceSettings):
    """What `tweetpipe up` needs; the services read their own settings as usual."""

    application: ClassVar[str] = "tweetpipe"

    ports: LocalPorts = LocalPorts()
    search: SearchSettings = SearchSettings()
    prometheus: PrometheusOptions = PrometheusOptions()
    supervisor: SupervisorOptions = SupervisorOptions()
    drain: DrainOptions = DrainOptions()
    monitoring: bool = True
    """Start Prometheus when the `prometheus` binary is installed."""


class GeneratorRun(BaseModel):
    """The generator's options given on the command line."""

    rate: float = Field(default=20.0, ge=0)
    count: int | None = Field(default=None, ge=1)
    seed: int | None = None


DEFAULT_BURST = [
    {"term": "#LaunchDay", "after_s": 0, "duration_s": 300, "share": 0.1, "every_s": 1200}
]
"""A mild burst, so "Rising now" has news on a fresh stack: a tenth of the tweets carry
#LaunchDay for the first 5 minutes of every 20. `GENERATOR__BURSTS='[]'` turns it off."""


def local(port: int, path: str = "") -> str:
    return f"http://127.0.0.1:{port}{path}"


def issuer_url(ports: LocalPorts) -> str:
    return local(ports.issuer, f"/realms/{REALM}")


def services(settings: StackSettings, generator: GeneratorRun) -> list[ServiceSpec]:
    ports = settings.ports
    platform = {
        "CONFIG_SERVER_URL": local(ports.config_server),
        "CONFIG_SERVER_PASSWORD": DEV_PASSWORD,
        "CONFIG_SERVER_FAIL_FAST": "true",
    }
    auth = {"AUTH__ISSUER_URL": issuer_url(ports)}
    generator_env = {"GENERATOR__RATE": str(generator.rate)}
    if generator.count is not None:
        generator_env["GENERATOR__COUNT"] = str(generator.count)
    if generator.seed is not None:
        generator_env["GENERATOR__SEED"] = str(generator.seed)
    if "GENERATOR__BURSTS" not in os.environ:
        generator_env["GENERATOR__BURSTS"] = json.dumps(DEFAULT_BURST)
    return [
        ServiceSpec("eureka-server", "devstack.registry", ports.registry, platform=True),
        ServiceSpec(
            "config-server",
            "config_server",
            ports.config_server,
            env={"CONFIG_SERVER_PASSWORD": DEV_PASSWORD},
            platform=True,
        ),
        ServiceSpec("dev-issuer", "devstack.issuer", ports.issuer, platform=True),
        ServiceSpec(
            "kafka-to-elastic",
            "kafka_to_elastic",
            ports.kafka_to_elastic,
            env=platform,
            uses_broker=True,
        ),
        ServiceSpec(
            "kafka-streams-service",
            "kafka_streams",
            ports.kafka_streams,
            env={
                **platform,
                **auth,
                "STREAMS__STATE_DIR": str(settings.data_dir.resolve() / "streams"),
            },
            uses_broker=True,
        ),
        ServiceSpec(
            "analytics-service",
            "analytics_service",
            ports.analytics_service,
            env=platform | auth,
            uses_broker=True,
        ),
        ServiceSpec(
            "elastic-query-service",
            "query_service",
            ports.query_service,
            env={
                **platform,
                **auth,
                "ENRICHMENT__KAFKA_STREAMS_URL": local(ports.kafka_streams),
                "ENRICHMENT__ANALYTICS_URL": local(ports.analytics_service),
            },
        ),
        ServiceSpec(
            "gateway-service",
            "gateway",
            ports.gateway,
            env={**platform, **auth, "ROUTES": _routes(ports)},
        ),
        ServiceSpec(
            "web-client",
            "web_client",
            ports.web_client,
            env={
                "GATEWAY_URL": local(ports.gateway),
                "OIDC__ISSUER_URL": issuer_url(ports),
                "PUBLIC_URL": local(ports.web_client),
                **(
                    {
                        "PIPELINE__PROMETHEUS_URL": local(ports.prometheus),
                        "PIPELINE__SCRAPE_INTERVAL_S": str(settings.prometheus.scrape_interval_s),
                    }
                    if settings.monitoring and prometheus_available()
                    else {}
                ),
                "PIPELINE__METRICS_URLS": json.dumps(
                    {
                        "twitter-to-kafka": local(ports.twitter_to_kafka, "/metrics"),
                        "kafka-to-elastic": local(ports.kafka_to_elastic, "/metrics"),
                        "kafka-streams-service": local(ports.kafka_streams, "/metrics"),
                        "analytics-service": local(ports.analytics_service, "/metrics"),
                    }
                ),
            },
            health_path="/_stcore/health",
            scraped=False,
        ),
        ServiceSpec(
            "twitter-to-kafka",
            "twitter_to_kafka",
            ports.twitter_to_kafka,
            env=platform | generator_env,
            one_shot=generator.count is not None,
            feeds_broker=True,
            uses_broker=True,
        ),
    ]


def drain_streams(settings: StackSettings) -> list[Stream | ExportedLag]:
    """What Ctrl-C waits for: every consumer group of the pipeline, on the topic it reads (the
    groups the services use with their default settings, as `tweetpipe up` runs them)."""
    kafka = settings.kafka
    streams = StreamsSettings()
    split = streams.streams.application_id
    return [
        Stream("kafka-to-elastic", SinkSettings().sink.group_id, kafka.tweets_topic),
        Stream("kafka-streams-service (split)", split, kafka.tweets_topic),
        ExportedLag(
            "kafka-streams-service (count)",
            local(settings.ports.kafka_streams, "/metrics"),
            f"{split}-counter",
        ),
        Stream("analytics-service", AnalyticsSettings().analytics.group_id, kafka.analytics_topic),
        Stream(
            "analytics-service (hopping)",
            AnalyticsSettings().analytics.group_id,
            kafka.analytics_hopping_topic,
        ),
    ]


def base_env(settings: StackSettings, index_path: Path) -> dict[str, str]:
    """What every child shares: the profile, where data lives, the broker and the registry."""
    return {
        "PROFILE": "local",
        "DATA_DIR": str(settings.data_dir.resolve()),
        "KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{settings.ports.broker}",
        "SEARCH__TANTIVY_PATH": str(index_path),
        "EUREKA__SERVER_URL": local(settings.ports.registry, "/eureka"),
    }


def _routes(ports: LocalPorts) -> str:
    """The gateway's fixed instances on this machine, used until the registry answers."""
    routes = [
        ("elastic-query-service", "ELASTIC-QUERY-SERVICE", ports.query_service),
        ("analytics-service", "ANALYTICS-SERVICE", ports.analytics_service),
        ("kafka-streams-service", "KAFKA-STREAMS-SERVICE", ports.kafka_streams),
    ]
    return json.dumps([{"id": i, "service_id": s, "urls": [local(p)]} for i, s, p in routes])


def scrape_targets(specs: list[ServiceSpec]) -> list[ScrapeTarget]:
    return [
        ScrapeTarget(job=spec.name, address=f"127.0.0.1:{spec.admin_port}")
        for spec in specs
        if spec.scraped
    ]


def banner(settings: StackSettings, index_path: Path, prometheus_url: str | None) -> str:
    """What a person needs once everything is up: where to go, and how to get a token."""
    ports = settings.ports
    token_url = issuer_url(ports) + "/protocol/openid-connect/token"
    monitoring = prometheus_url or "not started (install Debian's `prometheus` package)"
    lines = [
        "",
        "tweetpipe is running (single-machine profile). Ctrl-C stops everything.",
        f"  web client        {local(ports.web_client)}  (sign in as app_super_user / welcome)",
        f"  entry point       {local(ports.gateway)}/elastic-query-service/documents/search"
        "?q=kafka  (gateway; bearer token)",
        f"  get a token       curl -s -d grant_type=password -d username=app_super_user"
        f" -d password=welcome -d client_id=elastic-query-web-client"
        f" -d client_secret=elastic-query-web-client-secret {token_url}",
        f"  query API docs    {local(ports.query_service)}/docs",
        f"  word counts       {local(ports.gateway)}/kafka-streams-service/words/top  (token)",
        f"  analytics         {local(ports.gateway)}/analytics-service/analytics/top  (token)",
        f"  Prometheus        {monitoring}",
        f"  Eureka registry   {local(ports.registry)}/eureka/apps",
        f"  config server     {local(ports.config_server)}/gateway-service/local"
        f"  (user {DEFAULT_USERNAME}, password {DEV_PASSWORD})",
        f"  Kafka broker      127.0.0.1:{ports.broker}",
        f"  search index      {index_path}",
        f"  logs (JSON)       {settings.data_dir.resolve() / 'logs'}",
        "  count tweets:     .venv/bin/tweetpipe search count",
        "  search tweets:    .venv/bin/tweetpipe search query kafka",
        "",
    ]
    return "\n".join(lines)
