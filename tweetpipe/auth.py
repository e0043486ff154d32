"""Bearer-token validation shared by every tweetpipe API (query, analytics, streams, gateway).

Tokens are RS256 JWTs from the realm's issuer (Keycloak, or the dev issuer locally). The
signature is checked against the issuer's JWKS, fetched once and cached; a token signed with
a key id the cache does not know triggers one refetch (key rotation), at most every
`jwks_refresh_min_interval_s`. Only RS256 is accepted: `alg=none` and HS256 signed with the
public key as a secret are refused before any key is looked at. Validation of a token whose
key is cached does no I/O; a token accepted in the last `accepted_cache_s` seconds (not expired
since, its signing key still published) is accepted again without re-checking its signature,
which is most of the cost of a request that presents the same token over and over.

Clients learn only that the token was refused (401, `WWW-Authenticate: Bearer`); the reason
goes to the log and the `tweetpipe_auth_rejected_total{reason}` metric.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from cachetools import TTLCache
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from tweetpipe.settings import AuthSettings

ALGORITHMS = ("RS256",)
CHECKED_CLAIMS = ("iss", "sub", "aud", "exp", "nbf", "iat")
MAX_TOKEN_LENGTH = 16_384

# The realm's roles (infra/keycloak/microservices-realm.json).
USER_ROLE = "app_user_role"
ADMIN_ROLE = "app_admin_role"
SUPER_USER_ROLE = "app_super_user_role"
APP_ROLES = (USER_ROLE, ADMIN_ROLE, SUPER_USER_ROLE)
"""Any one of these makes a caller a member of the application (e.g. may read word counts)."""

VALIDATED = Counter("tweetpipe_auth_validated_total", "Bearer tokens accepted")
REJECTED = Counter("tweetpipe_auth_rejected_total", "Bearer tokens refused, by reason", ["reason"])
log = logging.getLogger(__name__)


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str
    username: str | None
    client_id: str | None
    """`azp`: the client the token was issued to."""
    roles: frozenset[str]
    """Realm roles (`realm_access.roles`)."""
    scopes: frozenset[str]

    def has_any_role(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)


class InvalidToken(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Accepted:
    """A token that passed every check: who it speaks for, until when, signed by which key."""

    principal: Principal
    expires_at: float
    """`exp`, without leeway."""
    kid: str


class TokenValidator:
    def __init__(self, settings: AuthSettings, http: httpx.Client | None = None) -> None:
        if not settings.audience:
            raise ValueError("AuthSettings.audience must be set (see AuthSettings.for_audience)")
        self.settings = settings
        self._http = http or httpx.Client(timeout=settings.http_timeout_s)
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": settings.issuer_url.rstrip("/")},
            "exp": {"essential": True},
            "sub": {"essential": True},
            "aud": {"essential": True, "value": settings.audience},
        }
        self._claims = jwt.JWTClaimsRegistry(leeway=settings.leeway_s, **options)
        self._accepted: TTLCache[str, Accepted] = TTLCache(
            settings.accepted_cache_size, settings.accepted_cache_s
        )
        self._accepted_lock = threading.Lock()

    def validate(self, token: str) -> Principal:
        with self._accepted_lock:
            remembered = self._accepted.get(token)
        if remembered is not None and self._still_good(remembered):
            VALIDATED.inc()
            return remembered.principal
        try:
            accepted = self._validate(token)
        except InvalidToken as exc:
            REJECTED.labels(exc.reason).inc()
            raise
        VALIDATED.inc()
        if self.settings.accepted_cache_s > 0:
            with self._accepted_lock:
                self._accepted[token] = accepted
        return accepted.principal

    def _still_good(self, accepted: Accepted) -> bool:
        keys = self._keys  # refetched without the token's key: the key was retired
        alive = keys is not None and _has_kid(keys, accepted.kid)
        return alive and time.time() < accepted.expires_at

    def _validate(self, token: str) -> Accepted:
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidToken("malformed")
        try:
            header = extract_compact(token.encode()).headers()
        except (JoseError, ValueError) as exc:
            raise InvalidToken("malformed", str(exc)) from exc
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("algorithm", str(header.get("alg")))
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("no_kid")
        keys = self._keys_with(kid)
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except JoseError as exc:
            raise InvalidToken("signature", exc.error) from exc
        claims = decoded.claims
        try:
            self._claims.validate(claims)
        except JoseError as exc:
            raise InvalidToken(_claim_reason(exc), exc.description or exc.error) from exc
        if claims.get("typ", "Bearer") != "Bearer":
            raise InvalidToken("not_an_access_token", str(claims.get("typ")))
        return Accepted(_principal(claims), float(claims["exp"]), kid)

    async def validate_async(self, token: str) -> Principal:
        """`validate` for async callers. Without a JWKS fetch, validation is a few microseconds
        of CPU, cheaper than a hop to the threadpool, so it runs inline; a token needing a fetch
        goes to the threadpool."""
        if self._may_fetch(token):
            return await run_in_threadpool(self.validate, token)
        return self.validate(token)

    def _may_fetch(self, token: str) -> bool:
        """Whether validating `token` may fetch the JWKS. Not when it is remembered and still
        good (the common case, answered without parsing the token) or its `kid` is cached."""
        with self._accepted_lock:
            remembered = self._accepted.get(token)
        if remembered is not None and self._still_good(remembered):
            return False
        keys = self._keys
        if keys is None:
            return True
        try:
            kid = extract_compact(token.encode()).headers().get("kid")
        except (JoseError, ValueError):
            return False  # malformed: refused without any fetch
        return isinstance(kid, str) and not _has_kid(keys, kid)

    def _keys_with(self, kid: str) -> KeySet:
        """The cached key set, refetched when it lacks `kid` (rate-limited)."""
        with self._lock:
            keys = self._keys
            if keys is not None and _has_kid(keys, kid):
                return keys
            now = time.monotonic()
            if now - self._fetched_at < self.settings.jwks_refresh_min_interval_s:
                if keys is None:
                    raise InvalidToken("jwks_unavailable")
                raise InvalidToken("unknown_kid", kid)
            self._fetched_at = now
            try:
                reply = self._http.get(self.settings.certs_url)
                reply.raise_for_status()
                keys = KeySet.import_key_set(reply.json())
            except (httpx.HTTPError, ValueError, JoseError) as exc:
                log.warning("cannot fetch JWKS from %s: %r", self.settings.certs_url, exc)
                if self._keys is None:
                    raise InvalidToken("jwks_unavailable", str(exc)) from exc
                raise InvalidToken("unknown_kid", kid) from exc
            self._keys = keys
            log.info("loaded %d signing keys from %s", len(keys.keys), self.settings.certs_url)
            if not _has_kid(keys, kid):
                raise InvalidToken("unknown_kid", kid)
            return keys


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def _claim_reason(error: JoseError) -> str:
    """A metric label: one of a few fixed values, whatever the token held."""
    if isinstance(error, ExpiredTokenError):
        return "expired"
    if isinstance(error, MissingClaimError):
        return "missing_claim"
    if isinstance(error, ClaimError) and error.claim in CHECKED_CLAIMS:
        return "not_yet_valid" if error.claim == "nbf" else f"bad_{error.claim}"
    return "bad_claims"


def _principal(claims: dict[str, Any]) -> Principal:
    access = claims.get("realm_access")
    roles = access.get("roles", []) if isinstance(access, dict) else []
    scope = claims.get("scope")
    return Principal(
        subject=str(claims["sub"]),
        username=_str_or_none(claims.get("preferred_username")),
        client_id=_str_or_none(claims.get("azp")),
        roles=frozenset(r for r in roles if isinstance(r, str)),
        scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


_bearer = HTTPBearer(auto_error=False, description="An access token from the realm's issuer")
UNAUTHORIZED = "a valid bearer token is required"


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from a valid bearer token; 401 otherwise (without saying what was wrong)."""
    if credentials is None:
        raise HTTPException(
            401, UNAUTHORIZED, headers={"WWW-Authenticate": 'Bearer realm="tweetpipe"'}
        )
    validator: TokenValidator = request.app.state.token_validator
    token = credentials.credentials
    try:
        return await validator.validate_async(token)
    except InvalidToken as exc:
        log.info(
            "refused a bearer token: %s",
            exc,
            extra={"event.reason": exc.reason, "url.path": request.url.path},
        )
        raise HTTPException(
            401,
            UNAUTHORIZED,
            headers={"WWW-Authenticate": 'Bearer realm="tweetpipe", error="invalid_token"'},
        ) from None


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting callers holding any of `roles`; 403 otherwise."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has_any_role(*roles):
            raise HTTPException(403, "you do not have a role this operation requires")
        return principal

    return dependency


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token"},
    403: {"description": "The token lacks a role this operation requires"},
}
"""OpenAPI entries for routers guarded by `require_roles`."""
