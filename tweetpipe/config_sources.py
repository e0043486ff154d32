"""Settings sources that follow Spring Cloud Config's layout.

Both sources yield nested dicts. Files in the config repo may nest keys (YAML) or spell them
dotted (`kafka.linger_ms: 5`), as Spring property sources do; both forms mean the same thing.
Which files apply, in which order, lives in `config_layout`, shared with the config server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from tweetpipe.config_layout import (
    FileReader,
    merge_property_sources,
    read_property_sources,
    split_profiles,
    unflatten,
)

__all__ = [
    "DEFAULT_USERNAME",
    "DEV_PASSWORD",
    "ConfigRepoSource",
    "ConfigServerSource",
    "ConfigUnavailable",
    "directory_reader",
    "fetch_config",
    "load_config_repo",
    "unflatten",
]

log = logging.getLogger(__name__)


class ConfigUnavailable(SystemExit):
    """The config server could not be reached and `config_server_fail_fast` is set.

    A `SystemExit`, so a service refuses to start with this one line instead of a traceback.
    """


class _Bootstrap(Protocol):
    def get(self, name: str, default: object = None) -> object: ...


def directory_reader(directory: Path) -> FileReader:
    def read(name: str) -> str | None:
        path = directory / name
        return path.read_text() if path.is_file() else None

    return read


def load_config_repo(directory: Path, application: str, profile: str) -> dict[str, Any]:
    sources = read_property_sources(
        directory_reader(directory), f"file:{directory}", application, split_profiles(profile)
    )
    return merge_property_sources(sources)


class _NestedDictSource(PydanticBaseSettingsSource):
    """A source whose whole content is computed once as a nested dict."""

    def __init__(self, settings_cls: type[BaseSettings], application: str, boot: _Bootstrap):
        super().__init__(settings_cls)
        self.application = application
        self.boot = boot

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is overridden; pydantic-settings requires this hook

    def load(self) -> dict[str, Any]:
        raise NotImplementedError

    def __call__(self) -> dict[str, Any]:
        return self.load()

    @property
    def profile(self) -> str:
        return str(self.boot.get("profile", "local"))


class ConfigRepoSource(_NestedDictSource):
    def load(self) -> dict[str, Any]:
        default = self.settings_cls.model_fields["config_repo_dir"].default
        directory = Path(str(self.boot.get("config_repo_dir", default)))
        return load_config_repo(directory, self.application, self.profile)


class ConfigServerSource(_NestedDictSource):
    def load(self) -> dict[str, Any]:
        url = self.boot.get("config_server_url")
        if not url:
            return {}
        fail_fast = str(self.boot.get("config_server_fail_fast", False)).lower() in {"1", "true"}
        attempts = int(str(self.boot.get("config_server_attempts", 6)))
        label = self.boot.get("config_server_label")
        try:
            return fetch_config(
                str(url),
                self.application,
                self.profile,
                self.boot.get("config_server_username"),
                self.boot.get("config_server_password"),
                attempts=attempts,
                label=str(label) if label else None,
            )
        except (httpx.HTTPError, RetryError, ValueError) as exc:
            reason = _describe(exc)
            if fail_fast:
                log.error(
                    "config server %s unavailable and fail-fast is set, not starting: %s",
                    url,
                    reason,
                    extra={"config_server": str(url), "error.message": reason},
                )
                raise ConfigUnavailable(
                    f"config server {url} unavailable (fail-fast): {reason}"
                ) from exc
            log.warning(
                "config server %s unavailable, starting from local config: %s",
                url,
                reason,
                extra={"config_server": str(url), "error.message": reason},
            )
            return {}


DEFAULT_USERNAME = "tweetpipe"
"""The config server's user unless `CONFIG_SERVER_USERNAME` says otherwise, on both sides."""
DEV_PASSWORD = "tweetpipe-dev"
"""The config server's password in the `local` profile when none is configured (the server
prints it at start; `tweetpipe up` hands it to every service)."""


def fetch_config(
    url: str,
    application: str,
    profile: str,
    username: object = None,
    password: object = None,
    attempts: int = 6,
    label: str | None = None,
) -> dict[str, Any]:
    """`GET /{application}/{profile}[/{label}]` with basic auth, retried while unreachable."""
    auth = (str(username or DEFAULT_USERNAME), str(password)) if password else None
    endpoint = f"{url.rstrip('/')}/{application}/{profile}"
    if label:
        endpoint += "/" + label.replace("/", "(_)")
    for attempt in Retrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential(multiplier=0.5, max=8),
        retry=retry_if_exception_type(httpx.TransportError),
        before_sleep=_log_retry(endpoint, attempts),
        reraise=True,
    ):
        with attempt:
            response = httpx.get(endpoint, auth=auth, timeout=5.0)
            response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict) or "propertySources" not in body:
        raise ValueError(f"{endpoint} did not answer in Spring Cloud Config format")
    return merge_property_sources(body["propertySources"])


def _log_retry(endpoint: str, attempts: int) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "config server %s not reachable (attempt %d of %d), retrying: %s",
            endpoint,
            state.attempt_number,
            attempts,
            error,
            extra={"url.full": endpoint},
        )

    return before_sleep


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if status == 401:
            return "401: credentials rejected (CONFIG_SERVER_USERNAME / CONFIG_SERVER_PASSWORD)"
        return f"{status} from {exc.request.url}"
    return f"{type(exc).__name__}: {exc}"
