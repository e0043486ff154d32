"""Sign-in with the realm's OpenID provider: authorization code with PKCE (S256), refresh, logout.

The browser leaves the app for the provider's login page and comes back on a new page load, so
a Streamlit session cannot carry the PKCE verifier across. `PendingLogins` keeps each started
login (verifier, redirect URI) in the server process, keyed by the `state` parameter the
provider hands back, for `login_timeout_s`; a state is good for one use. Tokens then live in
the user's Streamlit session (see `session.py`), never in the browser.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from pydantic import BaseModel, ConfigDict, ValidationError

from web_client.settings import OidcSettings

log = logging.getLogger(__name__)


class SignInError(Exception):
    """The provider refused (bad or used code, expired refresh token) or gave no answer."""


class ProviderUnreachable(SignInError):
    """No answer from the provider: worth retrying, unlike a refusal."""


class ProviderMetadata(BaseModel):
    """The part of the discovery document the app uses."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    end_session_endpoint: str | None = None


class Tokens(BaseModel):
    model_config = ConfigDict(frozen=True)

    access_token: str
    refresh_token: str | None = None
    id_token: str | None = None
    expires_at: float
    """Epoch seconds when the access token expires."""

    @classmethod
    def from_response(cls, body: dict[str, Any], previous: Tokens | None = None) -> Tokens:
        """A token endpoint answer; a refresh may omit the refresh and ID tokens (keep them)."""
        now = time.time()
        expires_in = float(body.get("expires_in") or 60)
        return cls(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token") or (previous and previous.refresh_token),
            id_token=body.get("id_token") or (previous and previous.id_token),
            expires_at=float(body.get("expires_at") or now + expires_in),
        )

    def expires_within(self, seconds: float) -> bool:
        return self.expires_at - seconds <= time.time()


class UserInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sub: str
    preferred_username: str | None = None
    name: str | None = None

    @property
    def display_name(self) -> str:
        return self.preferred_username or self.name or self.sub


class PendingLogin(BaseModel):
    model_config = ConfigDict(frozen=True)

    verifier: str
    redirect_uri: str
    started: float
    """`time.monotonic()` when the login started."""


class PendingLogins:
    """Started logins by `state`, shared by every session of this server process."""

    MAX_ENTRIES = 10_000

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._by_state: dict[str, PendingLogin] = {}
        self._lock = threading.Lock()

    def add(self, state: str, login: PendingLogin) -> None:
        with self._lock:
            self._purge(time.monotonic())
            if len(self._by_state) >= self.MAX_ENTRIES:  # oldest first: dicts keep order
                del self._by_state[next(iter(self._by_state))]
            self._by_state[state] = login

    def take(self, state: str) -> PendingLogin | None:
        """The login `state` belongs to, once; None when unknown, used or expired."""
        with self._lock:
            self._purge(time.monotonic())
            return self._by_state.pop(state, None)

    def is_pending(self, state: str) -> bool:
        with self._lock:
            self._purge(time.monotonic())
            return state in self._by_state

    def _purge(self, now: float) -> None:
        expired = [s for s, p in self._by_state.items() if now - p.started > self._timeout_s]
        for state in expired:
            del self._by_state[state]


