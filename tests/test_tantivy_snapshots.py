"""Which commit a tantivy reader serves: at once when nothing is cached, after a warm-up in the
background when aggregations are, and never a warm-up for aggregations nobody asks any more.

A real index in `tmp_path`, written by a real writer store, read by `Snapshots` as a reader in
another process would (it only sees `meta.json` change)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
import tantivy

from tweetpipe.model import Tweet
from tweetpipe.search import open_store
from tweetpipe.search.base import SearchStore
from tweetpipe.search.tantivy_snapshots import Aggregation, Snapshot, Snapshots
from tweetpipe.search.tantivy_store import SCHEMA, _text_query
from tweetpipe.settings import SearchSettings

AGGS = {"tags": {"terms": {"field": "hashtags", "size": 10}}}
KEY = "tags of kafka"


def _tweets(first: int, count: int, tag: str) -> list[Tweet]:
    base = datetime(2024, 5, 1, 12, tzinfo=UTC)
    return [
        Tweet(
            id=i,
            user_id=1,
            text=f"kafka tweet {i}",
            created_at=base + timedelta(seconds=i),
            lang="en",
            hashtags=[tag],
        )
        for i in range(first, first + count)
    ]


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[SearchStore]:
    store = open_store(SearchSettings(tantivy_path=tmp_path / "index"), writer=True)
    store.bulk_upsert(_tweets(1, 10, "old"))
    yield store
    store.close()


@pytest.fixture
def index(writer: SearchStore, tmp_path: Path) -> tantivy.Index:
    return tantivy.Index(SCHEMA, path=str(tmp_path / "index"))


def _ask(snapshot: Snapshot) -> dict[str, int]:
    """The aggregation as the store asks it: from the cache, else computed and remembered."""
    result = snapshot.cached(KEY)
    if result is None:
        query = _text_query("kafka")
        result = snapshot.searcher.aggregate(query, AGGS)
        snapshot.remember(KEY, Aggregation(query, AGGS, result))
    return {b["key"]: b["doc_count"] for b in result["tags"]["buckets"]}


def _served_after_warm(snapshots: Snapshots, index: tantivy.Index, old: Snapshot) -> Snapshot:
    deadline = time.monotonic() + 30  # a guard, not a measurement
    while (latest := snapshots.latest(index)) is old:
        assert time.monotonic() < deadline, "the new commit was never swapped in"
        time.sleep(0.01)
    return latest


def test_a_commit_is_served_at_once_when_no_aggregation_was_asked(
    writer: SearchStore, index: tantivy.Index, tmp_path: Path
) -> None:
    snapshots = Snapshots(tmp_path / "index", warm_interval_s=3600)
    assert snapshots.latest(index).searcher.num_docs == 10
    writer.bulk_upsert(_tweets(11, 5, "new"))
    assert snapshots.latest(index).searcher.num_docs == 15


def test_the_current_commit_serves_while_the_next_is_warmed(
    writer: SearchStore, index: tantivy.Index, tmp_path: Path
) -> None:
    snapshots = Snapshots(tmp_path / "index", warm_interval_s=0)
    old = snapshots.latest(index)
    assert _ask(old) == {"old": 10}
    writer.bulk_upsert(_tweets(11, 5, "new"))

    assert snapshots.latest(index) is old  # the hits and the aggregation of one commit
    new = _served_after_warm(snapshots, index, old)

    assert new.searcher.num_docs == 15
    warmed = new.cached(KEY)  # computed before the commit was served, not when asked
    assert warmed is not None
    assert warmed == new.searcher.aggregate(_text_query("kafka"), AGGS)
    assert _ask(new) == {"old": 10, "new": 5}


def test_reload_serves_the_latest_commit_at_once(
    writer: SearchStore, index: tantivy.Index, tmp_path: Path
) -> None:
    snapshots = Snapshots(tmp_path / "index", warm_interval_s=3600)
    _ask(snapshots.latest(index))
    writer.bulk_upsert(_tweets(11, 5, "new"))
    reloaded = snapshots.reload(index)
    assert reloaded.searcher.num_docs == 15
    assert snapshots.latest(index) is reloaded
    assert reloaded.cached(KEY) is None  # cold: computed when asked
    assert _ask(reloaded) == {"old": 10, "new": 5}


def test_warm_ups_start_at_most_once_per_interval(
    writer: SearchStore, index: tantivy.Index, tmp_path: Path
) -> None:
    snapshots = Snapshots(tmp_path / "index", warm_interval_s=3600)
    first = snapshots.latest(index)
    _ask(first)
    writer.bulk_upsert(_tweets(11, 5, "new"))
    second = _served_after_warm(snapshots, index, first)  # the first warm-up is not held back
    assert _ask(second) == {"old": 10, "new": 5}
    writer.bulk_upsert(_tweets(16, 5, "newer"))
    for _ in range(50):
        assert snapshots.latest(index) is second
        time.sleep(0.01)
    snapshots.clear()


def test_only_aggregations_asked_lately_are_warmed(
    writer: SearchStore, index: tantivy.Index, tmp_path: Path
) -> None:
    snapshots = Snapshots(tmp_path / "index", warm_interval_s=0)
    old = snapshots.latest(index)
    _ask(old)
    query = _text_query("tweet")
    stale = Aggregation(query, AGGS, old.searcher.aggregate(query, AGGS), asked_at=0.0)
    old.remember("tags of tweet, asked long ago", stale)
    assert [key for key, _ in old.recent(10, since=1.0)] == [KEY]

    writer.bulk_upsert(_tweets(11, 5, "new"))
    new = _served_after_warm(snapshots, index, old)
    assert new.cached(KEY) is not None
    assert new.cached("tags of tweet, asked long ago") is None


def test_recent_lists_the_latest_asked_first_and_at_most_count(
    index: tantivy.Index, tmp_path: Path
) -> None:
    snapshot = Snapshots(tmp_path / "index", warm_interval_s=0).latest(index)
    query = _text_query("kafka")
    for name in ("a", "b", "c"):
        snapshot.remember(name, Aggregation(query, AGGS, {}))
    assert snapshot.cached("a") == {}  # asking moves it to the front
    assert [key for key, _ in snapshot.recent(2, since=0.0)] == ["a", "c"]


def test_asking_again_counts_as_asked_lately(index: tantivy.Index, tmp_path: Path) -> None:
    snapshot = Snapshots(tmp_path / "index", warm_interval_s=0).latest(index)
    snapshot.remember("old", Aggregation(_text_query("kafka"), AGGS, {}, asked_at=0.0))
    assert snapshot.recent(10, since=1.0) == []
    snapshot.cached("old")
    assert [key for key, _ in snapshot.recent(10, since=1.0)] == ["old"]


class _ReloadFailsOnceOffThread:
    """The real index, except that its first reload on the warm-up thread fails, as a reload
    racing a merge that removed a segment file can."""

    def __init__(self, index: tantivy.Index) -> None:
        self._index = index
        self.failed = False

    def reload(self) -> None:
        if not self.failed and threading.current_thread().name.startswith("tantivy-warm"):
            self.failed = True
            raise OSError("segment file vanished")
        self._index.reload()

    def searcher(self) -> tantivy.Searcher:
        return self._index.searcher()


def test_a_failed_warm_up_falls_back_to_reloading_on_the_read(
    writer: SearchStore, index: tantivy.Index, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = _ReloadFailsOnceOffThread(index)
    snapshots = Snapshots(tmp_path / "index", warm_interval_s=0)
    old = snapshots.latest(cast(tantivy.Index, flaky))
    _ask(old)
    writer.bulk_upsert(_tweets(11, 5, "new"))

    new = _served_after_warm(snapshots, cast(tantivy.Index, flaky), old)

    assert flaky.failed
    assert "warming the new commit" in caplog.text
    assert "segment file vanished" in caplog.text
    assert new.searcher.num_docs == 15
    assert new.cached(KEY) is None  # reloaded on the read: cold
    assert _ask(new) == {"old": 10, "new": 5}
