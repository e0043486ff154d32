"""The signed-in user of one Streamlit session: login callback, tokens, refresh, sign-out.

Tokens live in `st.session_state` (server side, per browser tab). A login goes:
sign-in link (state + PKCE challenge; the verifier stays in `PendingLogins`) → the provider's
login page → back to this app with `?code=…&state=…` on a new page load → code exchanged,
tokens stored, the query string cleared. Sign-out ends the session at the provider twice over:
its refresh token is revoked from here, then the browser visits the provider's
`end_session_endpoint` (which clears its login cookie) and comes back with `?signed_out=1`.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from urllib.parse import urlencode

import streamlit as st

from tweetpipe.logs import configure_logging
from web_client.api import GatewayClient
from web_client.oidc import (
    OidcClient,
    PendingLogins,
    ProviderUnreachable,
    SignInError,
    Tokens,
    UserInfo,
)
from web_client.settings import WebClientSettings

log = logging.getLogger(__name__)

TOKENS = "tp_tokens"
USER = "tp_user"
NOTICE = "tp_notice"
LOGIN = "tp_login"
LOGOUT_TO = "tp_logout_to"
PAGE_PATH = "tp_page_path"


@dataclass(frozen=True)
class Resources:
    """What every session of this server process shares."""

    settings: WebClientSettings
    oidc: OidcClient
    gateway: GatewayClient


@st.cache_resource(show_spinner=False)
def resources() -> Resources:
    settings = WebClientSettings()
    if not logging.getLogger().handlers:  # the server process (a test runner has its own)
        configure_logging("web-client", settings.log_level, settings.log_file)
    pending = PendingLogins(settings.oidc.login_timeout_s)
    return Resources(
        settings=settings,
        oidc=OidcClient(settings.oidc, pending),
        gateway=GatewayClient(settings.gateway_url, settings.api_timeout_s),
    )


def user() -> UserInfo | None:
    found = st.session_state.get(USER)
    return found if isinstance(found, UserInfo) else None


def username() -> str:
    signed_in = user()
    return signed_in.display_name if signed_in else "unknown"


def access_token() -> str | None:
    """The user's access token, refreshed first when it is about to expire; None when not
    signed in or the session has ended (then the page shows the sign-in prompt)."""
    tokens = st.session_state.get(TOKENS)
    if not isinstance(tokens, Tokens):
        return None
    oidc = resources().oidc
    margin = resources().settings.oidc.refresh_margin_s
    if tokens.expires_within(margin):
        try:
            tokens = oidc.refresh(tokens)
        except ProviderUnreachable as exc:
            if not tokens.expires_within(0):
                return tokens.access_token  # still valid: try the refresh on a later call
            log.warning("token refresh failed: %s", exc)
            end("The sign-in service does not answer, so your session could not be renewed.")
            return None
        except SignInError as exc:
            log.info("token refresh refused: %s", exc)
            end("Your session has ended. Sign in again to continue.")
            return None
        st.session_state[TOKENS] = tokens
    return tokens.access_token


def end(notice: str) -> None:
    """Forget this session's tokens (the provider refused them, or they expired)."""
    st.session_state.pop(TOKENS, None)
    st.session_state.pop(USER, None)
    st.session_state[NOTICE] = notice


def set_page_path(path: str) -> None:
    """The current page's URL path: a login started here comes back here."""
    st.session_state[PAGE_PATH] = path


def handle_return() -> None:
    """Finish a login (`?code=&state=`), report a refused one (`?error=`), or a sign-out."""
    params = st.query_params.to_dict()  # read before clearing: the proxy clears too
    state, code, error = params.get("state"), params.get("code"), params.get("error")
    if params.get("signed_out"):
        st.query_params.clear()
        st.session_state[NOTICE] = "You are signed out."
        return
    if not state or not (code or error):
        return
    st.query_params.clear()
    if error:
        reason = params.get("error_description") or error
        st.session_state[NOTICE] = f"Sign-in did not complete: {reason}."
        return
    oidc = resources().oidc
    try:
        tokens = oidc.finish_login(str(code), str(state))
        info = oidc.userinfo(tokens)
    except ProviderUnreachable as exc:
        log.warning("sign-in failed: %s", exc)
        st.session_state[NOTICE] = "The sign-in service does not answer. Try again shortly."
        return
    except SignInError as exc:
        log.info("sign-in refused: %s", exc)
        st.session_state[NOTICE] = f"Sign-in did not complete: {exc}. Sign in again."
        return
    st.session_state[TOKENS] = tokens
    st.session_state[USER] = info
    st.session_state.pop(NOTICE, None)
    st.session_state.pop(LOGIN, None)
    log.info("signed in", extra={"user.name": info.display_name})


