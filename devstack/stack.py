"""Single-machine profile: `tweetpipe up` runs the broker and every service as child processes.

Each child logs JSON; the stack renders those lines for a person (prefixed with the service name)
and keeps the raw JSON under `<data_dir>/logs/`. A child is ready when its health endpoint
answers 200. Platform services (registry, config server, issuer) start and become ready before
the others, which read their settings from them. Prometheus, when given, starts last and scrapes
them all.

A service that exits on its own is restarted with backoff (`devstack.supervise`), loudly, and
the stack gives up (exit 1, naming it) only after repeated failures in a row. Ctrl-C (or
SIGTERM) drains before it stops: the services that feed the broker (the generator) stop first,
then the stack waits, bounded and with progress lines, until every consuming stage has
processed everything in the broker (`devstack.drain`), then stops Prometheus, the other
services newest first, and the broker. A second Ctrl-C skips the wait.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

import httpx
import orjson
from kafka.errors import KafkaError

from devstack.broker import TansuBroker, die_with_parent
from devstack.drain import BacklogMeter, DrainOptions
from devstack.prometheus import PrometheusServer
from devstack.supervise import (
    GaveUp,
    MemoryWatch,
    RestartPolicy,
    SupervisorOptions,
    describe_exit,
)

COLOURS = ["\033[36m", "\033[35m", "\033[33m", "\033[32m", "\033[34m", "\033[91m"]
RESET = "\033[0m"


@dataclass
class ServiceSpec:
    name: str
    module: str
    admin_port: int
    env: dict[str, str] = field(default_factory=dict)
    one_shot: bool = False
    """Exits by itself when done (e.g. a generator with a count); exit 0 is not a failure."""
    platform: bool = False
    """Started, and ready, before every non-platform service."""
    health_path: str = "/health"
    scraped: bool = True
    """Serves Prometheus `/metrics` on its admin port."""
    feeds_broker: bool = False
    """A source (the generator): stopped first on Ctrl-C, so the stages can drain the broker."""

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}{self.health_path}"


class LogRenderer:
    """Writes a child's JSON log lines as `name | time LEVEL message` to the terminal."""

    def __init__(self, out: TextIO, colour: bool) -> None:
        self._out = out
        self._colour = colour
        self._lock = threading.Lock()
        self._width = 21

    def line(self, name: str, index: int, raw: str) -> None:
        text = raw.rstrip("\n")
        try:
            event = orjson.loads(text)
            stamp = str(event.get("@timestamp", ""))[11:19]
            level = str(event.get("log.level", "info")).upper()
            text = f"{stamp} {level:<7} {event.get('message', '')}"
        except (orjson.JSONDecodeError, AttributeError):
            pass
        prefix = f"{name:<{self._width}}|"
        if self._colour:
            prefix = f"{COLOURS[index % len(COLOURS)]}{prefix}{RESET}"
        with self._lock:
            self._out.write(f"{prefix} {text}\n")
            self._out.flush()

    def say(self, text: str) -> None:
        self.line("tweetpipe", -1, text)

    def alarm(self, text: str) -> None:
        """A line nobody should miss: upper-case marker, bold red on a terminal."""
        marked = f"!!! {text}"
        self.say(f"\033[1;91m{marked}{RESET}" if self._colour else marked)


@dataclass
class _Child:
    index: int
    spec: ServiceSpec
    process: subprocess.Popen[str]
    started: float
    restart_at: float | None = None
    stopped: bool = False
    """Stopped by the stack: its exit is expected."""


