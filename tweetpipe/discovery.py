"""Service discovery over the Eureka protocol: register this instance, look others up.

Registration uses py-eureka-client's protocol calls (`eureka_basic`) from a background thread
that registers, renews every `renewal_interval_s`, registers again when the registry has
forgotten the instance (404 on renewal), and cancels the lease on stop. Its own `EurekaClient`
is not used: its heartbeat thread cannot be stopped and registers the instance again after
`stop()`. A registry that is away never stops a service: failures are logged once, counted, and
retried in the background.

Lookup (`Discovery`) asks the registry for an application's instances (JSON) and returns the
base URLs of those that are UP, cached for a few seconds; when the registry is away it keeps
answering from its last good copy.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any
from urllib.error import HTTPError

import httpx
from prometheus_client import Counter, Gauge
from py_eureka_client import eureka_basic
from pydantic import BaseModel, Field, ValidationError

from tweetpipe.eureka import ApplicationEnvelope, InstanceInfo
from tweetpipe.settings import EurekaSettings, ServiceSettings

log = logging.getLogger(__name__)

REGISTERED = Gauge("tweetpipe_discovery_registered", "1 while this instance holds a lease")
REGISTRY_CALLS = Counter(
    "tweetpipe_discovery_registry_calls_total",
    "Calls to the registry by kind (register, renew, cancel) and outcome",
    ["kind", "outcome"],
)
LOOKUP_FAILURES = Counter(
    "tweetpipe_discovery_lookup_failures_total", "Lookups the registry did not answer"
)


class InstanceSpec(BaseModel):
    """What this instance registers as."""

    app: str
    instance_id: str
    host: str
    ip: str
    port: int = Field(gt=0, le=65535)
    status_path: str
    health_path: str
    metadata: dict[str, str]
    renewal_interval_s: int
    lease_duration_s: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def to_client(self, dirty_ms: int) -> Any:
        """The same, as py-eureka-client's `Instance`."""
        lease = eureka_basic.LeaseInfo(
            renewalIntervalInSecs=self.renewal_interval_s, durationInSecs=self.lease_duration_s
        )
        return eureka_basic.Instance(
            instanceId=self.instance_id,
            app=self.app,
            ipAddr=self.ip,
            hostName=self.host,
            port=eureka_basic.PortWrapper(port=self.port, enabled=True),
            securePort=eureka_basic.PortWrapper(port=443, enabled=False),
            homePageUrl=f"{self.base_url}/",
            statusPageUrl=f"{self.base_url}{self.status_path}",
            healthCheckUrl=f"{self.base_url}{self.health_path}",
            vipAddress=self.app.lower(),
            secureVipAddress=self.app.lower(),
            dataCenterInfo=eureka_basic.DataCenterInfo(),
            status="UP",
            overriddenstatus="UNKNOWN",
            leaseInfo=lease,
            metadata=dict(self.metadata),
            lastUpdatedTimestamp=dirty_ms,
            lastDirtyTimestamp=dirty_ms,
        )


def instance_spec(
    settings: ServiceSettings, app_name: str, port: int, status_path: str = "/health"
) -> InstanceSpec:
    """Spring's conventions: upper-case app name, id `{host}:{app}:{port}`, metadata."""
    eureka = settings.eureka
    host = eureka.instance_host or socket.gethostname()
    ip = eureka.instance_ip or _resolve(host)
    if eureka.prefer_ip:
        host = ip
    metadata = {
        "version": _service_version(),
        "profile": settings.profile,
        "management.port": str(port),
        # Prometheus finds instances through the registry (eureka_sd_configs in
        # infra/prometheus/prometheus.yml): scrape this one, there, as its application name.
        "prometheus.scrape": "true",
        "prometheus.path": "/metrics",
        "prometheus.job": settings.application,
        **eureka.metadata,
    }
    return InstanceSpec(
        app=app_name.upper(),
        instance_id=f"{host}:{app_name.lower()}:{port}",
        host=host,
        ip=ip,
        port=port,
        status_path=status_path,
        health_path="/health",
        metadata=metadata,
        renewal_interval_s=eureka.renewal_interval_s,
        lease_duration_s=eureka.lease_duration_s,
    )


def _resolve(host: str) -> str:
    try:
        return socket.gethostbyname(host)
    except OSError:
        return host


def _service_version() -> str:
    try:
        return package_version("tweetpipe")
    except PackageNotFoundError:
        return "unknown"


