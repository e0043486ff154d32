"""Single-machine profile only: Debian's Prometheus scraping the services `tweetpipe up` runs.

Optional: when the `prometheus` binary is not installed the stack runs without it (every
service still serves `/metrics`). The scrape configuration is generated from the services
actually started, so it cannot drift from them; the cluster profile uses
`infra/prometheus/prometheus.yml` instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel, Field

from devstack.broker import stop_process
from devstack.loopback import refusal
from tweetpipe.lifecycle import StartStop, die_with_parent
from tweetpipe.waiting import wait_until

log = logging.getLogger(__name__)

DEBIAN_BINARY = Path("/usr/bin/prometheus")


class PrometheusOptions(BaseModel):
    """The local Prometheus' knobs (the stack's settings embed this)."""

    port: int = Field(default=9090, ge=0, le=65535)
    scrape_interval_s: float = Field(default=5.0, gt=0)
    retention: str = "2d"
    """How long samples stay on disk (`--storage.tsdb.retention.time`)."""


class ScrapeTarget(BaseModel):
    """One service to scrape: its application name becomes the Prometheus `job`."""

    job: str = Field(pattern=r"^[a-zA-Z0-9_-]+$")
    address: str = Field(pattern=r"^[^/\s]+:\d+$")
    """`host:port` of the service's `/metrics`."""


def prometheus_binary() -> Path | None:
    """The installed `prometheus` (Debian package `prometheus`), or None."""
    found = shutil.which("prometheus")
    if found:
        return Path(found)
    return DEBIAN_BINARY if DEBIAN_BINARY.is_file() else None


def prometheus_available() -> bool:
    return prometheus_binary() is not None


def scrape_config(
    targets: Sequence[ScrapeTarget],
    scrape_interval_s: float,
    rule_files: Sequence[Path] = (),
    scrape_configs: Sequence[Mapping[str, Any]] = (),
) -> str:
    """prometheus.yml for `targets`, one job per service, as the cluster profile names them,
    evaluating the alert and recording rules in `rule_files`; `scrape_configs` are further
    jobs, as written in a prometheus.yml."""
    interval = f"{scrape_interval_s:g}s"
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
    }
    if rule_files:
        config["rule_files"] = [str(path) for path in rule_files]
    config["scrape_configs"] = [
        {
            "job_name": target.job,
            "metrics_path": "/metrics",
            "static_configs": [{"targets": [target.address]}],
        }
        for target in targets
    ] + [dict(job) for job in scrape_configs]
    return yaml.safe_dump(config, sort_keys=False)


class PrometheusServer(StartStop):
    """A Prometheus child process on loopback, its config and data under `data_dir`."""

    def __init__(
        self,
        port: int,
        *,
        targets: Sequence[ScrapeTarget],
        data_dir: Path,
        host: str = "127.0.0.1",
        scrape_interval_s: float = 5.0,
        retention: str = "2d",
        log_path: Path | None = None,
        rule_files: Sequence[Path] = (),
        scrape_configs: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        allowed = bool(os.environ.get("TWEETPIPE_ALLOW_PUBLIC_PROMETHEUS"))
        override = "TWEETPIPE_ALLOW_PUBLIC_PROMETHEUS=1"
        if reason := refusal("the local Prometheus", host, allowed=allowed, override=override):
            raise ValueError(reason)
        jobs = [t.job for t in targets]
        if len(set(jobs)) != len(jobs):
            raise ValueError(f"duplicate scrape jobs: {jobs}")
        self.host = host
        self.port = port
        self.targets = list(targets)
        self.data_dir = data_dir
        self._interval_s = scrape_interval_s
        self._retention = retention
        self._log_path = log_path or data_dir / "prometheus.log"
        self._rule_files = list(rule_files)
        self._scrape_configs = list(scrape_configs)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "prometheus.yml"

    def start(self, timeout_s: float = 30.0) -> PrometheusServer:
        binary = prometheus_binary()
        if binary is None:
            raise FileNotFoundError(
                "prometheus is not installed (Debian: apt-get install prometheus)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            scrape_config(self.targets, self._interval_s, self._rule_files, self._scrape_configs)
        )
        command = [
            str(binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
            f"--storage.tsdb.retention.time={self._retention}",
            f"--web.listen-address={self.host}:{self.port}",
        ]
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as output:
            # Own session: Ctrl-C reaches the stack, which stops Prometheus after the services.
            self._process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        log.info("Prometheus on %s scraping %d services", self.url, len(self.targets))
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        process = self._process
        assert process is not None

        def exited() -> str | None:
            if process.poll() is None:
                return None
            tail = self._log_path.read_text(errors="replace")[-2000:]
            return f"exited with {process.returncode}:\n{tail}"

        wait_until(
            lambda: httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200,
            timeout_s,
            f"prometheus ready at {self.url}",
            ignore=(httpx.HTTPError,),
            gone=exited,
        )

    def stop(self) -> None:
        stop_process(self._process, timeout_s=10)
        self._process = None