class LocalStack:
    def __init__(
        self,
        services: list[ServiceSpec],
        data_dir: Path,
        broker_port: int,
        base_env: dict[str, str],
        out: TextIO = sys.stdout,
        prometheus: PrometheusServer | None = None,
        *,
        supervisor: SupervisorOptions | None = None,
        backlog: BacklogMeter | None = None,
        drain: DrainOptions | None = None,
    ) -> None:
        """`backlog`: how Ctrl-C knows the stages have caught up (none: stop without draining)."""
        self.services = services
        self.data_dir = data_dir
        self.broker = TansuBroker(broker_port, log_path=data_dir / "logs" / "broker.log")
        self._base_env = base_env
        self.prometheus = prometheus
        self._renderer = LogRenderer(out, colour=out.isatty())
        self._children: dict[str, _Child] = {}
        self._stopping = threading.Event()
        self._stop_requests = 0
        supervisor = supervisor or SupervisorOptions()
        self.policy = RestartPolicy(supervisor)
        self._broker_memory = MemoryWatch(supervisor.broker_memory_warn_mb)
        self._backlog = backlog
        self._drain = drain or DrainOptions()

    def start(self, ready_timeout_s: float = 120.0) -> None:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._renderer.say(f"starting Kafka broker (Tansu) on {self.broker.bootstrap_servers}")
        self.broker.start()
        self._renderer.say(f"Kafka broker started (pid {self.broker.pid})")
        for platform in (True, False):
            group = [(i, spec) for i, spec in enumerate(self.services) if spec.platform == platform]
            for index, spec in group:
                self._spawn(index, spec)
            for _, spec in group:
                self._await_ready(spec, ready_timeout_s)
        if self.prometheus is not None:
            self._renderer.say(f"starting Prometheus on {self.prometheus.url}")
            self.prometheus.start()

    def _spawn(self, index: int, spec: ServiceSpec) -> None:
        env = {**os.environ, **self._base_env, **spec.env, "ADMIN__PORT": str(spec.admin_port)}
        env["PYTHONUNBUFFERED"] = "1"
        process = subprocess.Popen(
            [sys.executable, "-m", spec.module],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the stack, which stops children in order
            preexec_fn=die_with_parent,
        )
        self._children[spec.name] = _Child(index, spec, process, time.monotonic())
        self._renderer.say(f"{spec.name} started (pid {process.pid})")
        log_file = (self.data_dir / "logs" / f"{spec.name}.log").open("a")
        threading.Thread(
            target=self._pump, args=(spec.name, index, process.stdout, log_file), daemon=True
        ).start()

    def _pump(self, name: str, index: int, stream: IO[str] | None, log_file: IO[str]) -> None:
        assert stream is not None
        with log_file:
            for raw in stream:
                log_file.write(raw)
                self._renderer.line(name, index, raw)

    def _await_ready(self, spec: ServiceSpec, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        process = self._children[spec.name].process
        while time.monotonic() < deadline:
            if process.poll() is not None:
                if spec.one_shot and process.returncode == 0:
                    return
                raise RuntimeError(f"{spec.name} exited with {process.returncode} while starting")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(spec.health_url, timeout=1.0).status_code == 200:
                    self._renderer.say(f"{spec.name} is up: {spec.health_url}")
                    return
            time.sleep(0.2)
        raise TimeoutError(f"{spec.name} not healthy at {spec.health_url} after {timeout_s:.0f}s")

    def wait(self, on_ready: Callable[[], None] | None = None) -> int:
        """Block until a stop signal, restarting services that exit; raises `GaveUp` when one
        keeps failing. Returns the exit code for the CLI."""
        if on_ready:
            on_ready()
        while not self._stopping.wait(0.5):
            self.supervise()
            if (mb := self._broker_memory.check(self.broker.pid)) is not None:
                self._renderer.alarm(
                    f"the Kafka broker holds {mb:,.0f} MB in memory and keeps every record "
                    "(no retention on the local broker): Ctrl-C and start again to free it"
                )
        return 0

    def supervise(self) -> None:
        """One look at every child: note unexpected exits, start those whose backoff is over."""
        now = time.monotonic()
        for child in list(self._children.values()):
            spec, process = child.spec, child.process
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._spawn(child.index, spec)
                    threading.Thread(target=self._announce_ready, args=(spec,), daemon=True).start()
                continue
            code = process.poll()
            if code is None or (spec.one_shot and code == 0) or child.stopped:
                continue
            how = describe_exit(code)
            restart = self.policy.failed(spec.name, code, now - child.started)  # may give up
            child.restart_at = now + restart.delay_s
            self._renderer.alarm(
                f"{spec.name} exited unexpectedly ({how}) after {now - child.started:.0f}s; "
                f"restarting it in {restart.delay_s:.1f}s (restart {restart.number}, "
                f"failure {restart.streak} in a row)"
            )

    def _announce_ready(self, spec: ServiceSpec) -> None:
        process = self._children[spec.name].process
        while process.poll() is None and not self._stopping.is_set():
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(spec.health_url, timeout=1.0).status_code == 200:
                    self._renderer.say(f"{spec.name} is up again: {spec.health_url}")
                    return
            time.sleep(0.5)

    def request_stop(self) -> None:
        """Ctrl-C or SIGTERM: the first drains then stops; a second one skips the drain."""
        self._stop_requests += 1
        self._stopping.set()

    def stop(self, grace_s: float = 20.0) -> None:
        """Sources first, then (after a requested stop) the drain, then Prometheus, then the
        other services newest first (producers before the consumers draining them)."""
        drain = self._stop_requests > 0 and self._backlog is not None
        self._stopping.set()
        for child in reversed(self._children.values()):
            if child.spec.feeds_broker:
                self._terminate(child, grace_s)
        if drain:
            try:
                self._drain_backlog()
            except (GaveUp, KafkaError) as exc:  # still stop everything else, in order
                self._renderer.alarm(f"drain abandoned: {exc}")
        if self.prometheus is not None:
            self.prometheus.stop()
        for child in reversed(self._children.values()):
            self._terminate(child, grace_s)
        if self._backlog is not None:
            self._backlog.close()
        self.broker.stop()
        self._renderer.say(f"stopped (restarts: {self.policy.summary()})")

    def _terminate(self, child: _Child, grace_s: float) -> None:
        child.stopped = True
        process = child.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._renderer.say(f"{child.spec.name} did not stop in {grace_s:.0f}s; killing it")
                process.kill()
                process.wait()

    def _drain_backlog(self) -> None:
        """Until every stage has processed everything in the broker, or the timeout."""
        assert self._backlog is not None
        options = self._drain
        self._renderer.say(
            f"draining: waiting up to {options.timeout_s:.0f}s for the stages to process "
            "everything in the broker (Ctrl-C again to stop now)"
        )
        started = time.monotonic()
        next_progress = started
        empty_in_row = 0
        left: dict[str, int | None] = {}
        while time.monotonic() - started < options.timeout_s:
            if self._stop_requests > 1:
                self._renderer.alarm("drain skipped: stopping with records still unprocessed")
                return
            self.supervise()  # a stage that dies while draining is restarted
            left = self._backlog.measure()
            empty_in_row = empty_in_row + 1 if all(n == 0 for n in left.values()) else 0
            if empty_in_row >= options.settle_checks:
                stages = ", ".join(left)
                self._renderer.say(f"drained: lag 0 for {stages}; stopping the services")
                return
            if time.monotonic() >= next_progress:
                behind = ", ".join(
                    f"{stage} {'?' if n is None else f'{n:,}'}" for stage, n in left.items()
                )
                self._renderer.say(
                    f"draining ({time.monotonic() - started:.0f}s): records left: {behind}"
                )
                next_progress += options.progress_interval_s
            time.sleep(options.interval_s)
        total = sum(n or 0 for n in left.values())
        unknown = [stage for stage, n in left.items() if n is None]
        more = f" (and {', '.join(unknown)} not answering)" if unknown else ""
        self._renderer.alarm(
            f"drain timed out after {options.timeout_s:.0f}s with {total:,} records "
            f"unprocessed{more} "
            "(the memory-only broker loses them when it stops)"
        )
