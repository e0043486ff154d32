"""authlib's OAuth 2 authorization server, wired to the realm and to Starlette requests.

Grants: password, client credentials, authorization code with PKCE (S256 required when the
client asks for it, as Keycloak's `pkce.code.challenge.method` does), refresh token with
rotation. Codes, refresh tokens and login sessions live in memory.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    JsonRequest,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from prometheus_client import Counter
from starlette.responses import JSONResponse, RedirectResponse, Response

from devstack.issuer.realm import Client, Realm, User

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
KNOWN_GRANTS = {
    "password",
    "client_credentials",
    "authorization_code",
    "refresh_token",
    "token",
    "authorization",
    "logout",
}
CODE_TTL_S = 60
ISSUED = Counter("tweetpipe_issuer_tokens_issued_total", "Tokens issued, by grant", ["grant"])
REJECTED = Counter(
    "tweetpipe_issuer_requests_rejected_total",
    "Token and authorization requests refused, by grant type (or endpoint) and OAuth error",
    ["grant", "error"],
)
log = logging.getLogger(__name__)


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, values: dict[str, str]) -> None:
        self._values = values

    @property
    def data(self) -> dict[str, str]:
        return self._values

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        result: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._values.items():
            result[key].append(value)
        return result


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """A Starlette request whose query and form were read beforehand (authlib is sync)."""

    def __init__(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        values: dict[str, str],
        endpoint: str = "token",
    ) -> None:
        super().__init__(method, url, headers=headers)
        self.payload = FormPayload(values)
        self._values = values
        self.endpoint = endpoint
        """`token`, `authorization` or `logout`: labels refusals that have no grant type."""

    @property
    def args(self) -> dict[str, str]:
        return self._values

    @property
    def form(self) -> dict[str, str]:
        return self._values


@dataclass
class AuthorizationCode:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user_id: str
    session_id: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float = field(default_factory=lambda: time.time() + CODE_TTL_S)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class RefreshToken:
    token: str
    client_id: str
    user_id: str
    scope: str
    session_id: str
    expires_at: float

    def check_client(self, client: Client) -> bool:
        return bool(client.client_id == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.expires_at - time.time())

    def is_expired(self) -> bool:
        return time.time() > self.expires_at

    def is_revoked(self) -> bool:
        return False


class Memory:
    """Codes, refresh tokens and login sessions (browser SSO), guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.sessions: dict[str, str] = {}
        """session id → user id"""
        self.ended: set[str] = set()
        """Sessions logged out: their access tokens no longer get userinfo, as in Keycloak."""

    def end_session(self, session_id: str) -> None:
        with self.lock:
            self.ended.add(session_id)
            self.sessions.pop(session_id, None)
            for token in [t for t, r in self.refresh_tokens.items() if r.session_id == session_id]:
                del self.refresh_tokens[token]


