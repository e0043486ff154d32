"""elastic-query-service settings: the search store it reads, the issuer it trusts, the SQL
database holding per-document permissions, and where by-text results get their word counts."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr

from tweetpipe.settings import AdminSettings, AuthSettings, SearchSettings, ServiceSettings

WordCountSource = Literal["none", "kafka-streams", "analytics"]


class EnrichmentSettings(BaseModel):
    """Word counts on by-text results: optional, and never allowed to slow a search down."""

    source: WordCountSource = "kafka-streams"
    kafka_streams_url: str = "http://127.0.0.1:8083"
    analytics_url: str = "http://127.0.0.1:8084"
    timeout_s: float = Field(default=0.5, gt=0)


class QuerySettings(ServiceSettings):
    application: ClassVar[str] = "elastic-query-service"

    search: SearchSettings = SearchSettings()
    auth: AuthSettings = AuthSettings()
    database_url: SecretStr | None = None
    """SQLAlchemy URL of the permissions database. Unset: a SQLite file in `data_dir`."""
    enrichment: EnrichmentSettings = EnrichmentSettings()
    admin: AdminSettings = AdminSettings(port=8183)
    """The one HTTP server of this service: the API plus `/health` and `/metrics`."""

    @property
    def sql_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'permissions.db'}"
