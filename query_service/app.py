"""elastic-query-service: the Keycloak-secured search API over the indexed tweets.

- `documents.py`: the classic document endpoints and `/documents/search`;
- `permissions_api.py`: administrators grant and revoke per-document READ permissions;
- `access.py`: who may read what (roles from the token, permissions from SQL);
- `versioning.py`: API versions by media type; `enrichment.py`: word counts on by-text answers;
- `tweetpipe.auth`: bearer-token validation against the issuer's JWKS, shared by every API.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from query_service import documents, permissions_api
from query_service.enrichment import WordCounts
from query_service.permissions import PermissionRepository
from query_service.settings import QuerySettings
from tweetpipe.admin import HealthCheck, admin_router
from tweetpipe.auth import TokenValidator
from tweetpipe.method_not_allowed import answer_405_with_every_method
from tweetpipe.runtime import ServiceRuntime
from tweetpipe.search import SearchStore, StoreError, StoreUnavailable, open_store
from tweetpipe.sql import TRANSIENT_ERRORS, display_url, make_engine, ping, wait_for_database
from tweetpipe.telemetry import instrument_app

SERVICE = "elastic-query-service"
EUREKA_APP = "ELASTIC-QUERY-SERVICE"
log = logging.getLogger(__name__)


def create_app(
    *,
    store: SearchStore,
    permissions: PermissionRepository,
    validator: TokenValidator,
    settings: QuerySettings,
    checks: Mapping[str, HealthCheck],
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient() as client:
            app.state.word_counts = WordCounts(settings.enrichment, client)
            yield

    app = FastAPI(
        title=SERVICE,
        description="Search the indexed tweets. Every endpoint but `/health` needs a bearer "
        "token from the realm's issuer.",
        version="2",
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.permissions = permissions
    app.state.token_validator = validator
    app.include_router(documents.router)
    app.include_router(permissions_api.router)
    app.include_router(admin_router(SERVICE, checks))
    app.add_exception_handler(StoreError, _store_error)
    answer_405_with_every_method(app)
    for error in TRANSIENT_ERRORS:
        app.add_exception_handler(error, _database_unavailable)
    return instrument_app(app)


async def _store_error(_request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, StoreUnavailable):
        log.warning("search store unavailable: %s", error)
        return JSONResponse({"detail": "search store unavailable, retry shortly"}, 503)
    # What the store refuses is the request's fault (e.g. a cursor from another query).
    return JSONResponse({"detail": str(error).split(": ", 1)[-1]}, 400)


async def _database_unavailable(_request: Request, error: Exception) -> JSONResponse:
    log.warning("permissions database unavailable: %s", error)
    return JSONResponse({"detail": "permissions database unavailable, retry shortly"}, 503)


def run(settings: QuerySettings) -> int:
    """Serve until SIGTERM/SIGINT."""
    with ServiceRuntime(SERVICE, settings, eureka_app=EUREKA_APP) as runtime:
        store = open_store(settings.search)
        runtime.on_close("search store", store.close)
        store.ensure_ready()
        engine = make_engine(settings.sql_url)
        runtime.on_close("database engine", engine.dispose)
        wait_for_database(engine, timeout_s=120)
        permissions = PermissionRepository(engine)
        permissions.create_schema()
        log.info(
            "permissions in %s; trusting tokens from %s",
            display_url(engine),
            settings.auth.issuer_url,
        )
        checks: dict[str, HealthCheck] = {"search": store.ping, "database": lambda: ping(engine)}
        validator = TokenValidator(settings.auth.for_audience(SERVICE))
        app = create_app(
            store=store,
            permissions=permissions,
            validator=validator,
            settings=settings,
            checks=checks,
        )
        runtime.serve(app, status_path="/docs")
    return runtime.exit_code
