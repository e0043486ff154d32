"""The realm export (Keycloak's JSON format) as the issuer's users, roles and clients."""

from __future__ import annotations

import fnmatch
import hmac
from pathlib import Path
from typing import Any

import orjson
from authlib.oauth2.rfc6749 import ClientMixin
from pydantic import BaseModel, ConfigDict


class User(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    username: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    password: str | None = None
    roles: frozenset[str] = frozenset()

    def get_user_id(self) -> str:  # authlib asks users for their id
        return self.id


class Client(ClientMixin):  # type: ignore[misc]
    """A realm client in the shape authlib's grants query."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.client_id: str = data["clientId"]
        self.secret: str | None = data.get("secret")
        self.public = bool(data.get("publicClient", False))
        self.redirect_uris: list[str] = list(data.get("redirectUris", []))
        self.standard_flow = bool(data.get("standardFlowEnabled", True))
        self.direct_access = bool(data.get("directAccessGrantsEnabled", False))
        self.service_accounts = bool(data.get("serviceAccountsEnabled", False))
        attributes = data.get("attributes", {})
        self.pkce_method: str | None = attributes.get("pkce.code.challenge.method") or None
        self.audiences = [
            m["config"]["included.client.audience"]
            for m in data.get("protocolMappers", [])
            if m.get("protocolMapper") == "oidc-audience-mapper"
        ]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        exact = [u for u in self.redirect_uris if "*" not in u]
        return exact[0] if exact else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or "openid profile email"

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(fnmatch.fnmatchcase(redirect_uri, pattern) for pattern in self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret is not None and hmac.compare_digest(self.secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.standard_flow

    def check_grant_type(self, grant_type: str) -> bool:
        return {
            "authorization_code": self.standard_flow,
            "password": self.direct_access,
            "client_credentials": self.service_accounts and not self.public,
            "refresh_token": True,
        }.get(grant_type, False)


class Realm:
    def __init__(self, data: dict[str, Any]) -> None:
        self.name: str = data["realm"]
        self.access_token_lifespan_s = int(data.get("accessTokenLifespan", 300))
        self.sso_idle_s = int(data.get("ssoSessionIdleTimeout", 1800))
        groups = {g["path"]: set(g.get("realmRoles", [])) for g in data.get("groups", [])}
        self.users: dict[str, User] = {}
        self.service_accounts: dict[str, User] = {}
        for raw in data.get("users", []):
            if not raw.get("enabled", True):
                continue
            roles = set(raw.get("realmRoles", []))
            for path in raw.get("groups", []):
                roles |= groups.get(path, set())
            passwords = [c["value"] for c in raw.get("credentials", []) if c["type"] == "password"]
            user = User(
                id=raw["id"],
                username=raw["username"],
                email=raw.get("email"),
                first_name=raw.get("firstName"),
                last_name=raw.get("lastName"),
                password=passwords[0] if passwords else None,
                roles=frozenset(roles),
            )
            if raw.get("serviceAccountClientId"):
                self.service_accounts[raw["serviceAccountClientId"]] = user
            else:
                self.users[user.username] = user
        self.clients = {c["clientId"]: Client(c) for c in data.get("clients", [])}

    @classmethod
    def load(cls, path: Path) -> Realm:
        return cls(orjson.loads(path.read_bytes()))

    def authenticate(self, username: str, password: str) -> User | None:
        user = self.users.get(username)
        if user is None or user.password is None:
            return None
        return user if hmac.compare_digest(user.password, password) else None

    def user_by_id(self, user_id: str) -> User | None:
        for user in [*self.users.values(), *self.service_accounts.values()]:
            if user.id == user_id:
                return user
        return None
