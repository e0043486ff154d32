"""dev-issuer: a Keycloak-compatible OpenID provider for the single-machine profile.

- `settings.py`: where it listens, the realm file, token lifetimes, `allow_remote`.
- `realm.py`: users, roles (groups + direct mappings), clients and audience mappers, read from
  the same realm export Keycloak imports (`infra/keycloak/microservices-realm.json`).
- `keys.py`: the RSA signing key, kept under `data_dir` so tokens survive a restart.
- `server.py`: authlib's authorization server and grants (password, client credentials,
  authorization code + PKCE, refresh with rotation), the token minting and in-memory sessions.
- `routes.py`: Keycloak's URL layout; `login.py`: the login form.
- `/health` and `/metrics` as on every service.
"""

from __future__ import annotations

import logging

from authlib.oauth2 import OAuth2Error
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from devstack.issuer.keys import load_or_create
from devstack.issuer.realm import Realm
from devstack.issuer.routes import realm_router
from devstack.issuer.server import Issuer
from devstack.issuer.settings import IssuerSettings
from devstack.loopback import refusal
from tweetpipe.admin import admin_router
from tweetpipe.logs import configure_logging
from tweetpipe.serving import serve

SERVICE = "dev-issuer"
log = logging.getLogger(__name__)


def create_app(issuer: Issuer, base_url: str, backchannel_dynamic: bool = False) -> FastAPI:
    app = FastAPI(title=SERVICE, docs_url=None, redoc_url=None)
    app.include_router(realm_router(issuer, base_url, backchannel_dynamic))
    app.include_router(admin_router(SERVICE, {}))
    app.add_exception_handler(OAuth2Error, _oauth_error)
    return app


async def _oauth_error(request: Request, error: Exception) -> JSONResponse:
    """An OAuth error raised outside a grant (e.g. plain http to a non-loopback host name,
    which authlib refuses): the usual JSON error, never a stack trace."""
    assert isinstance(error, OAuth2Error)
    log.info("refused %s %s: %s", request.method, request.url.path, error.error)
    body = {"error": error.error, "error_description": error.get_error_description()}
    return JSONResponse(body, status_code=error.status_code or 400)


def run(settings: IssuerSettings) -> int:
    """Serve until SIGTERM/SIGINT (exit 0); exit 2 on an unsafe address or an unreadable realm."""
    configure_logging(SERVICE, settings.log_level, settings.log_file)
    host, port = settings.admin.host, settings.admin.port
    override = "ALLOW_REMOTE=true, only on a private network you trust,"
    if reason := refusal("the dev issuer", host, allowed=settings.allow_remote, override=override):
        log.error("%s (it is for the single-machine profile only)", reason)
        return 2
    try:
        realm = Realm.load(settings.realm_file)
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        log.error("cannot read the realm export %s: %r", settings.realm_file, exc)
        return 2
    if settings.access_token_lifespan_s is not None:
        realm.access_token_lifespan_s = settings.access_token_lifespan_s
    key = load_or_create(settings.key_file or settings.data_dir / "issuer-key.pem")
    base_url = (settings.public_url or f"http://{host}:{port}").rstrip("/")
    issuer = Issuer(
        realm, key, f"{base_url}/realms/{realm.name}", settings.refresh_token_lifespan_s
    )
    log.warning(
        "DEV ISSUER for the single-machine profile only — not an identity server for production "
        "(realm %s from %s, %d users, %d clients)",
        realm.name,
        settings.realm_file,
        len(realm.users),
        len(realm.clients),
    )
    log.info("issuer %s/realms/%s on http://%s:%d", base_url, realm.name, host, port)
    serve(create_app(issuer, base_url, settings.backchannel_dynamic), host, port)
    return 0
