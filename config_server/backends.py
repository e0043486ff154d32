"""Where property files come from: a directory, or a git repository at a label.

A git label is a branch, a tag or a commit id; the response's `version` is the commit served.
Files are read from the commit's tree (dulwich), so no work tree or checkout is involved and
concurrent requests for different labels never interfere.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dulwich.client import get_transport_and_path
from dulwich.errors import NotTreeError
from dulwich.object_store import tree_lookup_path
from dulwich.objects import Blob, Commit, ObjectID, Tag
from dulwich.refs import Ref
from dulwich.repo import Repo

from config_server.settings import RepoSettings
from tweetpipe.config_layout import PropertySource, read_property_sources
from tweetpipe.config_sources import directory_reader

log = logging.getLogger(__name__)
_COMMIT_ID = re.compile(r"^[0-9a-f]{40}$")


class NoSuchLabel(LookupError):
    """The requested branch, tag or commit does not exist."""


class BackendUnavailable(RuntimeError):
    """The repository cannot be read right now (e.g. a remote that does not answer)."""


@dataclass(frozen=True)
class Snapshot:
    version: str | None
    sources: list[PropertySource]


class ConfigBackend(Protocol):
    def read(self, application: str, profiles: Sequence[str], label: str | None) -> Snapshot: ...

    def ping(self) -> bool: ...

    def describe(self) -> str: ...


class DirectoryBackend:
    """Spring's `native` backend: one directory, no versions; a label is ignored, as in Spring."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()

    def read(self, application: str, profiles: Sequence[str], label: str | None) -> Snapshot:
        reader = directory_reader(self.directory)
        location = f"file:{self.directory}"
        return Snapshot(None, read_property_sources(reader, location, application, profiles))

    def ping(self) -> bool:
        return self.directory.is_dir()

    def describe(self) -> str:
        return f"directory {self.directory}"


class GitBackend:
    """A git repository: local ones are read in place, remote ones mirrored and fetched."""

    def __init__(
        self, uri: str, *, default_label: str, search_path: str, cache_dir: Path, refresh_s: float
    ) -> None:
        self.uri = uri
        self.default_label = default_label
        self.search_path = search_path.strip("/")
        self.refresh_s = refresh_s
        self._remote = "://" in uri
        digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
        self._mirror = cache_dir / digest
        self._lock = threading.Lock()
        self._fetched_at: float | None = None

    def read(self, application: str, profiles: Sequence[str], label: str | None) -> Snapshot:
        with self._open() as repo:
            commit = _resolve(repo, label or self.default_label)
            location = "/".join(p for p in (self.uri.rstrip("/"), self.search_path) if p)

            def read_file(name: str) -> str | None:
                path = f"{self.search_path}/{name}" if self.search_path else name
                try:
                    _mode, sha = tree_lookup_path(repo.__getitem__, commit.tree, path.encode())
                except (KeyError, NotTreeError):
                    return None
                blob = repo[sha]
                return blob.data.decode() if isinstance(blob, Blob) else None

            sources = read_property_sources(read_file, location, application, profiles)
            return Snapshot(commit.id.decode(), sources)

    def ping(self) -> bool:
        with self._open() as repo:
            _resolve(repo, self.default_label)
        return True

    def describe(self) -> str:
        return f"git {self.uri} (default label {self.default_label})"

    def _open(self) -> Repo:
        if not self._remote:
            try:
                return Repo(self.uri)
            except OSError as exc:
                raise BackendUnavailable(f"cannot open git repository {self.uri}: {exc}") from exc
        with self._lock:
            due = self._fetched_at is None or time.monotonic() - self._fetched_at >= self.refresh_s
            if due:
                self._fetch()
        return Repo(str(self._mirror))

    def _fetch(self) -> None:
        """Mirror every branch and tag of the remote; keep serving the last copy if it is away."""
        if not (self._mirror / "objects").is_dir():
            self._mirror.mkdir(parents=True, exist_ok=True)
            Repo.init_bare(self._mirror).close()
        try:
            client, path = get_transport_and_path(self.uri)
            with Repo(str(self._mirror)) as mirror:
                result = client.fetch(path, mirror)
                for ref, sha in result.refs.items():
                    if sha is not None and ref.startswith((b"refs/heads/", b"refs/tags/")):
                        mirror.refs[ref] = sha
        except Exception as exc:  # any transport failure: the mirror may still serve
            if self._fetched_at is None:
                raise BackendUnavailable(f"cannot fetch {self.uri}: {exc}") from exc
            log.warning("fetching %s failed, serving the last copy: %s", self.uri, exc)
        self._fetched_at = time.monotonic()


def _resolve(repo: Repo, label: str) -> Commit:
    """A branch, then a tag (annotated tags peeled), then a full commit id."""
    for prefix in (b"refs/heads/", b"refs/tags/"):
        sha = repo.refs.read_ref(Ref(prefix + label.encode()))
        if sha is not None:
            return _peel(repo, ObjectID(sha))
    if _COMMIT_ID.match(label):
        try:
            return _peel(repo, ObjectID(label.encode()))
        except KeyError:
            pass
    raise NoSuchLabel(f"no such label: {label}")


def _peel(repo: Repo, sha: ObjectID) -> Commit:
    obj = repo[sha]
    while isinstance(obj, Tag):
        obj = repo[obj.object[1]]
    if not isinstance(obj, Commit):
        raise KeyError(sha)
    return obj


def make_backend(settings: RepoSettings) -> ConfigBackend:
    if settings.backend == "native":
        return DirectoryBackend(settings.dir)
    if not settings.git_uri:
        raise ValueError("repo.backend is git but repo.git_uri is not set (REPO__GIT_URI)")
    return GitBackend(
        settings.git_uri,
        default_label=settings.default_label,
        search_path=settings.search_path,
        cache_dir=settings.git_cache_dir,
        refresh_s=settings.refresh_s,
    )
