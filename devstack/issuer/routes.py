"""The realm's endpoints in Keycloak's URL layout: `/realms/{realm}` and its OpenID Connect
`auth`, `token`, `certs`, `userinfo`, `logout`, plus discovery."""

from __future__ import annotations

import base64
import logging
import secrets
from typing import Annotated, Any

from authlib.oauth2 import OAuth2Error
from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from devstack.issuer.login import login_page, message_page
from devstack.issuer.realm import redirect_uri_allowed
from devstack.issuer.server import FormRequest, Issuer

SESSION_COOKIE = "TWEETPIPE_ISSUER_SESSION"
INVALID_TOKEN = 'Bearer error="invalid_token"'
log = logging.getLogger(__name__)


def _form_request(request: Request, values: dict[str, str], endpoint: str = "token") -> FormRequest:
    return FormRequest(request.method, str(request.url), request.headers, values, endpoint)


def realm_router(issuer: Issuer, base_url: str, backchannel_dynamic: bool = False) -> APIRouter:
    """`backchannel_dynamic`: as Keycloak's `KC_HOSTNAME_BACKCHANNEL_DYNAMIC`, the discovery
    document names the token, userinfo and keys endpoints at the URL it was fetched from (a
    container's `http://keycloak:8080`), the issuer and the browser's endpoints at `base_url`."""
    realm = issuer.realm
    realm_url = f"{base_url}/realms/{realm.name}"
    oidc = f"{realm_url}/protocol/openid-connect"
    router = APIRouter(prefix=f"/realms/{realm.name}")

    @router.get("")
    def realm_info() -> dict[str, Any]:
        der = issuer.key.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {
            "realm": realm.name,
            "public_key": base64.b64encode(der).decode(),
            "token-service": oidc,
            "account-service": f"{realm_url}/account",
            "tokens-not-before": 0,
        }

    @router.get("/.well-known/openid-configuration")
    def discovery(request: Request) -> dict[str, Any]:
        back = oidc
        if backchannel_dynamic:
            back = (
                f"{str(request.base_url).rstrip('/')}/realms/{realm.name}/protocol/openid-connect"
            )
        return {
            "issuer": realm_url,
            "authorization_endpoint": f"{oidc}/auth",
            "token_endpoint": f"{back}/token",
            "userinfo_endpoint": f"{back}/userinfo",
            "end_session_endpoint": f"{oidc}/logout",
            "jwks_uri": f"{back}/certs",
            "grant_types_supported": [
                "authorization_code",
                "password",
                "client_credentials",
                "refresh_token",
            ],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "scopes_supported": ["openid", "profile", "email", "roles"],
            "claims_supported": ["sub", "iss", "aud", "exp", "preferred_username", "email"],
        }

    @router.get("/protocol/openid-connect/certs")
    def certs() -> dict[str, Any]:
        return {"keys": [issuer.key.as_dict(private=False)]}

    @router.get("/protocol/openid-connect/auth", response_model=None)
    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        return _authorize(request, params, user=_session_user(request))

    @router.post("/protocol/openid-connect/auth", response_model=None)
    async def login(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        user = realm.authenticate(form.get("username", ""), form.get("password", ""))
        if user is None:
            log.info("failed login for %r", form.get("username", ""))
            page = login_page(
                realm.name,
                str(request.url),
                form,
                "Invalid username or password.",
                form.get("username", ""),
            )
            return HTMLResponse(page, 401)
        session_id = secrets.token_urlsafe(16)
        with issuer.memory.lock:
            issuer.memory.sessions[session_id] = user.id
        response = _authorize(request, form, user=user, session_id=session_id)
        response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="lax")
        return response

    def _session_user(request: Request) -> Any:
        session_id = request.cookies.get(SESSION_COOKIE)
        with issuer.memory.lock:
            user_id = issuer.memory.sessions.get(session_id or "")
        return realm.user_by_id(user_id) if user_id else None

    def _authorize(
        request: Request, params: dict[str, str], user: Any, session_id: str | None = None
    ) -> Response:
        values = {k: v for k, v in params.items() if k not in ("username", "password", "login")}
        oauth_request = _form_request(request, values, "authorization")
        try:
            grant = issuer.get_consent_grant(request=oauth_request)
        except OAuth2Error as error:
            issuer.record_refusal(oauth_request, error)
            text = error.description or error.error
            return HTMLResponse(message_page("Cannot sign in", text), 400)
        if user is None:
            action = str(request.url.replace(query=""))
            return HTMLResponse(login_page(realm.name, action, values))
        values["session_id"] = session_id or request.cookies.get(SESSION_COOKIE, "")
        response: Response = issuer.create_authorization_response(
            request=oauth_request, grant_user=user, grant=grant
        )
        return response

    @router.post("/protocol/openid-connect/token", response_model=None)
    async def token(request: Request) -> Response:
        values = {k: str(v) for k, v in (await request.form()).items()}
        response: Response = issuer.create_token_response(_form_request(request, values))
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.api_route("/protocol/openid-connect/userinfo", methods=["GET", "POST"])
    def userinfo(authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "bearer token required", {"WWW-Authenticate": "Bearer"})
        claims = issuer.own_claims(token)
        if claims is None or claims.get("typ") != "Bearer" or issuer.session_ended(claims):
            raise HTTPException(401, "invalid token", {"WWW-Authenticate": INVALID_TOKEN})
        user = realm.user_by_id(str(claims.get("sub")))
        if user is None:
            raise HTTPException(401, "invalid token", {"WWW-Authenticate": INVALID_TOKEN})
        return {
            "sub": user.id,
            "preferred_username": user.username,
            "email": user.email,
            "email_verified": user.email is not None,
            "given_name": user.first_name,
            "family_name": user.last_name,
            "name": " ".join(n for n in (user.first_name, user.last_name) if n),
            "realm_access": {"roles": sorted(user.roles)},
        }

    @router.get("/protocol/openid-connect/logout", response_model=None)
    def logout_browser(
        request: Request,
        post_logout_redirect_uri: str | None = None,
        client_id: str | None = None,
        id_token_hint: str | None = None,
    ) -> Response:
        """Ends the browser session (SSO cookie) and the session named by `id_token_hint`,
        with their refresh tokens; redirects only to a URI the client registered."""
        if id_token_hint is not None:
            hint = issuer.own_claims(id_token_hint, check_expiry=False)
            if hint is None or hint.get("typ") != "ID":
                page = message_page("Cannot sign out", "The id_token_hint is not valid.")
                return HTMLResponse(page, 400)
            client_id = client_id or str(hint.get("azp"))
            issuer.memory.end_session(str(hint.get("sid")))
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            issuer.memory.end_session(session_id)
        response: Response
        allowed = [
            pattern
            for client in realm.clients.values()
            if client_id in (None, client.client_id)
            for pattern in client.redirect_uris
        ]
        if post_logout_redirect_uri and redirect_uri_allowed(post_logout_redirect_uri, allowed):
            response = RedirectResponse(post_logout_redirect_uri, 302)
        else:
            response = HTMLResponse(message_page("Signed out", "You are signed out."))
        response.delete_cookie(SESSION_COOKIE)
        return response

    @router.post("/protocol/openid-connect/logout", response_model=None)
    async def logout_backchannel(request: Request) -> Response:
        """What python-keycloak's `logout(refresh_token)` calls: revokes that session."""
        form = {k: str(v) for k, v in (await request.form()).items()}
        return issuer.logout(_form_request(request, form, "logout"))

    return router
