"""The one start-up and shutdown sequence every tweetpipe service goes through.

A service's `run()` opens a `ServiceRuntime`, builds its parts inside it and either serves an
HTTP app or waits for its worker threads:

    with ServiceRuntime(SERVICE, settings, eureka_app=EUREKA_APP) as runtime:
        ensure_topics(settings.kafka, pipeline_topics(settings.kafka))
        store = open_store(settings.search)
        runtime.on_close("search store", store.close)
        runtime.admin({"kafka": ...})           # /health and /metrics on their own port
        runtime.worker("sink", sink.run)        # a loop whose failure stops the service
        runtime.wait()                          # or runtime.serve(app) for HTTP services
    return runtime.exit_code

The order is fixed here, not in each service: logging, then tracing, then the stop signal;
what the service builds; registration with discovery once it can answer; serving (through
`tweetpipe.serving`, so every HTTP service gets httptools and the settled heap); and on the
way out the lease is cancelled first, workers finish their batch, and everything opened is
closed in reverse order, each close logged if it fails rather than hiding the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Protocol

import uvicorn
from fastapi import APIRouter
from starlette.types import ASGIApp

from tweetpipe.admin import AdminServer, HealthCheck
from tweetpipe.collector import pace_for_batches
from tweetpipe.discovery import registered
from tweetpipe.lifecycle import StopSignal
from tweetpipe.logs import configure_logging
from tweetpipe.serving import make_server, settle_heap
from tweetpipe.settings import AdminSettings, ServiceSettings, TracingSettings
from tweetpipe.telemetry import start_tracing

log = logging.getLogger(__name__)

WORKER_STOP_TIMEOUT_S = 30.0
"""How long shutdown waits for a worker to finish its batch and commit."""


class ProcessSettings(Protocol):
    """What the runtime reads: every service's settings have it, the config server's too
    (which, being where the others' settings come from, is not a `ServiceSettings`)."""

    log_level: str
    log_file: Path | None
    tracing: TracingSettings
    admin: AdminSettings


class Worker(threading.Thread):
    """A service loop in a daemon thread; if it raises, the whole service stops (exit 1) so
    that a supervisor restarts it rather than leaving a half-working instance."""

    def __init__(self, name: str, target: Callable[[], object], on_end: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self._loop = target
        self._on_end = on_end
        self.failed = False

    def run(self) -> None:
        try:
            self._loop()
        except Exception:
            self.failed = True
            log.exception("%s failed; stopping the service", self.name)
        finally:
            self._on_end()


class ServiceRuntime:
    """Start-up and ordered shutdown of one service process (see the module docstring)."""

    def __init__(
        self,
        service: str,
        settings: ProcessSettings,
        *,
        eureka_app: str | None = None,
        stop: StopSignal | None = None,
    ) -> None:
        """`eureka_app`: the name to register under (none: not registered). `stop`: a signal
        the caller owns (tests, embedding); by default SIGTERM/SIGINT set a new one."""
        if eureka_app is not None and not isinstance(settings, ServiceSettings):
            raise TypeError(f"{service}: registering needs ServiceSettings (their `eureka`)")
        self.service = service
        self.settings = settings
        self._eureka_app = eureka_app
        self._given_stop = stop
        self.stop = stop or StopSignal()
        self._lease = ExitStack()
        self._resources = ExitStack()
        self._workers: list[Worker] = []
        self._server: uvicorn.Server | None = None

    def __enter__(self) -> ServiceRuntime:
        settings = self.settings
        configure_logging(self.service, settings.log_level, settings.log_file)
        start_tracing(self.service, settings.tracing)
        if self._given_stop is None:
            # Installed first: uvicorn takes the signals over while it serves and hands them
            # back when it stops, so the workers hear the same SIGTERM.
            self.stop.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not isinstance(exc, KeyboardInterrupt):
            log.error("%s stopped by %s: %s", self.service, type(exc).__name__, exc)
        self._lease.close()  # first: callers stop being sent here while the rest winds down
        self.stop.set()
        for worker in self._workers:
            worker.join(timeout=WORKER_STOP_TIMEOUT_S)
            if worker.is_alive():
                log.warning(
                    "%s did not stop within %.0fs; exiting without it",
                    worker.name,
                    WORKER_STOP_TIMEOUT_S,
                )
        self._resources.close()
        log.info("%s stopped", self.service)

    # What the service builds -------------------------------------------------------------

    def on_close(self, what: str, close: Callable[[], object]) -> None:
        """Call `close` at shutdown, after the workers stopped; last registered, first closed."""
        self._resources.callback(self._close, what, close)

    def admin(
        self,
        checks: Mapping[str, HealthCheck],
        *,
        routers: Sequence[APIRouter] = (),
        state: Mapping[str, object] | None = None,
        status_path: str = "/health",
    ) -> AdminServer:
        """Serve `/health`, `/metrics` (and `routers`) from a thread on the admin port, and
        register that port with discovery: for services whose main work is not HTTP."""
        admin = self.settings.admin
        server = AdminServer(
            self.service, checks, admin.host, admin.port, routers=routers, state=state
        ).start()
        self._resources.callback(self._close, "admin server", server.stop)
        self._register(server.port, status_path)
        return server

    def worker(self, name: str, target: Callable[[], object]) -> Worker:
        """Run `target` in a thread now; its end, for whatever reason, stops the service.

        A process with a worker runs a batch stage: its garbage collector is paced for that
        (`tweetpipe.collector`)."""
        pace_for_batches()
        worker = Worker(name, target, self._worker_ended)
        self._workers.append(worker)
        worker.start()
        return worker

    # Running ------------------------------------------------------------------------------

    def wait(self) -> None:
        """Until SIGTERM/SIGINT or the end of a worker."""
        while not self.stop.wait(0.5):
            pass

    def serve(self, app: ASGIApp, *, status_path: str = "/health") -> None:
        """Serve `app` on the admin address until SIGTERM/SIGINT or the end of a worker,
        registered with discovery while it does."""
        host, port = self.settings.admin.host, self.settings.admin.port
        self._server = make_server(app, host, port)
        log.info("serving on http://%s:%d", host, port, extra={"url.full": f"http://{host}:{port}"})
        self._register(port, status_path)
        settle_heap()
        self._server.run()

    @property
    def exit_code(self) -> int:
        """1 when a worker failed (a supervisor should restart the service), else 0."""
        return 1 if any(worker.failed for worker in self._workers) else 0

    # Internals ----------------------------------------------------------------------------

    def _register(self, port: int, status_path: str) -> None:
        if self._eureka_app and isinstance(self.settings, ServiceSettings):
            self._lease.enter_context(
                registered(self.settings, self._eureka_app, port, status_path)
            )

    def _worker_ended(self) -> None:
        self.stop.set()
        if self._server is not None:
            self._server.should_exit = True

    def _close(self, what: str, close: Callable[[], object]) -> None:
        try:
            close()
        except Exception as exc:  # one failed close must not keep the others from running
            log.warning("closing the %s failed: %s", what, exc)
