"""The admin endpoints every service exposes: `/health` and `/metrics`.

HTTP services mount `admin_router`; worker services (generator, sink) run `AdminServer` in a
background thread so they can be probed and scraped the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from tweetpipe.method_not_allowed import answer_405_with_every_method
from tweetpipe.serving import make_server
from tweetpipe.telemetry import instrument_app

log = logging.getLogger(__name__)

HealthCheck = Callable[[], bool]
Status = Literal["UP", "DOWN"]


class ComponentHealth(BaseModel):
    status: Status
    error: str | None = None


class Health(BaseModel):
    status: Status
    service: str
    components: dict[str, ComponentHealth]


def run_checks(service: str, checks: Mapping[str, HealthCheck]) -> Health:
    components: dict[str, ComponentHealth] = {}
    for name, check in checks.items():
        try:
            components[name] = ComponentHealth(status="UP" if check() else "DOWN")
        except Exception as exc:  # a failing check is a DOWN component, not a 500
            components[name] = ComponentHealth(status="DOWN", error=type(exc).__name__)
    status: Status = "UP" if all(c.status == "UP" for c in components.values()) else "DOWN"
    return Health(status=status, service=service, components=components)


def admin_router(service: str, checks: Mapping[str, HealthCheck]) -> APIRouter:
    router = APIRouter(tags=["admin"])

    @router.get("/health", response_model=Health)
    def health(response: Response) -> Health:
        """UP when every dependency answers; 503 otherwise (load balancers stop routing)."""
        result = run_checks(service, checks)
        response.status_code = 200 if result.status == "UP" else 503
        return result

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


class AdminServer:
    """Serves the admin router (and any extra routers) on its own port from a daemon thread."""

    def __init__(
        self,
        service: str,
        checks: Mapping[str, HealthCheck],
        host: str,
        port: int,
        *,
        routers: Sequence[APIRouter] = (),
        state: Mapping[str, object] | None = None,
    ):
        """`state` goes to `app.state` for the routers' dependencies (e.g. `token_validator`)."""
        app = FastAPI(title=service, docs_url="/docs" if routers else None, redoc_url=None)
        for name, value in (state or {}).items():
            setattr(app.state, name, value)
        app.include_router(admin_router(service, checks))
        for router in routers:
            app.include_router(router)
        answer_405_with_every_method(app)
        instrument_app(app)
        self._server = make_server(app, host, port)
        self._thread = threading.Thread(target=self._server.run, name="admin", daemon=True)
        self.service = service

    def start(self, timeout_s: float = 10.0) -> AdminServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.service}: admin server did not start")
            time.sleep(0.01)
        log.info("admin endpoints on %s", self.url, extra={"url.full": self.url})
        return self

    @property
    def port(self) -> int:
        sockets = self._server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self._server.config.host}:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
