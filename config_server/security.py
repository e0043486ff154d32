"""HTTP basic auth for every config and cipher endpoint (`/health` and `/metrics` stay open)."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, SecretStr

from config_server.metrics import AUTH_FAILURES

log = logging.getLogger(__name__)
REALM = "config-server"
_basic = HTTPBasic(realm=REALM, auto_error=False)


class Credentials(BaseModel):
    username: str
    password: SecretStr


def require_user(
    request: Request,
    given: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> str:
    """The authenticated user name; 401 with `WWW-Authenticate: Basic` otherwise."""
    expected: Credentials = request.app.state.credentials
    if given is not None and _matches(given, expected):
        return given.username
    AUTH_FAILURES.inc()
    client = request.client.host if request.client else "unknown"
    log.warning(
        "refused %s %s from %s: %s",
        request.method,
        request.url.path,
        client,
        "no credentials" if given is None else f"wrong credentials for user {given.username!r}",
        extra={"client.address": client, "url.path": request.url.path},
    )
    raise HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="authentication required",
        headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
    )


def _matches(given: HTTPBasicCredentials, expected: Credentials) -> bool:
    user_ok = secrets.compare_digest(given.username.encode(), expected.username.encode())
    password = expected.password.get_secret_value().encode()
    password_ok = secrets.compare_digest(given.password.encode(), password)
    return user_ok and password_ok


User = Annotated[str, Depends(require_user)]
