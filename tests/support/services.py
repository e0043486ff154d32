"""Run tweetpipe services as real child processes, the way they are deployed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tweetpipe.lifecycle import die_with_parent
from tweetpipe.waiting import Gone, wait_until


class ServiceProcess:
    """`python -m <module>` with settings passed as environment variables."""

    def __init__(self, module: str, env: dict[str, str], log_path: Path) -> None:
        self.module = module
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                # No registry unless a test gives one: the local profile's default (port 8761)
                # could be a registry someone else runs on this machine.
                env={**os.environ, "PYTHONUNBUFFERED": "1", "EUREKA__SERVER_URL": "", **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,  # a killed test run leaves no services behind
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, pattern: str, timeout_s: float = 60.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            if match := regex.search(self.output):
                return match
            if self.process and self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(
            f"{self.module}: no log line matching {pattern!r}:\n{self.output[-4000:]}"
        )

    def wait_healthy(self, port: int, timeout_s: float = 60.0) -> None:
        try:
            wait_until(
                lambda: httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200,
                timeout_s,
                f"{self.module} healthy",
                ignore=(httpx.HTTPError,),
                gone=self._exited,
            )
        except (TimeoutError, Gone) as exc:
            raise AssertionError(f"{exc}:\n{self.output[-4000:]}") from None

    def _exited(self) -> str | None:
        assert self.process is not None
        code = self.process.poll()
        return None if code is None else f"exited early with {code}"

    def wait_exit(self, timeout_s: float = 120.0) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.module} still running:\n{self.output[-4000:]}") from None

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait: the graceful path a supervisor takes."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout_s)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def metric_value(port: int, name: str, labels: str = "") -> float:
    """Sum of a metric's samples from a running service's `/metrics`."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + (labels or "")) and not line.startswith("#"):
            head, _, value = line.rpartition(" ")
            if head == name or head.startswith(name + "{"):
                total += float(value)
    return total
