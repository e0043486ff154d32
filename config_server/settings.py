"""config-server settings: where the configuration lives, who may read it, the cipher key.

Read from the environment only (and constructor arguments): the server is where everyone else's
configuration comes from, so it never asks a config server for its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tweetpipe.config_sources import DEFAULT_USERNAME
from tweetpipe.settings import REPO_ROOT, AdminSettings, Profile, TracingSettings


class RepoSettings(BaseModel):
    """The configuration repository: a directory (`native`) or a git repository."""

    backend: Literal["native", "git"] = "native"
    dir: Path = REPO_ROOT / "infra" / "config-repo"
    """`native`: the directory holding `application.yml`, `{app}-{profile}.yml`, …"""
    git_uri: str | None = None
    """`git`: a local repository path (bare or not), or a URL (`file://`, `https://`, `ssh://`)
    that is mirrored into `git_cache_dir`."""
    default_label: str = "main"
    """Branch, tag or commit served when a request names no label."""
    search_path: str = ""
    """Folder inside the git tree holding the files; empty for the top level."""
    refresh_s: float = Field(default=5.0, ge=0)
    """A remote git repository is fetched at most this often (0: on every request)."""
    git_cache_dir: Path = Path(".tweetpipe/config-server/git")


class ConfigServerSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )

    profile: Profile = "local"
    admin: AdminSettings = AdminSettings(port=8888)
    """The one HTTP server: the Spring Cloud Config API plus `/health` and `/metrics`."""
    config_server_username: str = DEFAULT_USERNAME
    config_server_password: SecretStr | None = None
    """Required outside the `local` profile. Same variables the services use to log in."""
    encrypt_key: SecretStr | None = None
    """Secret for `{cipher}` values and `/encrypt`, `/decrypt`; unset disables them."""
    encrypt_salt: str = "tweetpipe-config"
    """Salt of the key derivation; every server sharing ciphertexts needs the same one."""
    repo: RepoSettings = RepoSettings()
    log_level: str = "INFO"
    log_file: Path | None = None
    tracing: TracingSettings = TracingSettings()
