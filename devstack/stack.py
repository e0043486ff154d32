"""Single-machine profile: `tweetpipe up` runs the broker and every service as child processes.

Each child logs JSON; the stack renders those lines for a person (prefixed with the service name)
and keeps the raw JSON under `<data_dir>/logs/`. A child is ready when its health endpoint
answers 200. Platform services (registry, config server, issuer) start and become ready before
the others, which read their settings from them. Prometheus, when given, starts last and scrapes
them all. Ctrl-C (or SIGTERM) stops Prometheus, then the services newest first, then the broker.
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

from devstack.broker import TansuBroker, die_with_parent
from devstack.prometheus import PrometheusServer

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


class LocalStack:
    def __init__(
        self,
        services: list[ServiceSpec],
        data_dir: Path,
        broker_port: int,
        base_env: dict[str, str],
        out: TextIO = sys.stdout,
        prometheus: PrometheusServer | None = None,
    ) -> None:
        self.services = services
        self.data_dir = data_dir
        self.broker = TansuBroker(broker_port, log_path=data_dir / "logs" / "broker.log")
        self._base_env = base_env
        self.prometheus = prometheus
        self._renderer = LogRenderer(out, colour=out.isatty())
        self._children: dict[str, subprocess.Popen[str]] = {}
        self._stopping = threading.Event()

    def start(self, ready_timeout_s: float = 120.0) -> None:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._renderer.say(f"starting Kafka broker (Tansu) on {self.broker.bootstrap_servers}")
        self.broker.start()
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
        self._children[spec.name] = process
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
        process = self._children[spec.name]
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
        """Block until a stop signal or a service fails; returns the exit code for the CLI."""
        if on_ready:
            on_ready()
        while not self._stopping.wait(0.5):
            for spec in self.services:
                code = self._children[spec.name].poll()
                if code is None or (spec.one_shot and code == 0):
                    continue
                self._renderer.say(f"{spec.name} exited with {code}; stopping everything")
                return 1
        return 0

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop services newest first (producers before the consumers draining them)."""
        self._stopping.set()
        if self.prometheus is not None:
            self.prometheus.stop()
        for name, process in reversed(self._children.items()):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    self._renderer.say(f"{name} did not stop in {grace_s:.0f}s; killing it")
                    process.kill()
                    process.wait()
        self.broker.stop()
        self._renderer.say("stopped")