class Issuer(AuthorizationServer):  # type: ignore[misc]
    def __init__(
        self, realm: Realm, key: RSAKey, issuer_url: str, refresh_lifespan_s: int | None = None
    ) -> None:
        super().__init__(scopes_supported=None)
        self.realm = realm
        self.key = key
        self.issuer_url = issuer_url
        self.refresh_lifespan_s = refresh_lifespan_s or realm.sso_idle_s
        """Keycloak's refresh tokens live as long as the idle session (`ssoSessionIdleTimeout`)."""
        self.memory = Memory()
        self.register_token_generator("default", self._tokens)
        self.register_grant(PasswordGrant)
        self.register_grant(ClientCredentialsGrant)
        # required=True: public clients must use PKCE; CodeGrant also demands it of any client
        # whose realm entry sets `pkce.code.challenge.method`.
        self.register_grant(CodeGrant, [CodeChallenge(required=True)])
        self.register_grant(RefreshGrant)

    # --- authlib's framework hooks -------------------------------------------------------

    def query_client(self, client_id: str) -> Client | None:
        return self.realm.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        ISSUED.labels(request.payload.grant_type or "authorization_code").inc()

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: FormRequest) -> FormRequest:
        return request

    def create_json_request(self, request: Any) -> JsonRequest:
        raise NotImplementedError("the issuer has no JSON endpoints")

    def handle_error_response(self, request: FormRequest, error: OAuth2Error) -> Response:
        """A failed client authentication is always 401 (authlib says 400 for some)."""
        if error.error == "invalid_client":
            error.status_code = 401
        self.record_refusal(request, error)
        response: Response = super().handle_error_response(request, error)
        return response

    def record_refusal(self, request: FormRequest, error: OAuth2Error) -> None:
        grant = request.payload.grant_type or request.endpoint
        REJECTED.labels(grant if grant in KNOWN_GRANTS else "other", error.error).inc()
        log.info(
            "refused a request (%s) from client %r: %s (%s)",
            grant,
            request.payload.client_id,
            error.error,
            error.description or "",
            extra={"event.reason": error.error, "client.id": request.payload.client_id},
        )

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        headers_dict = dict(headers)
        if isinstance(body, dict):
            return JSONResponse(body, status, headers=headers_dict)
        location = headers_dict.pop("Location", None)
        if location is not None:
            return RedirectResponse(location, status_code=302, headers=headers_dict)
        return Response(body or b"", status, headers=headers_dict)

    # --- tokens --------------------------------------------------------------------------

    def _tokens(
        self,
        grant_type: str,
        client: Client,
        user: User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
        session_id: str | None = None,
        nonce: str | None = None,
    ) -> dict[str, Any]:
        subject = user or self.realm.service_accounts.get(client.client_id)
        if subject is None:
            raise ValueError(f"no user for client {client.client_id}")
        scope = scope or "openid profile email"
        session_id = session_id or str(uuid.uuid4())
        lifespan = expires_in or self.realm.access_token_lifespan_s
        now = int(time.time())
        claims: dict[str, Any] = {
            "exp": now + lifespan,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer_url,
            "aud": [*client.audiences, "account"] if client.audiences else "account",
            "sub": subject.id,
            "typ": "Bearer",
            "azp": client.client_id,
            "sid": session_id,
            "session_state": session_id,
            "scope": scope,
            "realm_access": {"roles": sorted(subject.roles)},
            "preferred_username": subject.username,
            "email": subject.email,
            "email_verified": subject.email is not None,
        }
        token: dict[str, Any] = {
            "access_token": self.sign(claims),
            "expires_in": lifespan,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": session_id,
            "scope": scope,
        }
        if include_refresh_token and grant_type != "client_credentials":
            refresh = RefreshToken(
                token=secrets.token_urlsafe(32),
                client_id=client.client_id,
                user_id=subject.id,
                scope=scope,
                session_id=session_id,
                expires_at=time.time() + self.refresh_lifespan_s,
            )
            with self.memory.lock:
                self.memory.refresh_tokens[refresh.token] = refresh
            token["refresh_token"] = refresh.token
            token["refresh_expires_in"] = self.refresh_lifespan_s
        if "openid" in scope.split():
            id_claims = {
                **{k: claims[k] for k in ("exp", "iat", "iss", "sub", "sid", "azp")},
                "aud": client.client_id,
                "typ": "ID",
                "auth_time": now,
                "preferred_username": subject.username,
                "email": subject.email,
                "name": " ".join(n for n in (subject.first_name, subject.last_name) if n),
            }
            if nonce:
                id_claims["nonce"] = nonce
            token["id_token"] = self.sign(id_claims)
        return token

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": self.key.kid}
        return jwt.encode(header, claims, self.key)

    def own_claims(self, token: str, check_expiry: bool = True) -> dict[str, Any] | None:
        """The claims of a token this issuer signed (None for anything else). ID tokens given
        back as logout hints may have expired; OpenID's RP-initiated logout accepts them."""
        options: dict[str, Any] = {"iss": {"essential": True, "value": self.issuer_url}}
        if check_expiry:
            options["exp"] = {"essential": True}
        try:
            claims = jwt.decode(token, self.key, algorithms=["RS256"]).claims
            jwt.JWTClaimsRegistry(**options).validate(claims)
        except (JoseError, ValueError):
            return None
        return claims

    def logout(self, request: FormRequest) -> Response:
        """Back-channel logout (Keycloak's POST): the client proves itself and names one of its
        refresh tokens; that token's whole session ends. 204 as Keycloak answers."""
        try:
            client: Client = self.authenticate_client(request, AUTH_METHODS, "logout")
            with self.memory.lock:
                record = self.memory.refresh_tokens.get(request.form.get("refresh_token", ""))
            if record is None or not record.check_client(client) or record.is_expired():
                raise InvalidGrantError("Invalid refresh token")
        except OAuth2Error as error:
            return self.handle_error_response(request, error)
        self.memory.end_session(record.session_id)
        return Response(status_code=204)

    def session_ended(self, claims: dict[str, Any]) -> bool:
        with self.memory.lock:
            return claims.get("sid") in self.memory.ended


