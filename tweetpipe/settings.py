"""Settings shared by every service.

Precedence, highest first: constructor arguments (tests) > environment variables (nested with
`__`, e.g. `KAFKA__BOOTSTRAP_SERVERS`) > config server (Spring Cloud Config JSON) > YAML files in
`infra/config-repo/` > the defaults below. The defaults run the single-machine (`local`) profile
with no setup at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tweetpipe.config_sources import ConfigRepoSource, ConfigServerSource

Profile = Literal["local", "docker"]
REPO_ROOT = Path(__file__).resolve().parent.parent


def project_path(path: Path) -> Path:
    """Where a relative single-machine path (the index, the data directory) lives: under the
    project's checkout when tweetpipe runs from one, so `tweetpipe up` and `tweetpipe search`
    agree wherever they are started; outside a checkout, under the working directory."""
    if path.is_absolute():
        return path
    base = REPO_ROOT if (REPO_ROOT / "pyproject.toml").is_file() else Path.cwd()
    return base / path


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated `host:port` list."""
    tweets_topic: str = "twitter-topic"
    dlq_topic: str = "twitter-dlq"
    analytics_topic: str = "twitter-analytics-topic"
    """Tumbling-window counts (`{word, word_count, window_start, window_end, final}`)."""
    analytics_hopping_topic: str = "twitter-analytics-hopping-topic"
    """Hopping-window counts, same record shape: apart so that readers keyed by (word, window
    start) never mix a hopping window with the tumbling one starting at the same moment."""
    partitions: int = Field(default=3, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    session_timeout_ms: int = 6000
    """Short on purpose: a group join takes half of this on the local broker."""
    heartbeat_interval_ms: int = 2000
    max_poll_interval_ms: int = 300_000
    linger_ms: int = 5
    batch_size: int = 256 * 1024
    max_request_size: int = 1024 * 1024
    startup_timeout_s: float = 120.0
    """How long a service waits for the broker to appear before giving up."""

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]


class SearchSettings(BaseModel):
    backend: Literal["tantivy", "elasticsearch"] = "tantivy"
    index: str = "twitter-index"
    tantivy_path: Path = Path(".tweetpipe/index")
    tantivy_writer_heap_mb: int = Field(default=128, ge=16)
    tantivy_warm_interval_s: float = Field(default=1.0, ge=0)
    """Where aggregations have been asked, a new commit is served once they are computed on it
    in the background, and that warm-up starts at most this often: a commit is visible within
    about this long, as with Elasticsearch's `refresh_interval` (0: every commit is warmed)."""
    elasticsearch_hosts: str = "http://127.0.0.1:9200"
    """Comma-separated URLs."""
    elasticsearch_username: str | None = None
    elasticsearch_password: SecretStr | None = None
    request_timeout_s: float = 10.0

    @property
    def hosts(self) -> list[str]:
        return [h.strip() for h in self.elasticsearch_hosts.split(",") if h.strip()]


class AdminSettings(BaseModel):
    """Where a service serves `/health` and `/metrics`."""

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    """0 picks a free port (tests); each service sets its own default."""


class EurekaSettings(BaseModel):
    """Where the registry is and how this instance presents itself to it."""

    server_url: str | None = None
    """E.g. `http://127.0.0.1:8761/eureka`; unset: no registration."""
    instance_host: str | None = "127.0.0.1"
    """The host name others use to reach this instance; unset/empty: this machine's name."""
    instance_ip: str | None = None
    """Unset: resolved from `instance_host`."""
    prefer_ip: bool = False
    """Register the IP address as the host name (containers whose names others cannot resolve)."""
    renewal_interval_s: int = Field(default=30, ge=1)
    lease_duration_s: int = Field(default=90, ge=1)
    """The registry drops the instance when it has not renewed for this long."""
    metadata: dict[str, str] = Field(default_factory=dict)
    cache_s: float = Field(default=5.0, ge=0)
    """How long a lookup result is reused."""
    timeout_s: float = Field(default=2.0, gt=0)


class TracingSettings(BaseModel):
    zipkin_endpoint: str | None = None
    """Zipkin v2 JSON endpoint (e.g. `http://zipkin:9411/api/v2/spans`); unset = tracing off."""
    sample_ratio: float = Field(default=1.0, ge=0, le=1)
    """Share of new traces recorded; downstream stages follow the upstream decision. Client
    and producer calls outside any trace (background bookkeeping) are never recorded."""
    export_timeout_s: int = Field(default=10, ge=1)
    max_queue_size: int = Field(default=8192, ge=1)
    """Spans waiting for export; beyond it new spans are dropped rather than blocking work."""


