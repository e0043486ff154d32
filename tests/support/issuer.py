"""The dev issuer as a real child process, plus what tests need to talk to it or forge tokens."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from joserfc import jwt
from joserfc.jwk import RSAKey
from keycloak import KeycloakOpenID

from devstack.issuer.keys import load_or_create
from tests.support.ports import free_port
from tests.support.services import ServiceProcess
from tweetpipe.settings import REPO_ROOT

REALM = "microservices-realm"
REALM_FILE = REPO_ROOT / "infra" / "keycloak" / "microservices-realm.json"
WEB_CLIENT = "elastic-query-web-client"
SERVICE_CLIENT = "elastic-query-service"
PASSWORD = "welcome"


def client_secret(client_id: str) -> str:
    realm = orjson.loads(REALM_FILE.read_bytes())
    return next(str(c["secret"]) for c in realm["clients"] if c["clientId"] == client_id)


class DevIssuer:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.realm_url = f"{self.base_url}/realms/{REALM}"
        self.token_url = f"{self.realm_url}/protocol/openid-connect/token"
        self.key_file = workdir / "issuer-key.pem"
        self.process = ServiceProcess(
            "devstack.issuer",
            {
                "ADMIN__PORT": str(self.port),
                "KEY_FILE": str(self.key_file),
                "DATA_DIR": str(workdir),
                "CONFIG_REPO_DIR": str(workdir / "no-config-repo"),
            },
            workdir / "issuer.log",
        )

    def start(self) -> DevIssuer:
        self.process.start().wait_healthy(self.port)
        return self

    def stop(self) -> None:
        self.process.kill()

    def restart_with_new_key(self) -> DevIssuer:
        """Key rotation: same port and realm, a freshly generated signing key (new `kid`)."""
        self.stop()
        self.key_file.unlink()
        return self.start()

    @property
    def key(self) -> RSAKey:
        return load_or_create(self.key_file)

    def openid(self, client_id: str = WEB_CLIENT) -> KeycloakOpenID:
        return KeycloakOpenID(
            server_url=self.base_url + "/",
            realm_name=REALM,
            client_id=client_id,
            client_secret_key=client_secret(client_id),
        )

    def password_token(self, username: str) -> str:
        token: str = self.openid().token(username, PASSWORD)["access_token"]
        return token

    def service_token(self) -> str:
        token: str = self.openid(SERVICE_CLIENT).token(grant_type="client_credentials")[
            "access_token"
        ]
        return token

    def claims(self, **overrides: Any) -> dict[str, Any]:
        """Claims of a valid super-user access token, changed by `overrides` (None deletes)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.realm_url,
            "aud": ["elastic-query-service", "analytics-service", "kafka-streams-service"],
            "sub": "4c1f5a3e-1d2b-4b8e-9a37-2f0d6c1e7a03",
            "azp": WEB_CLIENT,
            "typ": "Bearer",
            "iat": now,
            "exp": now + 300,
            "scope": "openid profile email",
            "preferred_username": "app_super_user",
            "realm_access": {"roles": ["app_super_user_role", "app_user_role"]},
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def forge(self, key: RSAKey | None = None, kid: str | None = None, **overrides: Any) -> str:
        """A token signed with the issuer's key (or `key`), claims as `claims(**overrides)`."""
        signer = key or self.key
        header = {"alg": "RS256", "typ": "JWT", "kid": kid or self.key.kid}
        return jwt.encode(header, self.claims(**overrides), signer)


def bearer(token: str | None) -> dict[str, str]:
    """The `Authorization` header for `token`; no header for None."""
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


def demo_user_token(realm_url: str, username: str = "app_super_user") -> str:
    """A demo user's access token by the password grant, from an issuer the test did not start
    itself (`tweetpipe up`'s dev issuer, Keycloak's stand-in in the rehearsal)."""
    reply = httpx.post(
        f"{realm_url}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": PASSWORD,
            "client_id": WEB_CLIENT,
            "client_secret": client_secret(WEB_CLIENT),
        },
        timeout=10,
    )
    reply.raise_for_status()
    token: str = reply.json()["access_token"]
    return token