def login_url() -> str | None:
    """The provider's login page for this session (one pending login, reused across reruns);
    None when the provider does not answer."""
    settings = resources().settings
    oidc = resources().oidc
    redirect_uri = settings.redirect_uri + str(st.session_state.get(PAGE_PATH, ""))
    started = st.session_state.get(LOGIN)
    if (
        isinstance(started, tuple)
        and started[0] == redirect_uri
        and oidc.is_pending(str(started[2]))
    ):
        return str(started[1])
    try:
        url, state = oidc.start_login(redirect_uri)
    except ProviderUnreachable as exc:
        log.warning("sign-in unavailable: %s", exc)
        return None
    st.session_state[LOGIN] = (redirect_uri, url, state)
    return url


def sign_in_prompt(why: str) -> None:
    """The not-signed-in state: why a sign-in is needed, and the button that starts it."""
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.info(notice)
    st.markdown(f"#### Sign in {why}")
    url = login_url()
    if url is None:
        issuer = resources().oidc.issuer_url
        st.error(
            f"Sign-in is unavailable: the identity provider at {issuer} does not answer. "
            "Try again in a moment."
        )
        st.button("Try again", key="retry-sign-in")
        return
    link_button(url, "Sign in", "tp-sign-in")
    st.caption("You will be sent to the realm's login page and brought back here.")


def link_button(url: str, label: str, css_id: str) -> None:
    """A link styled as a button that opens `url` in this tab (Streamlit's own link button
    opens a new tab, which would leave the login outside this session)."""
    st.markdown(
        f'<a id="{css_id}" class="tp-link-button" href="{_attr(url)}" target="_self">'
        f"{_attr(label)}</a>",
        unsafe_allow_html=True,
    )


def sign_out() -> None:
    """Button callback: drop the tokens, revoke them at the provider, then send the browser to
    the provider's logout (rendered by `redirect_if_signing_out`)."""
    tokens = st.session_state.get(TOKENS)
    st.session_state.pop(TOKENS, None)
    st.session_state.pop(USER, None)
    st.session_state.pop(LOGIN, None)
    settings = resources().settings
    oidc = resources().oidc
    if isinstance(tokens, Tokens):
        try:
            oidc.end_session(tokens)
        except ProviderUnreachable as exc:
            log.warning("provider logout failed: %s", exc)
    back = settings.redirect_uri + "?" + urlencode({"signed_out": "1"})
    target = oidc.logout_url(tokens if isinstance(tokens, Tokens) else None, back)
    if target is None:
        st.session_state[NOTICE] = "You are signed out."
    else:
        st.session_state[LOGOUT_TO] = target


def redirect_if_signing_out() -> bool:
    """After `sign_out`: the browser goes to the provider's logout page. True if it does."""
    target = st.session_state.pop(LOGOUT_TO, None)
    if not isinstance(target, str):
        return False
    st.info("Signing out…")
    st.html(
        f"<script>window.location.replace({json.dumps(target)});</script>",
        unsafe_allow_javascript=True,
    )
    link_button(target, "Continue", "tp-sign-out-continue")
    return True


def account_box() -> None:
    """Sidebar: who is signed in, and the sign-out button."""
    signed_in = user()
    with st.sidebar:
        if signed_in is None:
            st.caption("Not signed in")
            return
        st.caption("Signed in as")
        st.markdown(f"**{_attr(signed_in.display_name)}**")
        st.button("Sign out", key="sign-out", on_click=sign_out)


def _attr(text: str) -> str:
    return html.escape(text, quote=True)
