"""A real Elasticsearch-API server for tests: `noida-db` (presents itself as Elasticsearch 8.15).

It is an emulator: slow at scale, so tests keep their data small. It writes its data dir on every
write, so a restart (even after SIGKILL) with the same data dir keeps acknowledged documents.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.ports import free_port
from tweetpipe.lifecycle import StartStop


def noida_binary() -> str:
    """The `noida-db` script installed next to this interpreter (the project's virtualenv)."""
    found = shutil.which("noida-db", path=str(Path(sys.executable).parent)) or shutil.which(
        "noida-db"
    )
    if found is None:
        raise RuntimeError("noida-db is not installed: pip install -e '.[dev]'")
    return found


class ElasticsearchServer(StartStop):
    """`noida-db start --only elasticsearch` on loopback, on a fixed port and data dir."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, timeout_s: float = 30.0) -> ElasticsearchServer:
        """Start and wait until `GET /` answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            noida_binary(),
            "start",
            "--only",
            "elasticsearch",
            "--host",
            "127.0.0.1",
            "--elasticsearch-port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        with self.log_path.open("ab") as log:
            # The script runs the real binary as a child: a session of its own lets stop()
            # signal both.
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"noida-db exited early:\n{self.output[-4000:]}")
            try:
                if httpx.get(self.url, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"noida-db did not answer within {timeout_s}s:\n{self.output[-4000:]}")

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the server's process group and wait; SIGKILL if it does not exit."""
        process, self._process = self._process, None
        if process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=timeout_s)
                self._wait_group_gone(process.pid, timeout_s)
                break
            except (subprocess.TimeoutExpired, TimeoutError):
                continue

    @staticmethod
    def _wait_group_gone(pgid: int, timeout_s: float) -> None:
        """The binary outlives the wrapper script briefly; wait so port and files are free."""
        deadline = time.monotonic() + timeout_s
        while _live_members(pgid):
            if time.monotonic() > deadline:
                raise TimeoutError(f"noida-db process group {pgid} still running")
            time.sleep(0.05)

    def restart(self) -> ElasticsearchServer:
        """Stop and start again on the same port and data dir."""
        self.stop()
        return self.start()


def _live_members(pgid: int) -> list[int]:
    """Processes of group `pgid` that have not exited (zombies awaiting reaping do not count)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, process_group = fields[0], int(fields[2])
        if process_group == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members