class Registration:
    """Holds this instance's lease from a background thread until `stop()`."""

    def __init__(self, server_url: str, spec: InstanceSpec) -> None:
        self.server_url = server_url.rstrip("/")
        self.spec = spec
        self._stop = threading.Event()
        self._registered = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"eureka-{spec.app.lower()}", daemon=True
        )
        self._dirty_ms = 0
        self._failing = False

    @property
    def registered(self) -> bool:
        return self._registered.is_set()

    def wait_registered(self, timeout_s: float) -> bool:
        return self._registered.wait(timeout_s)

    def start(self) -> Registration:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Cancel the lease (when held) and end the thread."""
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        interval = self.spec.renewal_interval_s
        failures = 0
        with asyncio.Runner() as runner:
            while not self._stop.is_set():
                ok = runner.run(self._renew() if self.registered else self._register())
                failures = 0 if ok else failures + 1
                wait = interval if ok else min(interval, 2 ** min(failures, 6))
                if self._stop.wait(wait):
                    break
            if self.registered:
                runner.run(self._cancel())

    async def _register(self) -> bool:
        self._dirty_ms = int(time.time() * 1000)
        try:
            await eureka_basic.register(self.server_url, self.spec.to_client(self._dirty_ms))
        except Exception as exc:  # the registry being away must never stop the service
            self._failed("register", exc)
            return False
        self._registered.set()
        REGISTERED.set(1)
        REGISTRY_CALLS.labels("register", "ok").inc()
        self._failing = False
        log.info(
            "registered with %s as %s (%s)",
            self.server_url,
            self.spec.app,
            self.spec.instance_id,
            extra={"eureka.app": self.spec.app, "eureka.instance_id": self.spec.instance_id},
        )
        return True

    async def _renew(self) -> bool:
        try:
            await eureka_basic.send_heartbeat(
                self.server_url, self.spec.app, self.spec.instance_id, self._dirty_ms
            )
        except HTTPError as exc:
            if exc.code != 404:
                self._failed("renew", exc)
                return False
            REGISTRY_CALLS.labels("renew", "unknown").inc()
            log.info("the registry no longer knows %s; registering again", self.spec.instance_id)
            self._registered.clear()
            return await self._register()
        except Exception as exc:
            self._failed("renew", exc)
            return False
        REGISTRY_CALLS.labels("renew", "ok").inc()
        self._failing = False
        return True

    async def _cancel(self) -> None:
        try:
            await eureka_basic.cancel(self.server_url, self.spec.app, self.spec.instance_id)
        except Exception as exc:
            self._failed("cancel", exc)
            return
        self._registered.clear()
        REGISTERED.set(0)
        REGISTRY_CALLS.labels("cancel", "ok").inc()
        log.info("deregistered %s from %s", self.spec.instance_id, self.server_url)

    def _failed(self, kind: str, exc: Exception) -> None:
        REGISTRY_CALLS.labels(kind, "error").inc()
        level = logging.DEBUG if self._failing else logging.WARNING
        self._failing = True
        log.log(
            level,
            "cannot %s with the registry %s (%s: %s); retrying in the background",
            kind,
            self.server_url,
            type(exc).__name__,
            exc,
            extra={"eureka.app": self.spec.app, "url.full": self.server_url},
        )


def start_registration(
    settings: ServiceSettings, app_name: str, port: int, status_path: str = "/health"
) -> Registration | None:
    """A running registration, or None when no registry is configured."""
    server_url = settings.eureka.server_url
    if not server_url:
        return None
    if port == 0:
        log.warning("not registering %s: it has no fixed port", app_name)
        return None
    return Registration(server_url, instance_spec(settings, app_name, port, status_path)).start()


@contextmanager
def registered(
    settings: ServiceSettings, app_name: str, port: int, status_path: str = "/health"
) -> Iterator[Registration | None]:
    """Hold a lease for this service while the block runs; nothing when no registry is set.

    `port` is the service's HTTP (or admin) port; `status_path` is `/docs` for API services.
    """
    registration = start_registration(settings, app_name, port, status_path)
    try:
        yield registration
    finally:
        if registration is not None:
            registration.stop()


@asynccontextmanager
async def registered_async(
    settings: ServiceSettings, app_name: str, port: int, status_path: str = "/health"
) -> AsyncIterator[Registration | None]:
    """`registered` for a FastAPI lifespan: deregistering does not block the event loop."""
    registration = start_registration(settings, app_name, port, status_path)
    try:
        yield registration
    finally:
        if registration is not None:
            await asyncio.to_thread(registration.stop)


class Discovery:
    """The UP instances of an application, from the registry, cached for `cache_s`."""

    def __init__(
        self,
        server_url: str,
        cache_s: float = 5.0,
        timeout_s: float = 2.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.cache_s = cache_s
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._owns_client = client is None
        self._cache: dict[str, tuple[float, list[InstanceInfo]]] = {}

    @classmethod
    def from_settings(cls, eureka: EurekaSettings) -> Discovery | None:
        if not eureka.server_url:
            return None
        return cls(eureka.server_url, eureka.cache_s, eureka.timeout_s)

    async def instances(self, app: str) -> list[InstanceInfo]:
        app = app.upper()
        cached = self._cache.get(app)
        if cached and time.monotonic() - cached[0] < self.cache_s:
            return cached[1]
        try:
            found = await self._fetch(app)
        except (httpx.HTTPError, ValidationError, ValueError) as exc:
            LOOKUP_FAILURES.inc()
            log.warning(
                "registry lookup of %s failed (%s: %s); using the last known instances",
                app,
                type(exc).__name__,
                exc,
                extra={"eureka.app": app, "url.full": self.server_url},
            )
            return cached[1] if cached else []
        self._cache[app] = (time.monotonic(), found)
        return found

    async def urls(self, app: str) -> list[str]:
        """Base URLs (`http://host:port`) of the app's UP instances: the gateway's lookup."""
        return [instance.base_url for instance in await self.instances(app)]

    async def _fetch(self, app: str) -> list[InstanceInfo]:
        response = await self._client.get(
            f"{self.server_url}/apps/{app}", headers={"Accept": "application/json"}
        )
        if response.status_code == 404:
            return []
        response.raise_for_status()
        application = ApplicationEnvelope.model_validate_json(response.content).application
        return [instance for instance in application.instance if instance.status == "UP"]

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
