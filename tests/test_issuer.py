"""The dev issuer, through python-keycloak (unchanged) and a real browser-style code flow."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakPostError

from tests.support.issuer import PASSWORD, WEB_CLIENT, DevIssuer, client_secret
from tests.support.ports import free_port
from tests.support.services import ServiceProcess

REDIRECT = "http://127.0.0.1:8501/callback"


def test_python_keycloak_password_grant_userinfo_refresh_and_logout(dev_issuer: DevIssuer) -> None:
    openid = dev_issuer.openid()
    assert openid.well_known()["issuer"] == dev_issuer.realm_url
    token = openid.token("app_admin", PASSWORD)
    claims = openid.decode_token(token["access_token"])  # verified with the realm's JWKS
    assert claims["iss"] == dev_issuer.realm_url
    assert claims["azp"] == WEB_CLIENT
    assert "elastic-query-service" in claims["aud"]
    assert sorted(claims["realm_access"]["roles"]) == ["app_admin_role", "app_user_role"]
    assert claims["preferred_username"] == "app_admin"
    assert openid.userinfo(token["access_token"])["preferred_username"] == "app_admin"
    assert openid.certs()["keys"][0]["kid"] == dev_issuer.key.kid
    assert openid.public_key()

    refreshed = openid.refresh_token(token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    with pytest.raises(KeycloakPostError):  # rotated: the old refresh token is spent
        openid.refresh_token(token["refresh_token"])

    openid.logout(refreshed["refresh_token"])
    with pytest.raises(KeycloakPostError):
        openid.refresh_token(refreshed["refresh_token"])


def test_client_credentials_token_is_the_service_account(dev_issuer: DevIssuer) -> None:
    openid = dev_issuer.openid("elastic-query-service")
    token = openid.token(grant_type="client_credentials")
    claims = openid.decode_token(token["access_token"])
    assert claims["preferred_username"] == "service-account-elastic-query-service"
    assert claims["realm_access"]["roles"] == ["app_super_user_role"]
    assert "refresh_token" not in token


def test_bad_credentials_are_oauth_errors(dev_issuer: DevIssuer) -> None:
    with pytest.raises(KeycloakAuthenticationError) as wrong_password:
        dev_issuer.openid().token("app_user", "not-the-password")
    assert b"invalid_grant" in wrong_password.value.response_body  # type: ignore[operator]
    reply = httpx.post(
        dev_issuer.token_url,
        data={"grant_type": "client_credentials", "client_id": WEB_CLIENT, "client_secret": "x"},
    )
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def _login(dev_issuer: DevIssuer, client: httpx.Client, challenge: str | None) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": WEB_CLIENT,
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "s-123",
    }
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    auth_url = f"{dev_issuer.realm_url}/protocol/openid-connect/auth"
    return client.get(auth_url, params=params)


def test_authorization_code_with_pkce_through_the_login_form(dev_issuer: DevIssuer) -> None:
    verifier, challenge = _pkce()
    with httpx.Client() as browser:
        page = _login(dev_issuer, browser, challenge)
        assert page.status_code == 200
        assert 'id="kc-login"' in page.text
        action = re.search(r'action="([^"]+)"', page.text)[1]  # type: ignore[index]
        hidden = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))

        failed = browser.post(action, data={**hidden, "username": "app_user", "password": "no"})
        assert failed.status_code == 401
        assert "Invalid username or password." in failed.text

        done = browser.post(action, data={**hidden, "username": "app_user", "password": PASSWORD})
        assert done.status_code == 302
        location = urlparse(done.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
        query = parse_qs(location.query)
        assert query["state"] == ["s-123"]
        code = query["code"][0]

        secret = client_secret(WEB_CLIENT)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        wrong = browser.post(
            dev_issuer.token_url,
            data={**form, "code_verifier": _pkce()[0]},
            auth=(WEB_CLIENT, secret),
        )
        assert wrong.status_code == 400
        assert wrong.json()["error"] == "invalid_grant"

        # A second sign-in rides on the issuer's session cookie: no form this time.
        verifier, challenge = _pkce()
        again = _login(dev_issuer, browser, challenge)
        assert again.status_code == 302
        code = parse_qs(urlparse(again.headers["location"]).query)["code"][0]
        token = browser.post(
            dev_issuer.token_url,
            data={**form, "code": code, "code_verifier": verifier},
            auth=(WEB_CLIENT, secret),
        )
        assert token.status_code == 200
        claims = dev_issuer.openid().decode_token(token.json()["access_token"])
        assert claims["preferred_username"] == "app_user"
        assert "id_token" in token.json()

        logout = browser.get(
            f"{dev_issuer.realm_url}/protocol/openid-connect/logout",
            params={"post_logout_redirect_uri": REDIRECT, "client_id": WEB_CLIENT},
        )
        assert logout.status_code == 302
        assert _login(dev_issuer, browser, _pkce()[1]).status_code == 200  # the form again


def test_pkce_is_required_for_the_web_client(dev_issuer: DevIssuer) -> None:
    with httpx.Client() as browser:
        page = _login(dev_issuer, browser, challenge=None)
    assert page.status_code == 400
    assert "PKCE" in page.text


def test_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    issuer = ServiceProcess(
        "tweetpipe.local.issuer",
        {"ADMIN__HOST": "0.0.0.0", "ADMIN__PORT": str(free_port()), "DATA_DIR": str(tmp_path)},
        tmp_path / "issuer.log",
    ).start()
    assert issuer.wait_exit(timeout_s=30) == 2
    assert "refusing to bind 0.0.0.0" in issuer.output