class AuthSettings(BaseModel):
    issuer_url: str = "http://127.0.0.1:8180/realms/microservices-realm"
    audience: str | None = None
    """The audience required in `aud`. Unset: the service's own (see `for_audience`)."""
    jwks_url: str | None = None
    """Default: the issuer's `/protocol/openid-connect/certs` (Keycloak's layout)."""
    leeway_s: int = 30
    jwks_refresh_min_interval_s: float = 10.0
    http_timeout_s: float = 5.0
    accepted_cache_s: float = Field(default=30.0, ge=0)
    """How long an accepted token is remembered (never past its `exp`); 0 turns this off."""
    accepted_cache_size: int = Field(default=10_000, ge=1)

    def for_audience(self, default: str) -> AuthSettings:
        """These settings, requiring `default` in `aud` unless an audience was configured.

        The audience is not a field default in each service's settings because a nested model
        partly set from the environment (`AUTH__ISSUER_URL`) is rebuilt from the class defaults,
        which would silently swap a service's audience for another's."""
        return self if self.audience else self.model_copy(update={"audience": default})

    @property
    def certs_url(self) -> str:
        return self.jwks_url or f"{self.issuer_url.rstrip('/')}/protocol/openid-connect/certs"


class TweetLimits(BaseModel):
    """What every consumer of `twitter-topic` admits (the same rule in each, so a post is
    indexed and counted, or dead-lettered by both). Unknown fields are always admitted."""

    max_text_length: int = Field(default=25_000, ge=1)
    """Code points. The default admits the platform's long posts (25,000 characters); the
    generator writes classic 280-character tweets."""


DEFAULT_FILTER_KEYWORDS = ["Java", "Microservices", "Kafka", "Elasticsearch"]
"""The generator's filter-stream keywords: in nearly every tweet, so never news."""


class TrendingOptions(BaseModel):
    """What "rising now" means, the same in the stream stage and the analytics service."""

    baseline_windows: int = Field(default=6, ge=1, le=100)
    """The term's baseline: its mean count over this many earlier windows of the same size,
    back to back before the latest one (missing ones count 0)."""
    min_count: int = Field(default=5, ge=1)
    """Fewer occurrences in the latest window than this is noise, whatever the score."""
    min_score: float = Field(default=3.0, ge=0)
    """score = (count - baseline) / sqrt(baseline + 1): how many "Poisson standard
    deviations" the count is above its own baseline."""
    exclude_stop_words: bool = True
    """Leave out common words (`tweetpipe.text.STOP_WORDS`)."""
    excluded_terms: list[str] = Field(default_factory=lambda: list(DEFAULT_FILTER_KEYWORDS))
    """Also left out: by default the filter keywords (set to the generator's keywords)."""


class BatchOptions(BaseModel):
    """Settings every batch → write → commit stage has; stages subclass it to add their own."""

    batch_size: int = Field(default=5000, ge=1)
    """Most records written (and committed) together."""
    batch_wait_ms: int = Field(default=200, ge=0)
    """How long to gather a batch after its first record: bounds freshness."""
    retry_initial_s: float = Field(default=0.2, gt=0)
    retry_max_s: float = Field(default=30.0, gt=0)
    progress_interval_s: float = Field(default=5.0, gt=0)


class ServiceSettings(BaseSettings):
    """Base of every service's settings; subclasses set `application` and add their sections."""

    application: ClassVar[str] = "application"

    model_config = SettingsConfigDict(
        env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )

    profile: Profile = "local"
    config_server_url: str | None = None
    config_server_username: str | None = None
    config_server_password: SecretStr | None = None
    config_server_fail_fast: bool = False
    config_server_attempts: int = Field(default=6, ge=1)
    config_server_label: str | None = None
    """Branch, tag or commit to ask a git-backed config server for; unset: its default."""
    config_repo_dir: Path = REPO_ROOT / "infra" / "config-repo"
    log_level: str = "INFO"
    log_file: Path | None = None
    data_dir: Path = Path(".tweetpipe")
    kafka: KafkaSettings = KafkaSettings()
    tweets: TweetLimits = TweetLimits()
    admin: AdminSettings = AdminSettings()
    tracing: TracingSettings = TracingSettings()
    eureka: EurekaSettings = EurekaSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        bootstrap = _Bootstrap(init_settings, env_settings)
        return (
            init_settings,
            env_settings,
            ConfigServerSource(settings_cls, cls.application, bootstrap),
            ConfigRepoSource(settings_cls, cls.application, bootstrap),
        )


class _Bootstrap:
    """The few settings needed to find the other sources, read from init args and env only."""

    def __init__(self, *sources: PydanticBaseSettingsSource) -> None:
        self._values: dict[str, object] = {}
        for source in reversed(sources):
            self._values.update(source())

    def get(self, name: str, default: object = None) -> object:
        value = self._values.get(name)
        if value is None:
            return default
        return value.get_secret_value() if isinstance(value, SecretStr) else value