class OidcClient:
    """The web client as a confidential OAuth 2 client of the realm (authlib underneath)."""

    def __init__(self, settings: OidcSettings, pending: PendingLogins) -> None:
        self._settings = settings
        self._pending = pending
        self._metadata: ProviderMetadata | None = None
        self._lock = threading.Lock()

    @property
    def issuer_url(self) -> str:
        return self._settings.issuer_url

    def metadata(self) -> ProviderMetadata:
        """The discovery document, fetched once it answers (raises ProviderUnreachable)."""
        with self._lock:
            if self._metadata is None:
                url = self._settings.discovery_url
                try:
                    reply = httpx.get(url, timeout=self._settings.timeout_s)
                    reply.raise_for_status()
                    self._metadata = ProviderMetadata.model_validate_json(reply.content)
                except (httpx.HTTPError, ValidationError) as exc:
                    raise ProviderUnreachable(f"no discovery document at {url}: {exc}") from exc
            return self._metadata

    def _client(self, redirect_uri: str | None = None, scope: bool = True) -> OAuth2Session:
        """`scope=False` for a refresh: no scope there means the one first granted."""
        return OAuth2Session(
            client_id=self._settings.client_id,
            client_secret=self._settings.client_secret.get_secret_value(),
            scope=self._settings.scope if scope else None,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
        )

    def start_login(self, redirect_uri: str) -> tuple[str, str]:
        """(authorization URL to send the browser to, its state)."""
        metadata = self.metadata()
        verifier = generate_token(64)
        with self._client(redirect_uri) as client:
            url, state = client.create_authorization_url(
                metadata.authorization_endpoint, code_verifier=verifier
            )
        self._pending.add(
            str(state),
            PendingLogin(verifier=verifier, redirect_uri=redirect_uri, started=time.monotonic()),
        )
        return str(url), str(state)

    def is_pending(self, state: str) -> bool:
        return self._pending.is_pending(state)

    def finish_login(self, code: str, state: str) -> Tokens:
        """Exchange the code the provider sent back, with the verifier kept for its state."""
        login = self._pending.take(state)
        if login is None:
            raise SignInError("this sign-in link was already used or has expired")
        token_endpoint = self.metadata().token_endpoint
        body = self._token_call(
            lambda client: client.fetch_token(
                token_endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=login.verifier,
                timeout=self._settings.timeout_s,
            ),
            login.redirect_uri,
        )
        return Tokens.from_response(body)

    def refresh(self, tokens: Tokens) -> Tokens:
        if not tokens.refresh_token:
            raise SignInError("no refresh token")
        token_endpoint = self.metadata().token_endpoint
        refresh_token = tokens.refresh_token
        body = self._token_call(
            lambda client: client.refresh_token(
                token_endpoint, refresh_token=refresh_token, timeout=self._settings.timeout_s
            ),
            scope=False,
        )
        return Tokens.from_response(body, previous=tokens)

    def _token_call(
        self, call: Any, redirect_uri: str | None = None, scope: bool = True
    ) -> dict[str, Any]:
        try:
            with self._client(redirect_uri, scope) as client:
                return dict(call(client))
        except OAuthError as exc:
            raise SignInError(exc.description or exc.error or "refused") from exc
        except OSError as exc:  # requests' errors are OSErrors (authlib's client is requests)
            raise ProviderUnreachable(f"{type(exc).__name__}: {exc}") from exc

    def userinfo(self, tokens: Tokens) -> UserInfo:
        url = self.metadata().userinfo_endpoint
        try:
            reply = httpx.get(
                url,
                headers={"Authorization": f"Bearer {tokens.access_token}"},
                timeout=self._settings.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise ProviderUnreachable(f"{type(exc).__name__}: {exc}") from exc
        if reply.status_code != 200:
            raise SignInError(f"userinfo answered {reply.status_code}")
        try:
            return UserInfo.model_validate_json(reply.content)
        except ValidationError as exc:
            raise SignInError(f"unexpected userinfo answer: {exc}") from exc

    def end_session(self, tokens: Tokens) -> None:
        """Ends the session at the provider from the server side (its refresh tokens die).
        Best effort: the browser is sent to `logout_url` next, which ends it too."""
        metadata = self.metadata()
        if metadata.end_session_endpoint is None or tokens.refresh_token is None:
            return
        try:
            reply = httpx.post(
                metadata.end_session_endpoint,
                data={
                    "client_id": self._settings.client_id,
                    "client_secret": self._settings.client_secret.get_secret_value(),
                    "refresh_token": tokens.refresh_token,
                },
                timeout=self._settings.timeout_s,
            )
            if reply.status_code >= 400:
                log.info("provider logout answered %d", reply.status_code)
        except httpx.HTTPError as exc:
            log.warning("provider logout failed: %s", exc)

    def logout_url(self, tokens: Tokens | None, post_logout_redirect_uri: str) -> str | None:
        """Where the browser goes to end its session at the provider (its SSO cookie)."""
        try:
            endpoint = self.metadata().end_session_endpoint
        except ProviderUnreachable:
            return None
        if endpoint is None:
            return None
        params = {
            "client_id": self._settings.client_id,
            "post_logout_redirect_uri": post_logout_redirect_uri,
        }
        if tokens is not None and tokens.id_token:
            params["id_token_hint"] = tokens.id_token
        return f"{endpoint}?{urlencode(params)}"
