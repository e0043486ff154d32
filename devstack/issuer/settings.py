"""dev-issuer settings: where it listens, which realm it serves, how long tokens live."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from tweetpipe.settings import REPO_ROOT, AdminSettings, ServiceSettings


class IssuerSettings(ServiceSettings):
    """Host and port are `admin.host`/`admin.port` (`ADMIN__HOST`, `ADMIN__PORT`), the one HTTP
    server every tweetpipe service has; the issuer serves its realm there too."""

    application: ClassVar[str] = "dev-issuer"

    admin: AdminSettings = AdminSettings(port=8180)
    realm_file: Path = REPO_ROOT / "infra" / "keycloak" / "microservices-realm.json"
    """The realm export Keycloak imports in the cluster: one source of truth for both."""
    key_file: Path | None = None
    """PEM of the signing key; default `<data_dir>/issuer-key.pem` (created when missing)."""
    public_url: str | None = None
    """How clients reach the issuer (the `iss` prefix); default http://{host}:{port}."""
    backchannel_dynamic: bool = False
    """Keycloak's `KC_HOSTNAME_BACKCHANNEL_DYNAMIC`: a discovery document fetched at another URL
    than `public_url` (a container's service name) names its token, userinfo and keys endpoints
    there; the issuer in tokens and the login and logout pages stay at `public_url`."""
    allow_remote: bool = False
    """Bind a non-loopback address. The dev issuer is not an identity server for production."""
    access_token_lifespan_s: int | None = Field(default=None, ge=1)
    """Overrides the realm's `accessTokenLifespan` (300 s in the realm export)."""
    refresh_token_lifespan_s: int | None = Field(default=None, ge=1)
    """Overrides the realm's `ssoSessionIdleTimeout`, which bounds refresh tokens (1800 s)."""
