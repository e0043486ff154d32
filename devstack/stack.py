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

The memory-only broker honours no retention, so its memory grows with every record. Past a
limit the stack recycles it the same careful way: sources stopped, stages drained, dead letters
archived to disk, then the broker and the services that use it started again, empty. The
stages carry on from their disk state (the word count rebases its stores onto the new topics).
A broker that dies on its own is started again the same way, without the drain it cannot do.
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

from devstack.broker import TansuBroker
from devstack.dead_letters import ArchiveIncomplete, archive_topic
from devstack.drain import BacklogMeter, DrainOptions
from devstack.prometheus import PrometheusServer
from devstack.supervise import (
    BrokerMemory,
    GaveUp,
    RestartPolicy,
    SupervisorOptions,
    describe_exit,
)
from tweetpipe.lifecycle import die_with_parent

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
    uses_broker: bool = False
    """Keeps broker state (positions, producer ids, transactions): restarted with the broker."""

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


@dataclass(frozen=True)
class DrainResult:
    drained: bool
    left: str
    """What was still unprocessed when the wait ended (empty when drained)."""


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
        dead_letter_topic: str | None = None,
    ) -> None:
        """`backlog`: how Ctrl-C knows the stages have caught up (none: stop without draining,
        and never recycle the broker). `dead_letter_topic`: archived before a recycle."""
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
        self._supervisor = supervisor
        self._broker_memory = BrokerMemory(
            supervisor.broker_recycle_mb, supervisor.broker_recycle_every_s
        )
        self._broker_started = 0.0
        self.recycles = 0
        self._backlog = backlog
        self._drain = drain or DrainOptions()
        self._dead_letter_topic = dead_letter_topic

    def start(self, ready_timeout_s: float = 120.0) -> None:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._start_broker()
        for platform in (True, False):
            group = [(i, spec) for i, spec in enumerate(self.services) if spec.platform == platform]
            for index, spec in group:
                self._spawn(index, spec)
            for _, spec in group:
                self._await_ready(spec, ready_timeout_s)
        if self.prometheus is not None:
            self._renderer.say(f"starting Prometheus on {self.prometheus.url}")
            self.prometheus.start()

    def _start_broker(self) -> None:
        self._renderer.say(f"starting Kafka broker (Tansu) on {self.broker.bootstrap_servers}")
        self.broker.start()
        self._broker_started = time.monotonic()
        self._renderer.say(f"Kafka broker started (pid {self.broker.pid})")

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
            self._watch_broker()
        return 0

    def _watch_broker(self) -> None:
        """A broker that died is started again; one past its memory limit is recycled."""
        now = time.monotonic()
        code = self.broker.exit_code
        if code is not None:
            restart = self.policy.failed("kafka-broker", code, now - self._broker_started)
            self._renderer.alarm(
                f"the Kafka broker exited unexpectedly ({describe_exit(code)}) after "
                f"{now - self._broker_started:.0f}s: the records it held are lost (what the "
                "stages wrote to disk is kept); starting it and the services that use it again "
                f"in {restart.delay_s:.1f}s (restart {restart.number}, failure {restart.streak} "
                "in a row)"
            )
            if not self._stopping.wait(restart.delay_s):
                self._restart_broker()
            return
        if (mb := self._broker_memory.over_limit(self.broker.pid, now)) is not None:
            self.recycle_broker(mb)
            self._broker_memory.tried(time.monotonic())

    def recycle_broker(self, resident_mb: float) -> bool:
        """Empty the memory-only broker without losing a record: stop the sources, wait until
        every stage has processed everything, archive the dead letters to disk, then start the
        broker and the services that use it again. Abandoned (sources started again, nothing
        else touched) when the stages do not catch up or the archive cannot be written."""
        if self._backlog is None:
            return False
        running_finite = [
            child.spec.name
            for child in self._children.values()
            if child.spec.feeds_broker and child.spec.one_shot and child.process.poll() is None
        ]
        if running_finite:  # a counted run ends by itself: its memory is bounded by its count
            return False
        started = time.monotonic()
        limit = self._supervisor.broker_recycle_mb
        self._renderer.alarm(
            f"the Kafka broker holds {resident_mb:,.0f} MB (limit {limit:,} MB; it keeps every "
            "record): recycling it: stopping the sources, draining the stages, archiving the dead "
            "letters, then starting it again empty"
        )
        sources = [child for child in self._children.values() if child.spec.feeds_broker]
        for child in sources:
            self._terminate(child, grace_s=20.0)
        result = self._drain_backlog(recycling=True)
        if not result.drained:
            self._renderer.alarm(f"broker recycle abandoned: drain {result.left}")
            self._resume(sources)
            return False
        archived = ""
        if self._dead_letter_topic is not None:
            try:
                archive = archive_topic(
                    [self.broker.bootstrap_servers],
                    self._dead_letter_topic,
                    self.data_dir / "dead-letters",
                )
            except (ArchiveIncomplete, KafkaError) as exc:
                self._renderer.alarm(f"broker recycle abandoned: dead letters not archived: {exc}")
                self._resume(sources)
                return False
            archived = (
                f"; {archive.records:,} dead letters archived to {archive.path}"
                if archive.path
                else "; no dead letters to archive"
            )
        self._restart_broker()
        self.recycles += 1
        self._renderer.say(
            f"broker recycled in {time.monotonic() - started:.0f}s (recycle {self.recycles})"
            f"{archived}"
        )
        return True

    def _restart_broker(self) -> None:
        """Stop the services that use the broker and the broker; start the broker empty, then
        the consuming stages, then (once they are up) the sources."""
        users = [child for child in self._children.values() if child.spec.uses_broker]
        for child in reversed(users):
            self._terminate(child, grace_s=20.0)
        if self._backlog is not None:
            self._backlog.close()  # its connections are to the broker being replaced
        self.broker.stop()
        self._start_broker()
        self._respawn([child for child in users if not child.spec.feeds_broker])
        self._respawn([child for child in users if child.spec.feeds_broker])

    def _resume(self, sources: list[_Child]) -> None:
        """After an abandoned recycle: the sources run again, unless the stack is stopping."""
        if not self._stopping.is_set():
            self._renderer.say("starting the sources again; the broker is left as it is")
            self._respawn(sources)

    def _respawn(self, children: list[_Child]) -> None:
        """Start these again and wait for them to be healthy; one that fails is left to the
        supervisor (restart with backoff), like any unexpected exit."""
        for child in children:
            self._spawn(child.index, child.spec)
        for child in children:
            try:
                self._await_ready(child.spec, timeout_s=120.0)
            except (RuntimeError, TimeoutError) as exc:
                self._renderer.alarm(f"{child.spec.name} did not come back: {exc}")

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
                result = self._drain_backlog(recycling=False)
                if not result.drained and self._stop_requests < 2:
                    self._renderer.alarm(
                        f"drain {result.left} (the memory-only broker loses them when it stops)"
                    )
            except (GaveUp, KafkaError) as exc:  # still stop everything else, in order
                self._renderer.alarm(f"drain abandoned: {exc}")
        if self.prometheus is not None:
            self.prometheus.stop()
        for child in reversed(self._children.values()):
            self._terminate(child, grace_s)
        if self._backlog is not None:
            self._backlog.close()
        self.broker.stop()
        recycled = f", broker recycled {self.recycles} times" if self.recycles else ""
        self._renderer.say(f"stopped (restarts: {self.policy.summary()}{recycled})")

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

    def _drain_backlog(self, *, recycling: bool) -> DrainResult:
        """Until every stage has processed everything in the broker, or the timeout. A stop
        request ends a recycle's wait (the stop drains by itself); a second one the stop's."""
        assert self._backlog is not None
        options = self._drain
        again = "" if recycling else " (Ctrl-C again to stop now)"
        self._renderer.say(
            f"draining: waiting up to {options.timeout_s:.0f}s for the stages to process "
            f"everything in the broker{again}"
        )
        started = time.monotonic()
        next_progress = started
        empty_in_row = 0
        left: dict[str, int | None] = {}
        while time.monotonic() - started < options.timeout_s:
            if self._stop_requests > (0 if recycling else 1):
                if not recycling:
                    self._renderer.alarm("drain skipped: stopping with records still unprocessed")
                return DrainResult(drained=False, left="interrupted by a stop request")
            self.supervise()  # a stage that dies while draining is restarted
            left = self._backlog.measure()
            empty_in_row = empty_in_row + 1 if all(n == 0 for n in left.values()) else 0
            if empty_in_row >= options.settle_checks:
                stages = ", ".join(left)
                self._renderer.say(f"drained: lag 0 for {stages}")
                return DrainResult(drained=True, left="")
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
        return DrainResult(
            drained=False,
            left=f"timed out after {options.timeout_s:.0f}s with {total:,} records "
            f"unprocessed{more}",
        )
