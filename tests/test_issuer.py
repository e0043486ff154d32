"""The dev issuer, through python-keycloak (unchanged) and a real browser-style code flow."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakPostError

from devstack.issuer.realm import Realm, RealmExport
from tests.support.issuer import PASSWORD, SERVICE_CLIENT, WEB_CLIENT, DevIssuer, client_secret
from tests.support.ports import free_port
from tests.support.services import ServiceProcess, metric_value

REDIRECT = "http://127.0.0.1:8501/callback"


def test_python_keycloak_password_grant_userinfo_refresh_and_logout(dev_issuer: DevIssuer) -> None:
    openid = dev_issuer.openid()
    discovery = openid.well_known()
    assert discovery["issuer"] == dev_issuer.realm_url
    assert discovery["token_endpoint"] == dev_issuer.token_url
    oidc = f"{dev_issuer.realm_url}/protocol/openid-connect"
    assert discovery["jwks_uri"] == f"{oidc}/certs"
    assert discovery["authorization_endpoint"] == f"{oidc}/auth"
    assert discovery["end_session_endpoint"] == f"{oidc}/logout"
    assert "S256" in discovery["code_challenge_methods_supported"]
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
        "devstack.issuer",
        {"ADMIN__HOST": "0.0.0.0", "ADMIN__PORT": str(free_port()), "DATA_DIR": str(tmp_path)},
        tmp_path / "issuer.log",
    ).start()
    assert issuer.wait_exit(timeout_s=30) == 2
    assert "refusing to bind 0.0.0.0" in issuer.output


def test_access_and_id_token_claims(dev_issuer: DevIssuer) -> None:
    openid = dev_issuer.openid()
    token = openid.token("app_super_user", PASSWORD, scope="openid profile email")
    access = openid.decode_token(token["access_token"])
    assert access["sub"] == "4c1f5a3e-1d2b-4b8e-9a37-2f0d6c1e7a03"  # the realm export's id
    assert access["typ"] == "Bearer"
    assert access["exp"] - access["iat"] == 300 == token["expires_in"]
    assert set(access["aud"]) >= {"elastic-query-service", "analytics-service"}
    assert access["sid"] == access["session_state"] == token["session_state"]
    assert access["email"] == "app_super_user@tweetpipe.local"
    assert set(access["scope"].split()) == {"openid", "profile", "email"}
    assert (
        len(
            {
                openid.decode_token(openid.token("app_user", PASSWORD)["access_token"])["jti"]
                for _ in range(3)
            }
        )
        == 3
    )
    header = json.loads(base64.urlsafe_b64decode(token["access_token"].split(".")[0] + "=="))
    assert header == {"alg": "RS256", "typ": "JWT", "kid": dev_issuer.key.kid}

    identity = openid.decode_token(token["id_token"])
    assert identity["typ"] == "ID"
    assert identity["aud"] == WEB_CLIENT
    assert identity["sub"] == access["sub"]
    assert "id_token" not in openid.token("app_user", PASSWORD, scope="profile")


def test_client_errors_are_oauth_json_with_the_right_status(dev_issuer: DevIssuer) -> None:
    secret = client_secret(WEB_CLIENT)
    password = {"grant_type": "password", "username": "app_user", "password": PASSWORD}
    cases = [
        ({**password, "client_id": "nobody", "client_secret": "x"}, None, 401, "invalid_client"),
        (password, ("nobody", "x"), 401, "invalid_client"),
        (password, (WEB_CLIENT, "wrong"), 401, "invalid_client"),
        (password, None, 401, "invalid_client"),  # no client at all
        (  # the web client has no service account
            {"grant_type": "client_credentials"},
            (WEB_CLIENT, secret),
            400,
            "unauthorized_client",
        ),
        ({"grant_type": "device_code"}, (WEB_CLIENT, secret), 400, "unsupported_grant_type"),
        ({"grant_type": "password"}, (WEB_CLIENT, secret), 400, "invalid_request"),
        (
            {"grant_type": "refresh_token", "refresh_token": "made-up"},
            (WEB_CLIENT, secret),
            400,
            "invalid_grant",
        ),
    ]
    before = metric_value(dev_issuer.port, "tweetpipe_issuer_requests_rejected_total")
    for form, auth, status, error in cases:
        reply = httpx.post(dev_issuer.token_url, data=form, auth=auth)
        assert (reply.status_code, reply.json()["error"]) == (status, error), form
    after = metric_value(dev_issuer.port, "tweetpipe_issuer_requests_rejected_total")
    assert after == before + len(cases)
    wrong_password = (
        'tweetpipe_issuer_requests_rejected_total{error="invalid_grant",grant="password"}'
    )
    count = metric_value(dev_issuer.port, wrong_password)
    with pytest.raises(KeycloakAuthenticationError):
        dev_issuer.openid().token("app_admin", "guess")
    assert metric_value(dev_issuer.port, wrong_password) == count + 1


def test_tokens_issued_are_counted_by_grant(dev_issuer: DevIssuer) -> None:
    name = 'tweetpipe_issuer_tokens_issued_total{grant="client_credentials"}'
    before = metric_value(dev_issuer.port, name)
    dev_issuer.service_token()
    assert metric_value(dev_issuer.port, name) == before + 1


def test_logout_ends_the_session_for_refresh_and_userinfo(dev_issuer: DevIssuer) -> None:
    openid = dev_issuer.openid()
    token = openid.token("app_user", PASSWORD)
    assert openid.userinfo(token["access_token"])["sub"]
    openid.logout(token["refresh_token"])
    with pytest.raises(KeycloakAuthenticationError):
        openid.userinfo(token["access_token"])
    with pytest.raises(KeycloakPostError):
        openid.logout(token["refresh_token"])  # already spent


def test_browser_logout_with_id_token_hint(dev_issuer: DevIssuer) -> None:
    openid = dev_issuer.openid()
    token = openid.token("app_admin", PASSWORD)
    logout_url = f"{dev_issuer.realm_url}/protocol/openid-connect/logout"
    forged = dev_issuer.forge(key=RSAKey.generate_key(2048, private=True), typ="ID")
    for bad in (forged, token["access_token"], "junk"):  # not this issuer's ID token
        assert httpx.get(logout_url, params={"id_token_hint": bad}).status_code == 400
    assert openid.userinfo(token["access_token"])  # nothing was ended by those

    elsewhere = "https://attacker.example/landing"
    reply = httpx.get(
        logout_url,
        params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": elsewhere},
    )
    assert reply.status_code == 200  # signed out, but no redirect to an unregistered URI
    with pytest.raises(KeycloakPostError):
        openid.refresh_token(token["refresh_token"])

    token = openid.token("app_admin", PASSWORD)
    reply = httpx.get(
        logout_url,
        params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": REDIRECT},
    )
    assert reply.status_code == 302
    assert reply.headers["location"] == REDIRECT
    with pytest.raises(KeycloakAuthenticationError):
        openid.userinfo(token["access_token"])


def test_a_code_issued_with_a_challenge_needs_the_verifier(dev_issuer: DevIssuer) -> None:
    _verifier, challenge = _pkce()
    with httpx.Client() as browser:
        page = _login(dev_issuer, browser, challenge)
        action = re.search(r'action="([^"]+)"', page.text)[1]  # type: ignore[index]
        hidden = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
        done = browser.post(action, data={**hidden, "username": "app_user", "password": PASSWORD})
        code = parse_qs(urlparse(done.headers["location"]).query)["code"][0]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        reply = browser.post(
            dev_issuer.token_url, data=form, auth=(WEB_CLIENT, client_secret(WEB_CLIENT))
        )
    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_request"
    assert "code_verifier" in reply.json()["error_description"]


def test_plain_http_to_a_non_loopback_host_name_is_a_json_error(dev_issuer: DevIssuer) -> None:
    reply = httpx.post(
        dev_issuer.token_url,
        data={"grant_type": "client_credentials"},
        headers={"Host": "issuer.example.test"},
    )
    assert reply.status_code == 400
    assert reply.json()["error"] == "insecure_transport"


def test_the_signing_key_survives_a_restart(tmp_path: Path) -> None:
    issuer = DevIssuer(tmp_path).start()
    try:
        token = issuer.password_token("app_user")
        kid = issuer.key.kid
        issuer.stop()
        issuer.start()
        assert issuer.openid().certs()["keys"][0]["kid"] == kid
        assert issuer.openid().decode_token(token)["preferred_username"] == "app_user"
    finally:
        issuer.stop()


def test_the_realm_public_key_is_the_signing_key(dev_issuer: DevIssuer) -> None:
    openid = dev_issuer.openid()
    der = base64.b64decode(openid.public_key())
    public = serialization.load_der_public_key(der)
    assert isinstance(public, rsa.RSAPublicKey)
    jwk = openid.certs()["keys"][0]
    assert jwk["alg"] == "RS256"
    assert jwk["use"] == "sig"
    n = int.from_bytes(base64.urlsafe_b64decode(jwk["n"] + "=" * (-len(jwk["n"]) % 4)), "big")
    assert public.public_numbers().n == n


def test_non_ascii_and_oversize_credentials_are_refused_cleanly(dev_issuer: DevIssuer) -> None:
    for password in ("pässwörd", "x" * 10_000, ""):
        reply = httpx.post(
            dev_issuer.token_url,
            data={"grant_type": "password", "username": "app_user", "password": password},
            auth=(WEB_CLIENT, client_secret(WEB_CLIENT)),
        )
        assert reply.status_code == 401
        assert reply.json()["error"] == "invalid_grant"


def test_realm_roles_come_from_groups_their_parents_and_direct_mappings() -> None:
    export = RealmExport.model_validate(
        {
            "realm": "r",
            "groups": [
                {
                    "name": "staff",
                    "realmRoles": ["reader"],
                    "subGroups": [{"name": "editors", "realmRoles": ["writer"]}],
                }
            ],
            "users": [
                {
                    "id": "u1",
                    "username": "ed",
                    "groups": ["/staff/editors"],
                    "realmRoles": ["auditor"],
                    "credentials": [{"type": "password", "value": "pw"}],
                },
                {"id": "u2", "username": "gone", "enabled": False},
            ],
            "clients": [
                {"clientId": "on", "secret": "s"},
                {"clientId": "off", "enabled": False},
            ],
        }
    )
    realm = Realm(export)
    editor = realm.authenticate("ed", "pw")
    assert editor is not None
    assert editor.roles == {"reader", "writer", "auditor"}
    assert realm.authenticate("ed", "PW") is None
    assert realm.user_by_id("u2") is None  # disabled users cannot sign in
    assert set(realm.clients) == {"on"}


def test_an_unreadable_realm_file_stops_the_issuer_with_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "realm.json"
    bad.write_text('{"users": []}')  # no realm name
    issuer = ServiceProcess(
        "devstack.issuer",
        {"ADMIN__PORT": str(free_port()), "DATA_DIR": str(tmp_path), "REALM_FILE": str(bad)},
        tmp_path / "issuer.log",
    ).start()
    assert issuer.wait_exit(timeout_s=30) == 2
    assert "cannot read the realm export" in issuer.output
    assert "Traceback" not in issuer.output


def test_back_channel_logout_refusals(dev_issuer: DevIssuer) -> None:
    logout_url = f"{dev_issuer.realm_url}/protocol/openid-connect/logout"
    refresh = dev_issuer.openid().token("app_user", PASSWORD)["refresh_token"]
    service = (SERVICE_CLIENT, client_secret(SERVICE_CLIENT))
    cases = [
        ({"Authorization": "Basic %%%not-base64"}, None, 401, "invalid_client"),
        ({}, (WEB_CLIENT, "wrong"), 401, "invalid_client"),
        ({}, service, 400, "invalid_grant"),  # a refresh token of another client
    ]
    for headers, auth, status, error in cases:
        reply = httpx.post(logout_url, data={"refresh_token": refresh}, headers=headers, auth=auth)
        assert (reply.status_code, reply.json()["error"]) == (status, error)
    rejected = "tweetpipe_issuer_requests_rejected_total"
    assert metric_value(dev_issuer.port, rejected, '{error="invalid_client",grant="logout"}') >= 2
    dev_issuer.openid().refresh_token(refresh)  # none of those ended the session
