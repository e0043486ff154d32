"""Signing in to the web client: the dev issuer's loopback redirect rule (RFC 8252 §7.3), and
the authorization code flow with PKCE from the app's sign-in link through the issuer's real
login form back into a new Streamlit session, then sign-out."""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import streamlit as st
from keycloak.exceptions import KeycloakPostError
from streamlit.testing.v1 import AppTest

from devstack.issuer.realm import redirect_uri_allowed
from tests.support.issuer import PASSWORD, WEB_CLIENT, DevIssuer
from tests.support.ports import free_port
from tests.support.web_gateway import WebGateway
from tests.test_web_client import app_script, page_text
from web_client.session import NOTICE, TOKENS, USER

REGISTERED = ["http://127.0.0.1:8501/*", "http://localhost:8501/*", "http://web-client:8501/*"]


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8501/",  # as registered
        "http://127.0.0.1:39123/",  # any port on a registered loopback address
        "http://127.0.0.1:39123/trends?x=1",
        "http://127.0.0.1/",  # no port at all
        "http://localhost:40000/",
        "http://web-client:8501/",  # a registered non-loopback host, its own port
    ],
)
def test_loopback_redirects_may_use_any_port(uri: str) -> None:
    assert redirect_uri_allowed(uri, REGISTERED)


@pytest.mark.parametrize(
    "uri",
    [
        "http://web-client:9999/",  # not loopback: the port is part of the registration
        "http://127.0.0.2:8501/",  # another address
        "http://localhost.example.com:8501/",
        "http://127.0.0.1:8501@evil.example/",  # user info, the host is evil.example
        "https://127.0.0.1:8501/",  # another scheme
        "http://127.0.0.1:x/",
        "http://[::1]:8501/",  # a loopback address, but not the one registered
    ],
)
def test_other_redirects_are_refused(uri: str) -> None:
    assert not redirect_uri_allowed(uri, REGISTERED)


def test_ipv6_loopback_registration() -> None:
    assert redirect_uri_allowed("http://[::1]:5000/cb", ["http://[::1]:8501/cb"])
    assert not redirect_uri_allowed("http://[::1]:5000/other", ["http://[::1]:8501/cb"])


def test_the_issuer_accepts_the_web_client_on_a_free_port(dev_issuer: DevIssuer) -> None:
    params = {
        "response_type": "code",
        "client_id": WEB_CLIENT,
        "redirect_uri": f"http://127.0.0.1:{free_port()}/",
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
        "state": "s",
    }
    page = httpx.get(f"{dev_issuer.realm_url}/protocol/openid-connect/auth", params=params)
    assert page.status_code == 200
    assert 'id="kc-login"' in page.text
    refused = httpx.get(
        f"{dev_issuer.realm_url}/protocol/openid-connect/auth",
        params={**params, "redirect_uri": "http://127.0.0.2:8501/"},
    )
    assert refused.status_code == 400


@pytest.fixture
def app_env(
    dev_issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[WebGateway]:
    with WebGateway() as gateway:
        monkeypatch.setenv("GATEWAY_URL", gateway.url)
        monkeypatch.setenv("OIDC__ISSUER_URL", dev_issuer.realm_url)
        monkeypatch.setenv("PUBLIC_URL", f"http://127.0.0.1:{free_port()}")
        monkeypatch.setenv("CONFIG_REPO_DIR", str(tmp_path / "no-config-repo"))
        monkeypatch.setenv("PIPELINE__METRICS_URLS", json.dumps({}))
        st.cache_resource.clear()
        yield gateway
        st.cache_resource.clear()


def new_session(page: str = "search", **query: str) -> AppTest:
    """A fresh browser page load: a new Streamlit session (the same server process)."""
    at = AppTest.from_function(app_script, kwargs={"default": page}, default_timeout=20)
    for name, value in query.items():
        at.query_params[name] = value
    return at.run()


def sign_in_link(at: AppTest) -> str:
    markup = next(m.value for m in at.markdown if 'id="tp-sign-in"' in m.value)
    return html.unescape(re.search(r'href="([^"]+)"', markup)[1])  # type: ignore[index]


def log_in(browser: httpx.Client, url: str, username: str) -> dict[str, str]:
    """The issuer's login form, as a browser fills it; the redirect's query parameters."""
    form = browser.get(url)
    assert form.status_code == 200, form.text
    action = html.unescape(re.search(r'action="([^"]+)"', form.text)[1])  # type: ignore[index]
    hidden = {
        k: html.unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', form.text)
    }
    done = browser.post(action, data={**hidden, "username": username, "password": PASSWORD})
    assert done.status_code == 302, done.text
    location = urlparse(done.headers["location"])
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def test_sign_in_with_pkce_through_the_login_form_then_sign_out(
    app_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    first = new_session(page="trends")
    link = sign_in_link(first)
    params = parse_qs(urlparse(link).query)
    assert params["redirect_uri"] == [f"{os.environ['PUBLIC_URL']}/"]
    assert params["code_challenge_method"] == ["S256"]
    assert "code_verifier" not in link
    assert sign_in_link(first.run()) == link  # one pending login per session, not per rerun

    with httpx.Client() as browser:
        returned = log_in(browser, link, "app_user")
        assert returned["state"] == params["state"][0]

        # the provider sends the browser back: a new page load, a new session
        back = new_session(page="trends", code=returned["code"], state=returned["state"])
        assert not back.exception
        assert back.session_state[USER].preferred_username == "app_user"
        assert "app_user" in page_text(back)
        assert "code" not in back.query_params  # the one-time code leaves the address bar
        tokens = back.session_state[TOKENS]
        assert app_env.seen("/words/top")[-1].authorization == f"Bearer {tokens.access_token}"

        # the same code and state again (a reload of the callback URL): refused, explained
        replay = new_session(code=returned["code"], state=returned["state"])
        assert TOKENS not in replay.session_state
        assert "already used or has expired" in page_text(replay)

        # sign out: tokens gone here, the session ended at the provider, the browser sent on
        back.button(key="sign-out").click().run()
        assert TOKENS not in back.session_state
        script = next(h.value for h in back.html if "window.location.replace" in h.value)
        target = json.loads(re.search(r"replace\((\".*\")\)", script)[1])  # type: ignore[index]
        assert target.startswith(f"{dev_issuer.realm_url}/protocol/openid-connect/logout?")
        logout = parse_qs(urlparse(target).query)
        assert logout["id_token_hint"] == [tokens.id_token]
        assert logout["post_logout_redirect_uri"][0].endswith("/?signed_out=1")
        with pytest.raises(KeycloakPostError):
            dev_issuer.openid().refresh_token(tokens.refresh_token)
        # the provider's login cookie no longer signs the browser in
        assert 'id="kc-login"' in browser.get(link).text

    signed_out = new_session(signed_out="1")
    assert "You are signed out." in page_text(signed_out)
    assert NOTICE not in signed_out.session_state


def test_a_refused_login_is_explained(app_env: WebGateway) -> None:
    at = new_session(error="access_denied", error_description="The user said no", state="s")
    assert "Sign-in did not complete: The user said no." in page_text(at)
    assert any('id="tp-sign-in"' in m.value for m in at.markdown)


def test_sign_in_without_the_provider_says_so(
    app_env: WebGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = f"http://127.0.0.1:{free_port()}/realms/microservices-realm"
    monkeypatch.setenv("OIDC__ISSUER_URL", issuer)
    st.cache_resource.clear()
    at = new_session()
    assert f"Sign-in is unavailable: the identity provider at {issuer} does not answer" in (
        page_text(at)
    )
    assert "Try again" in page_text(at)
