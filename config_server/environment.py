"""The Spring Cloud Config `Environment` document and its YAML / properties / JSON renderings."""

from __future__ import annotations

import re
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field

from config_server.backends import ConfigBackend
from config_server.ciphers import Cipher, decrypt_sources
from tweetpipe.config_layout import (
    PropertySource,
    merge_flat,
    merge_property_sources,
    split_profiles,
)

Format = Literal["yml", "yaml", "properties", "json"]
DOCUMENT = re.compile(r"^(?P<name>.+)-(?P<profiles>[^-]+)\.(?P<format>yml|yaml|properties|json)$")
"""`{application}-{profiles}.{format}`: the profile is after the last hyphen, as in Spring."""
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._,-]*$")
_LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$")


class Environment(BaseModel):
    """What `GET /{application}/{profiles}[/{label}]` answers, field for field like Spring."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    profiles: list[str]
    label: str | None
    version: str | None
    state: str | None = None
    property_sources: list[PropertySource] = Field(alias="propertySources")


class BadRequest(ValueError):
    """A name, profile or label that cannot name a config file."""


def check_names(application: str, profiles: str, label: str | None) -> str | None:
    """Validate the request's names; return the label with Spring's `(_)` turned into `/`."""
    if not _NAME.match(application) or not _NAME.match(profiles):
        raise BadRequest(f"invalid application or profile name: {application}/{profiles}")
    if label is None:
        return None
    label = label.replace("(_)", "/")
    if not _LABEL.match(label) or ".." in label:
        raise BadRequest(f"invalid label: {label}")
    return label


def build_environment(
    backend: ConfigBackend,
    cipher: Cipher | None,
    application: str,
    profiles: str,
    label: str | None,
) -> Environment:
    label = check_names(application, profiles, label)
    names = split_profiles(profiles)
    if not names:
        raise BadRequest("no profile given")
    snapshot = backend.read(application, names, label)
    return Environment(
        name=application,
        profiles=names,
        label=label,
        version=snapshot.version,
        property_sources=decrypt_sources(snapshot.sources, cipher),
    )


def render(environment: Environment, fmt: Format) -> tuple[bytes, str]:
    """The merged properties as one document, and its media type."""
    sources = environment.property_sources
    if fmt == "properties":
        lines = [f"{key}: {_text(value)}" for key, value in sorted(merge_flat(sources).items())]
        return ("\n".join(lines) + "\n").encode(), "text/plain; charset=utf-8"
    merged: dict[str, Any] = merge_property_sources(sources)
    if fmt == "json":
        return orjson.dumps(merged), "application/json"
    text = yaml.safe_dump(merged, sort_keys=True, default_flow_style=False, allow_unicode=True)
    return text.encode(), "text/plain; charset=utf-8"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)
