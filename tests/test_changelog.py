"""The changelog's records rebuild a store exactly: after every publish, after compaction, and
from a changelog an older version wrote (a record per windowed count)."""

from __future__ import annotations

import random
from pathlib import Path

from kafka.consumer.fetcher import ConsumerRecord

from kafka_streams.changelog import BUCKET_PREFIX, Replay, count_records
from kafka_streams.store import PartitionStore, Row
from kafka_streams.windows import ALL_TIME
from tests.support.kafka import consumer_record

WINDOWS = [ALL_TIME, 1_700_000_000, 1_700_000_060]
BUCKETS = 8


def record(key: bytes, value: bytes) -> ConsumerRecord:
    return consumer_record("changelog", value, key=key)


def publish(store: PartitionStore) -> list[ConsumerRecord]:
    """What one publish writes for the store's dirty rows; the rows are then clean."""
    changed = store.dirty()
    records = [record(k, v) for k, v in count_records(store, changed, BUCKETS)]
    store.mark_clean(changed, changelog_next=0)
    return records


def state(store: PartitionStore) -> dict[tuple[str, int], int]:
    return {(w, win): c for win in WINDOWS for w, c in store.window_counts(win)}


def replayed(records: list[ConsumerRecord]) -> dict[tuple[str, int], int]:
    replay = Replay()
    for r in records:
        replay.add(r)
    return {(w, win): c for w, win, c in replay.rows()}


def compacted(records: list[ConsumerRecord]) -> list[ConsumerRecord]:
    """The latest record of each key, in offset order, as log compaction leaves them."""
    last = {r.key: i for i, r in enumerate(records)}
    return [r for i, r in enumerate(records) if last[r.key] == i]


def deltas(rnd: random.Random, words: list[str], n: int) -> list[Row]:
    picked = rnd.sample(words, n)
    return [(w, win, rnd.randint(1, 5)) for w in picked for win in WINDOWS]


def test_publishes_rebuild_the_store_before_and_after_compaction(tmp_path: Path) -> None:
    rnd = random.Random(7)
    words = [f"w{i}" for i in range(300)]
    store = PartitionStore(tmp_path / "p.sqlite")
    log: list[ConsumerRecord] = []
    for round_ in range(6):
        store.apply(deltas(rnd, words, 200 if round_ == 0 else 5), round_ + 1, {})
        log += publish(store)
        assert replayed(log) == state(store)
        assert replayed(compacted(log)) == state(store)
    # A window's counts travel in at most BUCKETS records; each all-time total in one.
    buckets = {r.key for r in log if r.key.startswith(BUCKET_PREFIX)}
    assert len(buckets) == BUCKETS * (len(WINDOWS) - 1)
    totals = {r.key for r in log if not r.key.startswith(BUCKET_PREFIX)}
    assert len(totals) == len({w for (w, win) in state(store) if win == ALL_TIME})


def test_a_small_change_sends_its_buckets_whole_and_nothing_else(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p.sqlite")
    store.apply([(f"w{i}", win, 1) for i in range(100) for win in WINDOWS], 1, {})
    publish(store)
    store.apply([("w3", WINDOWS[1], 2), ("w3", ALL_TIME, 2)], 2, {})
    records = publish(store)
    assert [r.key for r in records if not r.key.startswith(BUCKET_PREFIX)] == [b"-1|w3"]
    (bucket,) = [r for r in records if r.key.startswith(BUCKET_PREFIX)]
    counts = replayed([bucket])
    assert counts[("w3", WINDOWS[1])] == 3
    assert 1 < len(counts) < 100  # the bucket's other words, unchanged, and only those
    assert all(c == 1 for (w, _), c in counts.items() if w != "w3")


def test_an_older_changelog_with_a_record_per_windowed_count_restores(tmp_path: Path) -> None:
    old = [record(b"%d|%b" % (win, w.encode()), b"4") for w in ("a", "b") for win in WINDOWS]
    store = PartitionStore(tmp_path / "p.sqlite")
    store.restore(((w, win, c) for (w, win), c in replayed(old).items()), 1, len(old), {})
    store.apply([("a", WINDOWS[1], 1), ("a", ALL_TIME, 1)], 2, {})
    new = publish(store)
    assert replayed(old + new) == state(store)
    assert state(store)[("a", WINDOWS[1])] == 5
    assert state(store)[("b", WINDOWS[1])] == 4
