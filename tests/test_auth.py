"""`tweetpipe.auth` against the real dev issuer's JWKS over HTTP, and in a FastAPI app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from fastapi import Depends, FastAPI
from joserfc.jwk import RSAKey
from prometheus_client import REGISTRY

from tests.support.issuer import DevIssuer
from tests.support.ports import free_port
from tweetpipe.auth import (
    CurrentPrincipal,
    InvalidToken,
    Principal,
    TokenValidator,
    require_roles,
)
from tweetpipe.settings import AuthSettings

SUPER_USER_ID = "4c1f5a3e-1d2b-4b8e-9a37-2f0d6c1e7a03"
ADMIN_ID = "4c1f5a3e-1d2b-4b8e-9a37-2f0d6c1e7a02"


class CountingHttp:
    """A real httpx client that counts the JWKS fetches it makes."""

    def __init__(self) -> None:
        self.fetches = 0
        self.client = httpx.Client(timeout=5, event_hooks={"request": [self._count]})

    def _count(self, _request: httpx.Request) -> None:
        self.fetches += 1


@pytest.fixture
def http() -> Iterator[CountingHttp]:
    counting = CountingHttp()
    yield counting
    counting.client.close()


def settings_for(issuer: DevIssuer, **overrides: Any) -> AuthSettings:
    options = {"audience": "elastic-query-service", **overrides}
    return AuthSettings(issuer_url=issuer.realm_url, **options)


@pytest.fixture
def validator(dev_issuer: DevIssuer, http: CountingHttp) -> TokenValidator:
    return TokenValidator(settings_for(dev_issuer), http.client)


def rejected(reason: str) -> float:
    value = REGISTRY.get_sample_value("tweetpipe_auth_rejected_total", {"reason": reason})
    return value or 0.0


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """`header.claims.` — the signing input, to be completed by hand-made signatures."""
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


# --- tokens the validator accepts ------------------------------------------------------------


def test_accepts_a_python_keycloak_password_token(
    dev_issuer: DevIssuer, validator: TokenValidator
) -> None:
    principal = validator.validate(dev_issuer.password_token("app_super_user"))
    assert principal.subject == SUPER_USER_ID
    assert principal.username == "app_super_user"
    assert principal.client_id == "elastic-query-web-client"
    assert principal.roles == {"app_super_user_role", "app_user_role"}
    assert "openid" in principal.scopes
    assert principal.has_any_role("app_admin_role", "app_super_user_role")
    assert not principal.has_any_role("app_admin_role")


def test_accepts_a_service_account_token_for_each_service_audience(
    dev_issuer: DevIssuer, http: CountingHttp
) -> None:
    token = dev_issuer.service_token()
    for audience in ("elastic-query-service", "analytics-service", "kafka-streams-service"):
        principal = TokenValidator(
            settings_for(dev_issuer, audience=audience), http.client
        ).validate(token)
        assert principal.username == "service-account-elastic-query-service"
        assert principal.client_id == "elastic-query-service"
        assert principal.roles == {"app_super_user_role"}


def test_a_guest_token_is_valid_but_carries_no_role(
    dev_issuer: DevIssuer, validator: TokenValidator
) -> None:
    principal = validator.validate(dev_issuer.password_token("app_guest"))
    assert principal.username == "app_guest"
    assert not principal.has_any_role("app_user_role", "app_admin_role", "app_super_user_role")


def test_clock_skew_within_the_leeway_is_tolerated(
    dev_issuer: DevIssuer, validator: TokenValidator
) -> None:
    now = int(time.time())
    assert validator.validate(dev_issuer.forge(exp=now - 10)).subject == SUPER_USER_ID
    assert validator.validate(dev_issuer.forge(nbf=now + 10)).subject == SUPER_USER_ID


# --- tokens it refuses -------------------------------------------------------------------------


def _other_key_same_kid(issuer: DevIssuer) -> str:
    return issuer.forge(key=RSAKey.generate_key(2048, private=True), kid=issuer.key.kid)


def _tampered(issuer: DevIssuer) -> str:
    header, _, signature = issuer.forge().split(".")
    claims = b64(json.dumps(issuer.claims(preferred_username="someone_else")).encode())
    return f"{header}.{claims}.{signature}"


def _alg_none(issuer: DevIssuer) -> str:
    return unsigned({"alg": "none", "typ": "JWT", "kid": issuer.key.kid}, issuer.claims())


def _hs256_with_public_key(issuer: DevIssuer) -> str:
    """The classic key-confusion attack: HMAC keyed with the issuer's public PEM."""
    public_pem = issuer.key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = unsigned(
        {"alg": "HS256", "typ": "JWT", "kid": issuer.key.kid}, issuer.claims()
    ).rstrip(".")
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


