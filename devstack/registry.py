"""Single-machine profile only: a Eureka-protocol service registry (`python -m …registry`).

Stands in for Netflix Eureka on one machine: services register through py-eureka-client
exactly as they would with Eureka, and the gateway looks them up the same way. It keeps leases
in memory, evicts those not renewed in time, and serves `/eureka/...` in XML or JSON
(`registry_api.py`). No peers, no replication, no self-preservation: the cluster profile runs a
real Eureka server. Binds to loopback unless `registry.allow_remote` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from devstack.loopback import refusal
from devstack.registry_api import EVICTIONS, INSTANCES, router
from devstack.registry_store import Registry
from tweetpipe.admin import admin_router
from tweetpipe.logs import configure_logging
from tweetpipe.serving import serve
from tweetpipe.settings import AdminSettings

SERVICE = "eureka-registry"
log = logging.getLogger(__name__)


class RegistryOptions(BaseModel):
    eviction_interval_s: float = Field(default=60.0, gt=0)
    """How often expired leases are looked for (Eureka's default: 60 s)."""
    delta_retention_s: float = Field(default=180.0, gt=0)
    """How long a change stays in `/eureka/apps/delta` (Eureka's default: 3 min)."""
    allow_remote: bool = False
    """Allow binding to a non-loopback address (it has no authentication)."""


class RegistrySettings(BaseSettings):
    """Environment only (`ADMIN__PORT`, `REGISTRY__EVICTION_INTERVAL_S`, …)."""

    model_config = SettingsConfigDict(
        env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )

    admin: AdminSettings = AdminSettings(port=8761)
    registry: RegistryOptions = RegistryOptions()
    log_level: str = "INFO"
    log_file: Path | None = None


def create_app(registry: Registry, eviction_interval_s: float) -> FastAPI:
    evictor: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        nonlocal evictor
        evictor = asyncio.create_task(_evict_forever(registry, eviction_interval_s))
        try:
            yield
        finally:
            evictor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await evictor

    app = FastAPI(title=SERVICE, lifespan=lifespan, redoc_url=None)
    app.state.registry = registry
    INSTANCES.set_function(registry.count)
    checks = {"eviction": lambda: evictor is not None and not evictor.done()}
    app.include_router(admin_router(SERVICE, checks))
    app.include_router(router)
    return app


async def _evict_forever(registry: Registry, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        for instance in registry.evict():
            EVICTIONS.inc()
            log.info(
                "evicted %s %s: lease of %ds not renewed",
                instance.app,
                instance.instance_id,
                instance.lease_info.duration_in_secs,
                extra={"eureka.app": instance.app, "eureka.instance_id": instance.instance_id},
            )


def run(settings: RegistrySettings) -> int:
    configure_logging(SERVICE, settings.log_level, settings.log_file)
    host, port = settings.admin.host, settings.admin.port
    allowed, override = settings.registry.allow_remote, "REGISTRY__ALLOW_REMOTE=true"
    if reason := refusal("the local registry", host, allowed=allowed, override=override):
        log.error(reason)
        return 2
    log.warning(
        "single-machine profile only: tweetpipe's Eureka-protocol registry on http://%s:%d/eureka "
        "(in memory, no replication, no self-preservation); the cluster profile runs Eureka",
        host,
        port,
    )
    registry = Registry(settings.registry.delta_retention_s)
    app = create_app(registry, settings.registry.eviction_interval_s)
    serve(app, host, port)
    return 0


if __name__ == "__main__":
    sys.exit(run(RegistrySettings()))
