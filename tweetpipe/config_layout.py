"""Spring Cloud Config's layout: which files apply to an application, and the flat keys they yield.

One place for the rules, used both by services reading `infra/config-repo/` directly and by the
config server serving it (from a directory or a git tree). Property sources are listed most
specific first, as Spring lists them: `{app}-{profile}.yml`, `{app}.yml`,
`application-{profile}.yml`, `application.yml`; with several profiles the last one wins.
Keys are flat and dotted, lists indexed: `generator.keywords[0]`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import yaml
from pydantic import BaseModel

EXTENSIONS = (".yml", ".yaml")
"""Spring also reads `.properties`; this repo keeps YAML only."""
_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

FileReader = Callable[[str], str | None]
"""Text of a file in the config repo by name, or None when it is absent."""


class ConfigFileError(ValueError):
    """A config file that is not a YAML mapping."""


class PropertySource(BaseModel):
    """One file's properties, flat, as in Spring's `propertySources[]`."""

    name: str
    source: dict[str, Any]


def split_profiles(profiles: str) -> list[str]:
    """`"docker,local"` → `["docker", "local"]`, as Spring accepts them in a request."""
    return [p.strip() for p in profiles.split(",") if p.strip()]


def file_stems(application: str, profiles: Sequence[str]) -> list[str]:
    """File names without extension, most specific first."""
    stems: list[str] = []
    for name in dict.fromkeys([application, "application"]):
        stems.extend(f"{name}-{profile}" for profile in reversed(profiles))
        stems.append(name)
    return stems


def read_property_sources(
    read: FileReader, location: str, application: str, profiles: Sequence[str]
) -> list[PropertySource]:
    """The property sources that exist for `application` and `profiles`, most specific first."""
    sources: list[PropertySource] = []
    for stem in file_stems(application, profiles):
        for extension in EXTENSIONS:
            name = stem + extension
            text = read(name)
            if text is not None:
                tree = parse_document(text, name)
                sources.append(PropertySource(name=f"{location}/{name}", source=flatten(tree)))
                break
    return sources


def parse_document(text: str, name: str) -> dict[str, Any]:
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{name}: not valid YAML: {exc}") from exc
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigFileError(f"{name}: expected a mapping at the top level")
    return content


def flatten(tree: Mapping[str, Any]) -> dict[str, Any]:
    """`{"a": {"b": 1}, "l": ["x"]}` → `{"a.b": 1, "l[0]": "x"}`; dotted keys stay dotted."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), child)
        elif isinstance(value, list) and value:
            for index, child in enumerate(value):
                walk(f"{prefix}[{index}]", child)
        else:
            flat[prefix] = _scalar(value)

    for key, value in tree.items():
        walk(str(key), value)
    return flat


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    return str(value)  # dates and timestamps, as their text


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Turn `{"a.b": 1, "c[0].d": "x"}` into `{"a": {"b": 1}, "c": [{"d": "x"}]}`."""
    tree: dict[Any, Any] = {}
    for dotted, value in flat.items():
        tokens: list[str | int] = [
            name if name else int(index) for name, index in _PATH_TOKEN.findall(str(dotted))
        ]
        if not tokens:
            continue
        node = tree
        for token in tokens[:-1]:
            child = node.get(token)
            if not isinstance(child, dict):
                child = node[token] = {}
            node = child
        node[tokens[-1]] = value
    result: dict[str, Any] = _lists_from_indexes(tree)
    return result


def _lists_from_indexes(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(isinstance(k, int) for k in node):
            return [_lists_from_indexes(node[k]) for k in sorted(node)]
        return {k: _lists_from_indexes(v) for k, v in node.items()}
    return node


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dicts merge key by key; anything else (lists too) is replaced whole."""
    merged = dict(base)
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def merge_property_sources(sources: Iterable[PropertySource | Mapping[str, Any]]) -> dict[str, Any]:
    """Merge property sources (most specific first) into one nested dict."""
    merged: dict[str, Any] = {}
    for source in reversed(list(sources)):
        flat = source.source if isinstance(source, PropertySource) else source.get("source", {})
        merged = deep_merge(merged, unflatten(flat))
    return merged


def merge_flat(sources: Sequence[PropertySource]) -> dict[str, Any]:
    """The flat view of the merged sources, as Spring renders `.properties`."""
    return flatten(merge_property_sources(sources))
