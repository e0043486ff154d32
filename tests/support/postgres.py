"""A throwaway PostgreSQL for tests and benchmarks, from Debian's `postgresql` binaries.

Never the machine's own server: a cluster of its own (`initdb`) in a fresh temporary
directory, listening on a free loopback port, with its socket in that directory too. PostgreSQL
refuses to run as root, so when the tests run as root the cluster is created and run as the
`postgres` system user, owning the directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.support.ports import free_port
from tweetpipe.waiting import Gone, wait_until

SUPERUSER = "postgres"


def postgres_bin_dir() -> Path:
    """The newest installed `/usr/lib/postgresql/<version>/bin` (Debian's layout)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise RuntimeError("PostgreSQL binaries not found: apt-get install postgresql (./dev does)")
    return candidates[-1].parent


class PostgresServer:
    """`initdb` + `postgres` on 127.0.0.1:`port`; `stop()`/`start()` keep the data directory.

    `fast=True` turns off fsync and friends: fine for tests, whose data is thrown away; a
    benchmark that means to measure durable commits passes `fast=False`.
    """

    def __init__(self, port: int | None = None, fast: bool = True) -> None:
        self.port = port or free_port()
        self.fast = fast
        self.bin_dir = postgres_bin_dir()
        self.base_dir = Path(tempfile.mkdtemp(prefix="tweetpipe-pg-"))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "socket"
        self.log_path = self.base_dir / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._initialised = False
        self._as_postgres = os.geteuid() == 0

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run_as(self) -> dict[str, Any]:
        """Popen arguments that drop root for the `postgres` user (no-op when not root)."""
        if not self._as_postgres:
            return {}
        return {"user": SUPERUSER, "group": pwd.getpwnam(SUPERUSER).pw_gid, "extra_groups": []}

    def _initdb(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            user = pwd.getpwnam(SUPERUSER)
            for path in (self.base_dir, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
            self.base_dir.chmod(0o755)
        result = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            check=False,
            **self._run_as(),
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout.decode()}{result.stderr.decode()}")
        self._initialised = True

    def start(self, timeout_s: float = 30.0) -> PostgresServer:
        """Start (running `initdb` the first time) and wait until it accepts queries."""
        if not self._initialised:
            self._initdb()
        options = [
            "listen_addresses=127.0.0.1",
            f"port={self.port}",
            f"unix_socket_directories={self.socket_dir}",
            "max_connections=50",
            "shared_buffers=64MB",
        ]
        if self.fast:
            options += ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]
        command = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        for option in options:
            command += ["-c", option]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **self._run_as(),
            )
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        engine = create_engine(self.url(), connect_args={"connect_timeout": 2})
        process = self._process
        assert process is not None

        def answers() -> bool:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True

        try:
            wait_until(
                answers,
                timeout_s,
                "postgres",
                interval_s=0.05,
                ignore=(OperationalError,),
                gone=lambda: None if process.poll() is None else "exited early",
            )
        except (TimeoutError, Gone) as exc:
            self.stop()
            raise RuntimeError(f"{exc}:\n{self.output[-4000:]}") from None
        finally:
            engine.dispose()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, close connections, exit)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def close(self) -> None:
        """Stop and delete the cluster."""
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()
