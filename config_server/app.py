"""config-server: the Spring Cloud Config protocol over `infra/config-repo/` or a git repository.

- `api.py`: the HTTP API (environments, documents, encrypt/decrypt);
- `backends.py`: where files come from (directory, or git at a label);
- `environment.py`: the `Environment` document and its renderings;
- `ciphers.py`: `{cipher}` values;
- `security.py`: basic auth on everything but `/health` and `/metrics`.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from config_server import api
from config_server.backends import BackendUnavailable, ConfigBackend, NoSuchLabel, make_backend
from config_server.ciphers import Cipher
from config_server.environment import BadRequest
from config_server.metrics import REQUESTS
from config_server.security import Credentials
from config_server.settings import ConfigServerSettings
from tweetpipe.admin import admin_router
from tweetpipe.config_layout import ConfigFileError
from tweetpipe.config_sources import DEV_PASSWORD
from tweetpipe.runtime import ServiceRuntime
from tweetpipe.telemetry import instrument_app

SERVICE = "config-server"
log = logging.getLogger(__name__)

_ERRORS: dict[type[Exception], tuple[int, str]] = {
    BadRequest: (400, "bad_request"),
    NoSuchLabel: (404, "not_found"),
    ConfigFileError: (500, "bad_config_file"),
    BackendUnavailable: (503, "unavailable"),
}


def create_app(backend: ConfigBackend, cipher: Cipher | None, credentials: Credentials) -> FastAPI:
    app = FastAPI(title=SERVICE, description="Spring Cloud Config protocol server.")
    app.state.backend = backend
    app.state.cipher = cipher
    app.state.credentials = credentials
    app.include_router(admin_router(SERVICE, {"repository": backend.ping}))
    app.include_router(api.router)
    for error in _ERRORS:
        app.add_exception_handler(error, _config_error)
    return instrument_app(app)


async def _config_error(request: Request, error: Exception) -> JSONResponse:
    status, outcome = _ERRORS[type(error)]
    REQUESTS.labels("config", outcome).inc()
    log_at = logging.ERROR if status >= 500 else logging.INFO
    log.log(log_at, "%s %s: %s", request.method, request.url.path, error)
    return JSONResponse({"detail": str(error)}, status_code=status)


def credentials_for(settings: ConfigServerSettings) -> Credentials | None:
    """The configured credentials; the dev password only in the `local` profile."""
    if settings.config_server_password is not None:
        return Credentials(
            username=settings.config_server_username, password=settings.config_server_password
        )
    if settings.profile != "local":
        return None
    log.warning(
        "single-machine profile: config server user %r with the development password %r "
        "(set CONFIG_SERVER_PASSWORD to choose one)",
        settings.config_server_username,
        DEV_PASSWORD,
    )
    return Credentials(username=settings.config_server_username, password=DEV_PASSWORD)


def run(settings: ConfigServerSettings) -> int:
    """Serve until SIGTERM/SIGINT (0); refuse to start without safe settings (2)."""
    with ServiceRuntime(SERVICE, settings) as runtime:
        credentials = credentials_for(settings)
        if credentials is None:
            log.error(
                "no password configured for the %s profile: set CONFIG_SERVER_PASSWORD; "
                "only the local profile has a development default",
                settings.profile,
            )
            return 2
        try:
            backend = make_backend(settings.repo)
        except ValueError as exc:
            log.error("cannot start: %s", exc)
            return 2
        cipher = None
        if settings.encrypt_key is not None:
            cipher = Cipher(settings.encrypt_key.get_secret_value(), settings.encrypt_salt)
        else:
            log.warning("no ENCRYPT_KEY: {cipher} values are served as invalid, /encrypt is off")
        log.info("serving %s (profile %s)", backend.describe(), settings.profile)
        runtime.serve(create_app(backend, cipher, credentials))
    return runtime.exit_code