class InvalidUserCredentials(InvalidGrantError):  # type: ignore[misc]
    """Keycloak's answer to a wrong password: 401 invalid_grant (authlib would say 400)."""

    status_code = 401

    def __init__(self) -> None:
        super().__init__("Invalid user credentials")


class PasswordGrant(grants.ResourceOwnerPasswordCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def authenticate_user(self, username: str, password: str) -> User:
        issuer: Issuer = self.server
        user = issuer.realm.authenticate(username, password)
        if user is None:
            raise InvalidUserCredentials()
        return user


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_authorization_request(self) -> Any:
        result = super().validate_authorization_request()
        client: Client = self.request.client
        data = self.request.payload.data
        if client.pkce_method and data.get("code_challenge_method") != client.pkce_method:
            raise InvalidRequestError(f"PKCE with {client.pkce_method} is required")
        return result

    def save_authorization_code(self, code: str, request: FormRequest) -> None:
        data = request.payload.data
        issuer: Issuer = self.server
        with issuer.memory.lock:
            issuer.memory.codes[code] = AuthorizationCode(
                code=code,
                client_id=request.client.client_id,
                redirect_uri=data.get("redirect_uri", ""),
                scope=request.payload.scope or "openid profile email",
                user_id=request.user.id,
                session_id=data["session_id"],
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
            )

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        issuer: Issuer = self.server
        with issuer.memory.lock:
            found = issuer.memory.codes.get(code)
        if found is None or found.client_id != client.client_id or found.expires_at < time.time():
            return None
        return found

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        issuer: Issuer = self.server
        with issuer.memory.lock:
            issuer.memory.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        issuer: Issuer = self.server
        self.request.payload.data["session_id"] = authorization_code.session_id
        self.request.payload.data["nonce"] = authorization_code.nonce or ""
        return issuer.realm.user_by_id(authorization_code.user_id)

    def generate_token(self, **kwargs: Any) -> dict[str, Any]:
        data = self.request.payload.data
        issuer: Issuer = self.server
        return issuer._tokens(
            "authorization_code",
            self.request.client,
            session_id=data.get("session_id"),
            nonce=data.get("nonce") or None,
            **{k: v for k, v in kwargs.items() if k in ("user", "scope", "include_refresh_token")},
        )


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        issuer: Issuer = self.server
        with issuer.memory.lock:
            found = issuer.memory.refresh_tokens.get(refresh_token)
        return None if found is None or found.is_expired() else found

    def authenticate_user(self, refresh_token: RefreshToken) -> User | None:
        issuer: Issuer = self.server
        self._session_id = refresh_token.session_id  # the new tokens stay in the same session
        return issuer.realm.user_by_id(refresh_token.user_id)

    def generate_token(self, **kwargs: Any) -> dict[str, Any]:
        issuer: Issuer = self.server
        return issuer._tokens(
            "refresh_token",
            self.request.client,
            session_id=getattr(self, "_session_id", None),
            **{k: v for k, v in kwargs.items() if k in ("user", "scope", "include_refresh_token")},
        )

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        issuer: Issuer = self.server
        with issuer.memory.lock:
            issuer.memory.refresh_tokens.pop(refresh_token.token, None)
