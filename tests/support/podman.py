"""podman as the Docker engine for docker-compose, for the container rehearsal.

`podman system service` serves the Docker API on a unix socket in a directory of the test's;
`DOCKER_HOST` points docker-compose there and `CONTAINERS_CONF` points podman at the project's
`infra/rehearsal/containers.conf`. The machine's own configuration is never edited.

podman runs health checks from systemd timers; with no systemd here nothing would run them, so
`HealthTicker` runs each container's check itself (`podman healthcheck run`) on its interval,
as the timer would, while compose waits for `service_healthy`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx

from tweetpipe.settings import REPO_ROOT

CONTAINERS_CONF = REPO_ROOT / "infra" / "rehearsal" / "containers.conf"
BINARIES = ("podman", "runc", "iptables", "docker-compose")
HELPERS = (Path("/usr/lib/podman/netavark"), Path("/usr/lib/podman/aardvark-dns"))


class EngineUnavailable(RuntimeError):
    """The container engine cannot run here; the message says why."""


class Engine:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "podman.sock"
        self.log = directory / "podman-service.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONTAINERS_CONF": str(CONTAINERS_CONF),
            "DOCKER_HOST": f"unix://{self.socket}",
        }

    def podman(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def start(self, timeout_s: float = 30) -> Engine:
        missing = [name for name in BINARIES if shutil.which(name) is None]
        missing += [str(helper) for helper in HELPERS if not helper.exists()]
        if missing:
            raise EngineUnavailable(f"not installed: {', '.join(missing)} (./dev installs them)")
        info = self.podman("info", "--format", "json")
        if info.returncode != 0:
            raise EngineUnavailable(f"podman info failed: {info.stderr.strip()}")
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        transport = httpx.HTTPTransport(uds=str(self.socket))
        deadline = time.monotonic() + timeout_s
        with httpx.Client(transport=transport, base_url="http://podman") as client:
            while True:
                if self._process.poll() is not None:
                    raise EngineUnavailable(f"podman system service exited: {self.log_tail()}")
                try:
                    if client.get("/_ping", timeout=2).text == "OK":
                        return self
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise EngineUnavailable(f"no Docker API on {self.socket}: {self.log_tail()}")
                time.sleep(0.2)

    def limits(self) -> tuple[int, int, int]:
        """The engine's own (nproc, nofile, memlock bytes) hard limits: runc refuses to give a
        container more, and podman adds nproc 1048576 to any container that sets a ulimit."""
        pid = self._process.pid if self._process is not None else os.getpid()
        hard: dict[str, int] = {}
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]:
            name, values = line[:26].strip(), line[26:].split()
            hard[name] = 2**62 if values[1] == "unlimited" else int(values[1])
        return hard["Max processes"], hard["Max open files"], hard["Max locked memory"]

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None


class HealthTicker:
    """Runs the health checks of the containers of one compose project while running."""

    def __init__(self, engine: Engine, project: str, starting_interval_s: float = 3.0) -> None:
        self.engine = engine
        self.project = project
        self.starting_interval_s = starting_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-ticker", daemon=True)
        self._due: dict[str, float] = {}

    def __enter__(self) -> HealthTicker:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _containers(self) -> list[dict[str, object]]:
        listed = self.engine.podman(
            "ps", "--format", "json", "--filter", f"label=com.docker.compose.project={self.project}"
        )
        if listed.returncode != 0 or not listed.stdout.strip():
            return []
        found: list[dict[str, object]] = json.loads(listed.stdout)
        return found

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            now = time.monotonic()
            for container in self._containers():
                ident = str(container["Id"])
                if self._due.get(ident, 0) > now:
                    continue
                status = str(container.get("Status", ""))
                result = self.engine.podman("healthcheck", "run", ident, timeout=60)
                if "no defined healthcheck" in result.stderr:
                    self._due[ident] = float("inf")
                    continue
                # While starting, probe often (compose waits on it); then every 10 s, the
                # interval most of the compose files' checks give.
                healthy = result.returncode == 0 and "starting" not in status
                self._due[ident] = now + (10.0 if healthy else self.starting_interval_s)
