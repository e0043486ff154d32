"""The realm export (Keycloak's JSON format) as the issuer's users, roles and clients.

Only the part of the format the issuer acts on is modelled; everything else Keycloak exports
is ignored. A user's realm roles are its direct mappings plus those of its groups (and of their
parent groups, as in Keycloak). Disabled users and clients are left out: they cannot sign in.
"""

from __future__ import annotations

import fnmatch
import hmac
from pathlib import Path
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

DEFAULT_SCOPE = "openid profile email"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def redirect_uri_allowed(redirect_uri: str, patterns: list[str]) -> bool:
    """Keycloak's patterns (exact, or a trailing `*` matching any rest of the URI), plus
    RFC 8252 §7.3: a registered `http` loopback pattern (127.0.0.1, localhost, [::1]) accepts
    the same URI on any port, since a native or local app gets its port when it starts."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(redirect_uri, pattern):
            return True
        registered, requested = _host_and_rest(pattern), _host_and_rest(redirect_uri)
        if registered is None or requested is None or registered[0] not in LOOPBACK_HOSTS:
            continue
        if registered[0] == requested[0] and fnmatch.fnmatchcase(requested[1], registered[1]):
            return True
    return False


def _host_and_rest(uri: str) -> tuple[str, str] | None:
    """An `http` URI's host and what follows its host and port (path, query); None for
    anything else (other schemes, user info, a port that is not a number)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme != "http" or "@" in parts.netloc or not parts.netloc:
        return None
    netloc = parts.netloc
    if netloc.startswith("["):
        host, bracket, port = netloc.partition("]")
        host += bracket
        port = port.removeprefix(":")
    else:
        host, _, port = netloc.partition(":")
    if port and not port.isdigit():
        return None
    return host.lower(), uri[len("http://") + len(netloc) :]


class _Export(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class CredentialExport(_Export):
    type: str
    value: str | None = None
    temporary: bool = False


class UserExport(_Export):
    id: str
    username: str
    enabled: bool = True
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    credentials: list[CredentialExport] = []
    realm_roles: list[str] = []
    groups: list[str] = []
    service_account_client_id: str | None = None


class GroupExport(_Export):
    name: str
    path: str | None = None
    realm_roles: list[str] = []
    sub_groups: list[GroupExport] = []


class MapperExport(_Export):
    name: str
    protocol_mapper: str
    config: dict[str, str] = {}


class ClientExport(_Export):
    client_id: str
    enabled: bool = True
    secret: str | None = None
    public_client: bool = False
    standard_flow_enabled: bool = True
    direct_access_grants_enabled: bool = False
    service_accounts_enabled: bool = False
    redirect_uris: list[str] = []
    attributes: dict[str, str] = {}
    protocol_mappers: list[MapperExport] = []


class RealmExport(_Export):
    realm: str
    access_token_lifespan: int = 300
    sso_session_idle_timeout: int = 1800
    groups: list[GroupExport] = []
    users: list[UserExport] = []
    clients: list[ClientExport] = []


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

    def __init__(self, export: ClientExport) -> None:
        self.client_id = export.client_id
        self.secret = export.secret
        self.public = export.public_client
        self.redirect_uris = export.redirect_uris
        self.standard_flow = export.standard_flow_enabled
        self.direct_access = export.direct_access_grants_enabled
        self.service_accounts = export.service_accounts_enabled
        self.pkce_method = export.attributes.get("pkce.code.challenge.method") or None
        self.audiences = [
            m.config["included.client.audience"]
            for m in export.protocol_mappers
            if m.protocol_mapper == "oidc-audience-mapper"
            and m.config.get("access.token.claim", "true") == "true"
            and "included.client.audience" in m.config
        ]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        exact = [u for u in self.redirect_uris if "*" not in u]
        return exact[0] if exact else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or DEFAULT_SCOPE

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri_allowed(redirect_uri, self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret is not None and hmac.compare_digest(
            self.secret.encode(), client_secret.encode()
        )

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
    def __init__(self, export: RealmExport) -> None:
        self.name = export.realm
        self.access_token_lifespan_s = export.access_token_lifespan
        self.sso_idle_s = export.sso_session_idle_timeout
        group_roles = _group_roles(export.groups, "", frozenset())
        self.users: dict[str, User] = {}
        self.service_accounts: dict[str, User] = {}
        for raw in export.users:
            if not raw.enabled:
                continue
            roles = set(raw.realm_roles)
            for path in raw.groups:
                roles |= group_roles.get(path, frozenset())
            passwords = [c.value for c in raw.credentials if c.type == "password" and c.value]
            user = User(
                id=raw.id,
                username=raw.username,
                email=raw.email,
                first_name=raw.first_name,
                last_name=raw.last_name,
                password=passwords[0] if passwords else None,
                roles=frozenset(roles),
            )
            if raw.service_account_client_id:
                self.service_accounts[raw.service_account_client_id] = user
            else:
                self.users[user.username] = user
        self._by_id = {u.id: u for u in [*self.users.values(), *self.service_accounts.values()]}
        self.clients = {c.client_id: Client(c) for c in export.clients if c.enabled}

    @classmethod
    def load(cls, path: Path) -> Realm:
        """Raises OSError or pydantic's ValidationError (a ValueError) on a bad file."""
        return cls(RealmExport.model_validate_json(path.read_bytes()))

    def authenticate(self, username: str, password: str) -> User | None:
        user = self.users.get(username)
        if user is None or user.password is None:
            return None
        matches = hmac.compare_digest(user.password.encode(), password.encode())
        return user if matches else None

    def user_by_id(self, user_id: str) -> User | None:
        return self._by_id.get(user_id)


def _group_roles(
    groups: list[GroupExport], parent: str, inherited: frozenset[str]
) -> dict[str, frozenset[str]]:
    """Group path → realm roles, each group holding its ancestors' roles too."""
    result: dict[str, frozenset[str]] = {}
    for group in groups:
        path = group.path or f"{parent}/{group.name}"
        roles = inherited | frozenset(group.realm_roles)
        result[path] = roles
        result |= _group_roles(group.sub_groups, path, roles)
    return result