REFUSED = {
    "expired": (lambda i: i.forge(exp=int(time.time()) - 120), "expired"),
    "not yet valid": (lambda i: i.forge(nbf=int(time.time()) + 120), "not_yet_valid"),
    "issued in the future": (lambda i: i.forge(iat=int(time.time()) + 120), "bad_iat"),
    "wrong issuer": (lambda i: i.forge(iss="http://127.0.0.1:1/realms/other"), "bad_iss"),
    "wrong audience": (lambda i: i.forge(aud=["analytics-service"]), "bad_aud"),
    "wrong audience string": (lambda i: i.forge(aud="account"), "bad_aud"),
    "no audience": (lambda i: i.forge(aud=None), "missing_claim"),
    "no expiry": (lambda i: i.forge(exp=None), "missing_claim"),
    "an ID token": (lambda i: i.forge(typ="ID"), "not_an_access_token"),
    "bad signature": (_tampered, "signature"),
    "alg none": (_alg_none, "algorithm"),
    "HS256 keyed with the public key": (_hs256_with_public_key, "algorithm"),
    "another key with the same kid": (_other_key_same_kid, "signature"),
    "garbage": (lambda i: "not-a-jwt", "malformed"),
    "three garbage parts": (lambda i: "a.b.c", "malformed"),
    "no kid": (lambda i: unsigned({"alg": "RS256"}, i.claims()) + "c2ln", "no_kid"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refuses(case: str, dev_issuer: DevIssuer, validator: TokenValidator) -> None:
    make, reason = REFUSED[case]
    assert validator.validate(dev_issuer.password_token("app_user"))  # keys are cached now
    before = rejected(reason)
    with pytest.raises(InvalidToken) as refused:
        validator.validate(make(dev_issuer))
    assert refused.value.reason == reason
    assert rejected(reason) == before + 1


def test_the_audience_a_service_requires_is_its_own(
    dev_issuer: DevIssuer, http: CountingHttp
) -> None:
    token = dev_issuer.password_token("app_user")
    for audience in ("elastic-query-service", "analytics-service", "kafka-streams-service"):
        assert TokenValidator(settings_for(dev_issuer, audience=audience), http.client).validate(
            token
        )
    with pytest.raises(InvalidToken) as refused:
        TokenValidator(settings_for(dev_issuer, audience="gateway"), http.client).validate(token)
    assert refused.value.reason == "bad_aud"


def test_an_accepted_token_is_remembered_only_until_it_expires(
    dev_issuer: DevIssuer, http: CountingHttp
) -> None:
    validator = TokenValidator(settings_for(dev_issuer, leeway_s=0), http.client)
    token = dev_issuer.forge(exp=int(time.time()) + 2)
    first = validator.validate(token)
    assert validator.validate(token) == first  # remembered
    time.sleep(2.5)
    with pytest.raises(InvalidToken) as refused:
        validator.validate(token)  # remembered, but not past its `exp`
    assert refused.value.reason == "expired"

    # A variant of a remembered token is checked in full, not matched against the cache.
    kept = dev_issuer.forge()
    validator.validate(kept)
    header, claims, signature = kept.split(".")
    with pytest.raises(InvalidToken):
        validator.validate(f"{header}.{claims}.{signature[:-4]}AAAA")


# --- the key cache -----------------------------------------------------------------------------


def test_cached_keys_mean_no_fetch_per_token(
    dev_issuer: DevIssuer, validator: TokenValidator, http: CountingHttp
) -> None:
    tokens = [dev_issuer.password_token(user) for user in ("app_user", "app_admin", "app_guest")]
    validated_before = REGISTRY.get_sample_value("tweetpipe_auth_validated_total") or 0.0
    for _ in range(50):
        for token in tokens:
            validator.validate(token)
    assert http.fetches == 1
    assert REGISTRY.get_sample_value("tweetpipe_auth_validated_total") == validated_before + 150


def test_an_unknown_kid_refetches_once_then_waits_for_the_interval(
    dev_issuer: DevIssuer, http: CountingHttp
) -> None:
    validator = TokenValidator(
        settings_for(dev_issuer, jwks_refresh_min_interval_s=3600), http.client
    )
    validator.validate(dev_issuer.password_token("app_user"))
    assert http.fetches == 1
    stranger = dev_issuer.forge(key=RSAKey.generate_key(2048, private=True), kid="rotated-away")
    with pytest.raises(InvalidToken) as first:
        validator.validate(stranger)
    assert first.value.reason == "unknown_kid"
    assert http.fetches == 1  # fetched a moment ago: the interval has not passed

    eager = TokenValidator(settings_for(dev_issuer, jwks_refresh_min_interval_s=0), http.client)
    eager.validate(dev_issuer.password_token("app_user"))
    for _ in range(3):
        with pytest.raises(InvalidToken, match="unknown_kid"):
            eager.validate(stranger)
    assert http.fetches == 1 + 1 + 3  # one refetch per unknown-kid token, no more


def test_concurrent_first_validations_share_one_fetch(
    dev_issuer: DevIssuer, validator: TokenValidator, http: CountingHttp
) -> None:
    token = dev_issuer.password_token("app_admin")
    principals: list[Principal] = []
    start = threading.Barrier(16)

    def worker() -> None:
        start.wait()
        principals.append(validator.validate(token))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(principals) == 16
    assert {p.subject for p in principals} == {ADMIN_ID}
    assert http.fetches == 1


def test_unreachable_jwks_is_a_refusal_not_a_crash(http: CountingHttp) -> None:
    port = free_port()  # nothing listens there
    settings = AuthSettings(
        issuer_url=f"http://127.0.0.1:{port}/realms/microservices-realm",
        audience="elastic-query-service",
    )
    validator = TokenValidator(settings, http.client)
    token = unsigned({"alg": "RS256", "kid": "k"}, {"sub": "x"}) + "c2ln"
    with pytest.raises(InvalidToken) as refused:
        validator.validate(token)
    assert refused.value.reason == "jwks_unavailable"


@pytest.fixture
def own_issuer(tmp_path: Path) -> Iterator[DevIssuer]:
    """An issuer this module may restart (the session one is shared)."""
    issuer = DevIssuer(tmp_path).start()
    yield issuer
    issuer.stop()


def test_key_rotation_new_tokens_accepted_after_one_refresh(
    own_issuer: DevIssuer, http: CountingHttp
) -> None:
    validator = TokenValidator(settings_for(own_issuer, jwks_refresh_min_interval_s=0), http.client)
    old_token = own_issuer.password_token("app_user")
    old_kid = own_issuer.key.kid
    assert validator.validate(old_token).username == "app_user"

    own_issuer.restart_with_new_key()
    assert own_issuer.key.kid != old_kid
    new_token = own_issuer.password_token("app_admin")
    fetches = http.fetches
    assert validator.validate(new_token).username == "app_admin"
    assert http.fetches == fetches + 1
    assert validator.validate(new_token).username == "app_admin"
    assert http.fetches == fetches + 1  # the new key is cached now
    with pytest.raises(InvalidToken) as retired:  # the issuer no longer publishes the old key
        validator.validate(old_token)
    assert retired.value.reason == "unknown_kid"


# --- the FastAPI dependencies ------------------------------------------------------------------

ADMIN_ONLY = Annotated[Principal, Depends(require_roles("app_admin_role"))]


def tiny_app(validator: TokenValidator) -> FastAPI:
    app = FastAPI()
    app.state.token_validator = validator

    @app.get("/me")
    def me(principal: CurrentPrincipal) -> dict[str, Any]:
        return {"username": principal.username, "roles": sorted(principal.roles)}

    @app.get("/admin")
    def admin(principal: ADMIN_ONLY) -> dict[str, Any]:
        return {"admin": principal.username}

    return app


@pytest.fixture
def client(validator: TokenValidator) -> Iterator[httpx.Client]:
    """The tiny app behind a real uvicorn on a free loopback port."""
    port = free_port()
    config = uvicorn.Config(tiny_app(validator), host="127.0.0.1", port=port, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn exited"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http_client:
        yield http_client
    server.should_exit = True
    thread.join(timeout=10)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_token_is_401_without_an_error_code(client: httpx.Client) -> None:
    reply = client.get("/me")
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == 'Bearer realm="tweetpipe"'
    assert reply.json() == {"detail": "a valid bearer token is required"}
    assert client.get("/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401


def test_every_bad_token_gets_the_same_401(dev_issuer: DevIssuer, client: httpx.Client) -> None:
    bodies = set()
    for make, _reason in REFUSED.values():
        reply = client.get("/me", headers=bearer(make(dev_issuer)))
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"] == (
            'Bearer realm="tweetpipe", error="invalid_token"'
        )
        bodies.add(reply.text)
    assert bodies == {'{"detail":"a valid bearer token is required"}'}  # never says which check


def test_roles_decide_403_or_200(dev_issuer: DevIssuer, client: httpx.Client) -> None:
    admin = client.get("/admin", headers=bearer(dev_issuer.password_token("app_admin")))
    assert admin.status_code == 200
    assert admin.json() == {"admin": "app_admin"}

    for username in ("app_user", "app_guest", "app_super_user"):
        token = dev_issuer.password_token(username)
        assert client.get("/me", headers=bearer(token)).json()["username"] == username
        refused = client.get("/admin", headers=bearer(token))
        assert refused.status_code == 403
        assert refused.json() == {"detail": "you do not have a role this operation requires"}


def test_openapi_declares_the_bearer_scheme(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token from the realm's issuer",
        }
    }
    assert spec["paths"]["/me"]["get"]["security"] == [{"HTTPBearer": []}]
