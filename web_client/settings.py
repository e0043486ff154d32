"""web-client settings: where the gateway and the OpenID provider are, the URL browsers use to
reach this app (the base of the login redirect), and which `/metrics` the Pipeline page reads."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, Field, SecretStr

from tweetpipe.settings import REPO_ROOT, AdminSettings, ServiceSettings

LOCAL_METRICS_URLS = {
    "twitter-to-kafka": "http://127.0.0.1:8081/metrics",
    "kafka-to-elastic": "http://127.0.0.1:8082/metrics",
    "kafka-streams-service": "http://127.0.0.1:8083/metrics",
    "analytics-service": "http://127.0.0.1:8084/metrics",
}


class OidcSettings(BaseModel):
    issuer_url: str = "http://127.0.0.1:8180/realms/microservices-realm"
    """The realm's issuer as browsers reach it (the login page and logout are opened there)."""
    server_url: str | None = None
    """Where this app itself fetches the discovery document when that differs from what a
    browser uses (a container reaching Keycloak by its service name); default `issuer_url`."""
    client_id: str = "elastic-query-web-client"
    client_secret: SecretStr = SecretStr("elastic-query-web-client-secret")
    """The realm export's development secret; a real deployment sets `OIDC__CLIENT_SECRET`."""
    scope: str = "openid profile email"
    refresh_margin_s: float = Field(default=30.0, ge=0)
    """Refresh the access token when it has less than this left."""
    login_timeout_s: float = Field(default=600.0, gt=0)
    """How long a started login (state and PKCE verifier) waits for the browser to return."""
    timeout_s: float = Field(default=5.0, gt=0)

    @property
    def discovery_url(self) -> str:
        base = (self.server_url or self.issuer_url).rstrip("/")
        return f"{base}/.well-known/openid-configuration"


class PipelineSettings(BaseModel):
    metrics_urls: dict[str, str] = Field(default_factory=lambda: dict(LOCAL_METRICS_URLS))
    """Service name → its Prometheus `/metrics` URL (`PIPELINE__METRICS_URLS` as a JSON object)."""
    timeout_s: float = Field(default=2.0, gt=0)
    prometheus_url: str | None = None
    """The Prometheus the history charts read (`tweetpipe up` sets its own); unset: no history,
    the page shows the figures from `metrics_urls` and says why."""
    scrape_interval_s: float = Field(default=5.0, gt=0)
    """That Prometheus' scrape interval: `$__rate_interval` is computed from it, as in Grafana."""
    dashboards_dir: Path = REPO_ROOT / "infra" / "grafana" / "dashboards"
    """The Grafana dashboard files whose PromQL the charts run."""


class WebClientSettings(ServiceSettings):
    application: ClassVar[str] = "web-client"

    gateway_url: str = "http://127.0.0.1:8080"
    """Every API call goes through the gateway, with the signed-in user's token."""
    public_url: str | None = None
    """How browsers reach this app: the login redirect URI and the page logout returns to.
    Default: http://127.0.0.1:{admin.port} (http://127.0.0.1:8501)."""
    oidc: OidcSettings = OidcSettings()
    pipeline: PipelineSettings = PipelineSettings()
    api_timeout_s: float = Field(default=10.0, gt=0)
    admin: AdminSettings = AdminSettings(port=8501)
    """Where Streamlit listens (`ADMIN__HOST`, `ADMIN__PORT`); it serves `/_stcore/health`."""

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://127.0.0.1:{self.admin.port}").rstrip("/")

    @property
    def redirect_uri(self) -> str:
        return self.base_url + "/"
