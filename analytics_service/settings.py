"""analytics-service settings: where the counts come from (Kafka), where they go (SQL)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from tweetpipe.settings import (
    AdminSettings,
    AuthSettings,
    BatchOptions,
    ServiceSettings,
    TrendingOptions,
)


class AnalyticsOptions(BatchOptions):
    """Batches are upserted in one SQL transaction each, then committed."""

    group_id: str = "analytics-service"
    database_startup_timeout_s: float = Field(default=120.0, gt=0)
    """How long to wait for the database at start-up (it may start after this service)."""
    isolation_level: Literal["read_committed", "read_uncommitted"] = "read_committed"
    """The stream stage publishes in Kafka transactions: read only what it committed."""


class AnalyticsSettings(ServiceSettings):
    application: ClassVar[str] = "analytics-service"

    database_url: SecretStr | None = None
    """SQLAlchemy URL (it may hold a password, hence secret). Unset: a SQLite file in
    `data_dir`, the single-machine profile; the docker profile points at PostgreSQL."""
    analytics: AnalyticsOptions = AnalyticsOptions()
    trending: TrendingOptions = TrendingOptions()
    """What `GET /analytics/trending` calls rising."""
    auth: AuthSettings = AuthSettings()
    admin: AdminSettings = AdminSettings(port=8084)
    """The one HTTP server of this service: the REST API and `/health`, `/metrics`."""

    @property
    def sql_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'analytics.db'}"
