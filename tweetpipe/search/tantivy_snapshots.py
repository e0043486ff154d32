"""Which searcher a tantivy read uses: one per commit, and a new commit once it is warm.

Aggregations read every matching document (~10 ms for a word in a quarter of a million tweets),
so each commit's are computed once and kept with its searcher. Under ingest the sink commits
several times a second, and computing them again on the request path after every commit queued
every search behind them (`bench/query.py`: p99 74 ms under ingest, 25 ms without aggregations).
So, as Solr autowarms a new searcher from the caches of the one it replaces, a new commit's
aggregations are computed in a background thread (tantivy releases the GIL) for the keys most
recently asked on the current one, while reads keep using the current one; then it is swapped
in. A warm-up starts at most every `warm_interval_s` (the setting
`search.tantivy_warm_interval_s`, 1 s by default, as Elasticsearch's `refresh_interval`) and
starts aggregations for at most `WARM_BUDGET_S`, so a commit is visible within about that long;
at once where no aggregation was asked; and `reload` makes the latest commit visible at once.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

import tantivy

Generation = tuple[int, int, int]
"""Which commit the index directory is at: `meta.json`'s (inode, mtime, size). Every commit
replaces that file, so a new commit means a new generation."""

AGGREGATION_CACHE_SIZE = 256
"""Aggregation results kept per index generation, like Elasticsearch's shard request cache."""
WARM_KEYS = 16
"""At most this many aggregations, the most recently asked first, are computed on a new commit
before it is served."""
WARM_ASKED_WITHIN_S = 60.0
"""Only aggregations asked this recently are warmed: one nobody asks any more stops costing a
computation per commit."""
WARM_BUDGET_S = 0.5
"""A warm-up stops starting aggregations after this long: a commit is never held back longer
than that plus one aggregation; what is left is computed when asked."""

log = logging.getLogger(__name__)


@dataclass
class Aggregation:
    """An aggregation as asked (to compute it again on the next commit), its result, and when
    a reader last asked for it (`time.monotonic()`; a warm-up copies it, it does not ask)."""

    query: tantivy.Query
    aggs: dict[str, dict[str, Any]]
    result: dict[str, Any]
    asked_at: float = field(default_factory=time.monotonic)


@dataclass
class Snapshot:
    """The index at one generation: the searcher every read shares until the next commit, and
    the aggregations computed on it, least recently asked first."""

    generation: Generation | None
    searcher: tantivy.Searcher
    _aggregations: OrderedDict[str, Aggregation] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cached(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._aggregations.get(key)
            if found is not None:
                self._aggregations.move_to_end(key)
                found.asked_at = time.monotonic()
        return found.result if found is not None else None

    def remember(self, key: str, aggregation: Aggregation) -> None:
        with self._lock:
            self._aggregations[key] = aggregation
            self._aggregations.move_to_end(key)
            while len(self._aggregations) > AGGREGATION_CACHE_SIZE:
                self._aggregations.popitem(last=False)

    @property
    def asked(self) -> bool:
        return bool(self._aggregations)

    def recent(self, count: int, *, since: float) -> list[tuple[str, Aggregation]]:
        """At most `count` aggregations asked at or after `since`, the latest first."""
        with self._lock:
            latest_first = reversed(self._aggregations.items())
            return list(islice(((k, a) for k, a in latest_first if a.asked_at >= since), count))


class Snapshots:
    """The current `Snapshot` of one index directory, reloaded (and warmed) after commits."""

    def __init__(
        self,
        path: Path,
        *,
        warm_interval_s: float,
        warm_keys: int = WARM_KEYS,
        warm_budget_s: float = WARM_BUDGET_S,
    ) -> None:
        self._meta = path / "meta.json"
        self._warm_interval_s = warm_interval_s
        self._warm_keys = warm_keys
        self._warm_budget_s = warm_budget_s
        self._warm_started = -math.inf
        self._current: Snapshot | None = None
        self._lock = threading.Lock()
        self._warmer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tantivy-warm")
        self._warming: Future[None] | None = None
        self._warm_failed = False

    def latest(self, index: tantivy.Index) -> Snapshot:
        """The snapshot to read: the latest commit's, or the current one while that is warmed.
        Checking costs one `stat`; reloading reads the index metadata, so only after a commit."""
        # Read before reloading: a commit landing in between makes the next read reload again.
        generation = self._generation()
        seen = self._current
        if seen is not None and generation is not None and generation == seen.generation:
            return seen
        if seen is None or generation is None or self._warm_failed or not seen.asked:
            return self._swap_in(index, generation, seen)
        with self._lock:
            idle = self._warming is None or self._warming.done()
            if idle and time.monotonic() - self._warm_started >= self._warm_interval_s:
                self._warm_started = time.monotonic()
                self._warming = self._warmer.submit(self._warm, index, generation, seen)
        return seen

    def reload(self, index: tantivy.Index) -> Snapshot:
        """The latest commit's snapshot at once, cold."""
        return self._swap_in(index, self._generation(), None)

    def clear(self) -> None:
        """Forget the current snapshot and wait for a warm-up under way (the index is closing)."""
        with self._lock:
            warming, self._warming, self._current = self._warming, None, None
        if warming is not None:
            warming.result()

    def _swap_in(
        self, index: tantivy.Index, generation: Generation | None, seen: Snapshot | None
    ) -> Snapshot:
        """Reload, unless another reader did since `seen` was read (`seen` None: always)."""
        with self._lock:
            latest = self._current
            if seen is None or latest is None or latest is seen:
                index.reload()
                latest = Snapshot(generation, index.searcher())
                self._current = latest
                self._warm_failed = False
            return latest

    def _warm(self, index: tantivy.Index, generation: Generation, seen: Snapshot) -> None:
        try:
            with self._lock:
                if self._current is not seen:  # reloaded meanwhile: nothing to warm
                    return
                index.reload()
                fresh = Snapshot(generation, index.searcher())
            started = time.monotonic()
            warmed = 0
            asked_since = started - WARM_ASKED_WITHIN_S
            for key, asked in seen.recent(self._warm_keys, since=asked_since):
                if time.monotonic() - started > self._warm_budget_s:
                    break
                result = fresh.searcher.aggregate(asked.query, asked.aggs)
                fresh.remember(key, replace(asked, result=result))
                warmed += 1
        except (OSError, ValueError) as exc:
            # The next read reloads on its own path, where a failure reaches the caller.
            log.warning("warming the new commit of %s failed: %s", self._meta.parent, exc)
            self._warm_failed = True
            return
        self._warm_failed = False
        with self._lock:
            if self._current is seen:
                self._current = fresh
        log.debug(
            "commit %s warmed with %d aggregations in %.0f ms",
            generation,
            warmed,
            (time.monotonic() - started) * 1000,
        )

    def _generation(self) -> Generation | None:
        try:
            meta = os.stat(self._meta)
        except FileNotFoundError:
            return None
        return meta.st_ino, meta.st_mtime_ns, meta.st_size
