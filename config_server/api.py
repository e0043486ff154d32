"""The Spring Cloud Config HTTP API.

- `GET /{application}/{profiles}[/{label}]` → the `Environment` JSON;
- `GET /{application}-{profiles}.{yml|yaml|properties|json}` and
  `GET /{label}/{application}-{profiles}.{…}` → the merged properties as one document;
- `POST /encrypt`, `POST /decrypt` (text/plain bodies), `GET /encrypt/status`.
Every route requires basic auth. Route order matters: the cipher routes come before the
two-segment environment route they would otherwise match.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from config_server.backends import ConfigBackend
from config_server.ciphers import Cipher, InvalidCipher
from config_server.environment import DOCUMENT, Environment, Format, build_environment, render
from config_server.metrics import REQUESTS, SERVED
from config_server.security import User

router = APIRouter()


def get_backend(request: Request) -> ConfigBackend:
    return cast(ConfigBackend, request.app.state.backend)


def get_cipher(request: Request) -> Cipher | None:
    return cast(Cipher | None, request.app.state.cipher)


Backend = Annotated[ConfigBackend, Depends(get_backend)]
MaybeCipher = Annotated[Cipher | None, Depends(get_cipher)]


def _no_key() -> JSONResponse:
    """Spring's answer when no key is installed."""
    body = {"description": "No key was installed for encryption service", "status": "NO_KEY"}
    return JSONResponse(body, status_code=404)


async def _body_text(request: Request) -> str:
    """The text to encrypt or decrypt. `curl -d` sends a form body ending in `=`: drop it."""
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(status_code=400, detail="the body must be UTF-8 text") from None
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        text = text.removesuffix("=")
    return text


@router.get("/encrypt/status", tags=["cipher"])
def encrypt_status(_user: User, cipher: MaybeCipher) -> Response:
    if cipher is None:
        return _no_key()
    return JSONResponse({"status": "OK"})


@router.post("/encrypt", tags=["cipher"])
async def encrypt(request: Request, _user: User, cipher: MaybeCipher) -> Response:
    """Ciphertext to paste into a config file as `'{cipher}…'`."""
    if cipher is None:
        REQUESTS.labels("encrypt", "no_key").inc()
        return _no_key()
    text = await _body_text(request)
    REQUESTS.labels("encrypt", "ok").inc()
    return Response(cipher.encrypt(text), media_type="text/plain")


@router.post("/decrypt", tags=["cipher"])
async def decrypt(request: Request, _user: User, cipher: MaybeCipher) -> Response:
    if cipher is None:
        REQUESTS.labels("decrypt", "no_key").inc()
        return _no_key()
    try:
        plain = cipher.decrypt(await _body_text(request))
    except InvalidCipher as exc:
        REQUESTS.labels("decrypt", "invalid").inc()
        body = {"description": f"Text not encrypted with this key ({exc})", "status": "INVALID"}
        return JSONResponse(body, status_code=400)
    REQUESTS.labels("decrypt", "ok").inc()
    return Response(plain, media_type="text/plain")


@router.get("/{document}", tags=["config"])
def document(document: str, _user: User, backend: Backend, cipher: MaybeCipher) -> Response:
    """`/{application}-{profiles}.yml` (or `.yaml`, `.properties`, `.json`) at the default label."""
    return _document(backend, cipher, document, None)


@router.get("/{application}/{profiles}", tags=["config"], response_model=Environment)
def environment_or_document(
    application: str, profiles: str, _user: User, backend: Backend, cipher: MaybeCipher
) -> Response:
    """`/{application}/{profiles}`, or `/{label}/{application}-{profiles}.yml` (same shape)."""
    if DOCUMENT.match(profiles):
        return _document(backend, cipher, profiles, application)
    return _environment(backend, cipher, application, profiles, None)


@router.get("/{application}/{profiles}/{label}", tags=["config"], response_model=Environment)
def environment_at_label(
    application: str,
    profiles: str,
    label: str,
    _user: User,
    backend: Backend,
    cipher: MaybeCipher,
) -> Response:
    return _environment(backend, cipher, application, profiles, label)


def _environment(
    backend: ConfigBackend,
    cipher: Cipher | None,
    application: str,
    profiles: str,
    label: str | None,
) -> Response:
    environment = build_environment(backend, cipher, application, profiles, label)
    REQUESTS.labels("environment", "ok").inc()
    SERVED.labels(application, profiles).inc()
    return Response(environment.model_dump_json(by_alias=True), media_type="application/json")


def _document(
    backend: ConfigBackend, cipher: Cipher | None, name: str, label: str | None
) -> Response:
    match = DOCUMENT.match(name)
    if match is None:
        REQUESTS.labels("document", "not_found").inc()
        raise HTTPException(
            status_code=404,
            detail=f"not found: {name} (expected {{application}}-{{profile}}.yml)",
        )
    environment = build_environment(backend, cipher, match["name"], match["profiles"], label)
    fmt = cast(Format, match["format"])
    body, media_type = render(environment, fmt)
    REQUESTS.labels("document", "ok").inc()
    return Response(body, media_type=media_type)
