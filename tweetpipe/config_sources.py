"""Settings sources that follow Spring Cloud Config's layout.

Both sources yield nested dicts. Files in the config repo may nest keys (YAML) or spell them
dotted (`kafka.linger_ms: 5`), as Spring property sources do; both forms mean the same thing.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import yaml
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

log = logging.getLogger(__name__)

_INDEX = re.compile(r"^(?P<name>[^\[]+)\[(?P<index>\d+)\]$")


class ConfigUnavailable(RuntimeError):
    """The config server could not be reached and `config_server_fail_fast` is set."""


class _Bootstrap(Protocol):
    def get(self, name: str, default: object = None) -> object: ...


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Turn `{"a.b": 1, "c[0]": "x"}` into `{"a": {"b": 1}, "c": ["x"]}`."""
    tree: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = tree
        parts = str(dotted).split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        leaf = parts[-1]
        match = _INDEX.match(leaf)
        if match:
            items = node.setdefault(match["name"], {})
            items[int(match["index"])] = value
        else:
            node[leaf] = value
    return _lists_from_indexed(tree)


def _lists_from_indexed(node: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = _convert_indexed(node)
    return result


def _convert_indexed(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(isinstance(k, int) for k in node):
            return [_convert_indexed(node[k]) for k in sorted(node)]
        return {k: _convert_indexed(v) for k, v in node.items()}
    return node


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def normalise(tree: Mapping[str, Any]) -> dict[str, Any]:
    """Expand dotted keys at any depth so nested and dotted spellings merge."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat[prefix] = value

    walk("", dict(tree))
    return unflatten(flat)


def config_file_names(application: str, profile: str) -> list[str]:
    """Least specific first, as Spring applies them."""
    return [
        "application.yml",
        f"application-{profile}.yml",
        f"{application}.yml",
        f"{application}-{profile}.yml",
    ]


def load_config_repo(directory: Path, application: str, profile: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name in config_file_names(application, profile):
        path = directory / name
        if path.is_file():
            content = yaml.safe_load(path.read_text()) or {}
            if not isinstance(content, dict):
                raise ValueError(f"{path}: expected a mapping at the top level")
            merged = deep_merge(merged, normalise(content))
    return merged


def merge_property_sources(sources: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge Spring `propertySources` (most specific first) into one nested dict."""
    merged: dict[str, Any] = {}
    for source in reversed(list(sources)):
        merged = deep_merge(merged, unflatten(source.get("source", {})))
    return merged


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
        try:
            return fetch_config(
                str(url),
                self.application,
                self.profile,
                self.boot.get("config_server_username"),
                self.boot.get("config_server_password"),
                attempts=attempts,
            )
        except (httpx.HTTPError, RetryError, ValueError) as exc:
            if fail_fast:
                raise ConfigUnavailable(f"config server {url} unavailable: {exc}") from exc
            log.warning(
                "config server unavailable, starting from local config",
                extra={"config_server": str(url), "error": str(exc)},
            )
            return {}


def fetch_config(
    url: str,
    application: str,
    profile: str,
    username: object = None,
    password: object = None,
    attempts: int = 6,
) -> dict[str, Any]:
    auth = (str(username), str(password or "")) if username else None
    endpoint = f"{url.rstrip('/')}/{application}/{profile}"
    for attempt in Retrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=wait_exponential(multiplier=0.5, max=8),
        retry=retry_if_exception_type(httpx.TransportError),
        reraise=True,
    ):
        with attempt:
            if attempt.retry_state.attempt_number > 1:
                log.info("retrying config server", extra={"url": endpoint})
            response = httpx.get(endpoint, auth=auth, timeout=5.0)
            response.raise_for_status()
    body = response.json()
    if not isinstance(body, dict) or "propertySources" not in body:
        raise ValueError(f"{endpoint} did not answer in Spring Cloud Config format")
    return merge_property_sources(body["propertySources"])
