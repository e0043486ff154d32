"""The local Eureka-protocol registry as a child process, for tests that need discovery."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.ports import free_port
from tests.support.services import ServiceProcess


class RegistryProcess:
    """`python -m devstack.registry` on a free port (or a given one, to restart it)."""

    def __init__(
        self, log_path: Path, eviction_interval_s: float = 60.0, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        env = {
            "ADMIN__PORT": str(self.port),
            "REGISTRY__EVICTION_INTERVAL_S": str(eviction_interval_s),
        }
        self.process = ServiceProcess("devstack.registry", env, log_path)

    @property
    def url(self) -> str:
        """What services take as `EUREKA__SERVER_URL`."""
        return f"http://127.0.0.1:{self.port}/eureka"

    def start(self) -> RegistryProcess:
        self.process.start()
        self.process.wait_healthy(self.port)
        return self

    def stop(self) -> None:
        self.process.terminate()

    def app(self, name: str) -> dict[str, object] | None:
        """`GET /eureka/apps/{name}` as JSON, or None when the registry does not know it."""
        response = httpx.get(
            f"{self.url}/apps/{name}", headers={"Accept": "application/json"}, timeout=5
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        application: dict[str, object] = response.json()["application"]
        return application

    def __enter__(self) -> RegistryProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        if self.process.process is not None and self.process.process.poll() is None:
            self.stop()
