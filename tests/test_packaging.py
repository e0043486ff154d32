"""What the project declares and ships: the lock files, the image's contents, the core's imports."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from tweetpipe.settings import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
DOCKERFILE = (REPO_ROOT / "infra" / "docker" / "Dockerfile").read_text()
SERVICE_PACKAGES = [
    "tweetpipe",
    "twitter_to_kafka",
    "kafka_to_elastic",
    "kafka_streams",
    "analytics_service",
    "query_service",
    "gateway",
    "config_server",
    "web_client",
]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", re.MULTILINE)


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for line in requirements:
        name, version = line.split("==")
        pins[_normal(name)] = version.strip()
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked(lock: str) -> dict[str, str]:
    text = (REPO_ROOT / "requirements" / lock).read_text()
    return {_normal(name): version for name, version in PIN.findall(text)}


@pytest.mark.parametrize(
    ("lock", "groups"),
    [("runtime.lock", []), ("dev.lock", ["local", "dev"])],
)
def test_lock_files_hold_every_pin_of_pyproject(lock: str, groups: list[str]) -> None:
    """`./dev lock` was run after the last change of a pin: the lock has the same versions."""
    project = PYPROJECT["project"]
    wanted = _pins(project["dependencies"])
    for group in groups:
        wanted |= _pins(project["optional-dependencies"][group])
    locked = _locked(lock)
    stale = {name: (v, locked.get(name)) for name, v in wanted.items() if locked.get(name) != v}
    assert not stale, f"requirements/{lock} is stale (pyproject, lock): {stale}; run ./dev lock"
    assert "--hash=sha256:" in (REPO_ROOT / "requirements" / lock).read_text()


def test_the_runtime_lock_has_no_development_packages() -> None:
    locked = _locked("runtime.lock")
    extras = PYPROJECT["project"]["optional-dependencies"]
    for name in (*_pins(extras["local"]), *_pins(extras["dev"])):
        assert name not in locked, f"{name} is development-only but in the runtime lock"


def test_the_image_installs_the_runtime_lock_and_not_the_stand_ins() -> None:
    assert "--require-hashes -r requirements/runtime.lock" in DOCKERFILE
    copied = re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE, re.MULTILINE)
    assert not [path for path in copied if path.startswith("devstack")], copied
    assert "devstack" in (REPO_ROOT / ".dockerignore").read_text().split()


def _imports(path: Path) -> list[tuple[str, ast.AST]]:
    tree = ast.parse(path.read_text())
    found: list[tuple[str, ast.AST]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, node))
    return found


def test_the_core_and_the_services_import_the_stand_ins_only_in_tweetpipe_up() -> None:
    offenders = []
    for package in SERVICE_PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            for module, _node in _imports(path):
                if module.split(".")[0] == "devstack":
                    offenders.append(f"{path.relative_to(REPO_ROOT)}: {module}")
    assert offenders == ["tweetpipe/cli.py: devstack.up"]
    # ... and there only inside the command, so `tweetpipe search` works without it.
    cli = ast.parse((REPO_ROOT / "tweetpipe" / "cli.py").read_text())
    top_level = [n for n in cli.body if isinstance(n, ast.Import | ast.ImportFrom)]
    assert all("devstack" not in (getattr(n, "module", "") or "") for n in top_level), (
        "tweetpipe.cli imports devstack at module level"
    )


def test_settings_are_the_bottom_of_the_core() -> None:
    """Every settings model lives in `tweetpipe.settings`, which needs only its own sources:
    no module it imports can import it back."""
    settings = REPO_ROOT / "tweetpipe" / "settings.py"
    imported = {module for module, _ in _imports(settings) if module.startswith("tweetpipe")}
    assert imported == {"tweetpipe.config_sources"}
    for module in ("config_sources", "config_layout"):
        path = REPO_ROOT / "tweetpipe" / f"{module}.py"
        assert "tweetpipe.settings" not in {m for m, _ in _imports(path)}
    models = re.compile(r"^class (\w+(?:Settings|Options))\((?!Protocol)", re.MULTILINE)
    elsewhere = {
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for path in (REPO_ROOT / "tweetpipe").rglob("*.py")
        if path != settings
        for name in models.findall(path.read_text())
    }
    assert elsewhere == {"tweetpipe/cli.py: SearchCommandSettings"}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("192.0.2.7", False),
        ("example.org", False),
    ],
)
def test_the_stand_ins_bind_loopback_unless_allowed(host: str, loopback: bool) -> None:
    from devstack.loopback import refusal

    reason = refusal("the thing", host, allowed=False, override="ALLOW=1")
    assert (reason is None) == loopback
    if reason:
        assert reason.startswith(f"refusing to bind {host}: the thing")
        assert "ALLOW=1" in reason
    assert refusal("the thing", host, allowed=True, override="ALLOW=1") is None
