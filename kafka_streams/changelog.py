"""The changelog topic's records: how a partition's store is written to Kafka and read back.

The topic is compacted, so the latest record of each key is the state. Keys, per store partition:
- `-1|{word}`: a word's all-time total, one record per word;
- `__bucket__|{window}|{buckets}|{bucket}`: every count of one window whose word hashes to
  `bucket` of `buckets`, as a JSON object of word → count;
- `__source__|{input partition}`, `__time__|{input partition}` and `__offset__`: where the store
  stands (see `kafka_streams.counter`).

Why buckets: kafka-python spends ~12 µs of CPU on each record sent, and a tweet's words count in
seven windows, so a record per (word, window) made the changelog the largest part of publishing.
A window's words now share a record with the others of their bucket: a publish sends one record
per changed (window, bucket) instead of one per changed (word, window). A bucket's record is sent
whole whenever one of its words changes (compaction keeps only the latest record of a key, so
each carries the bucket's whole state); `buckets` keeps those records small. All-time totals
stay one record per word: their buckets would grow with every new word, for good.

Older changelogs, with a `{window}|{word}` record per windowed count too, restore as before:
records replay in order and the latest value of each (word, window) wins, which holds for both
forms because a bucket's record carries the current count of each of its words.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterator

import orjson
from kafka.consumer.fetcher import ConsumerRecord

from kafka_streams.store import PartitionStore, Position, Row
from kafka_streams.windows import ALL_TIME

OFFSET_MARKER = b"__offset__"
SOURCE_PREFIX = b"__source__|"
"""Per input partition, the last source position applied."""
TIME_PREFIX = b"__time__|"
"""Per input partition, its stream time as last applied."""
BUCKET_PREFIX = b"__bucket__|"
WRITER = "writer"
"""Header naming the instance that wrote the record."""


def bucket_of(word: str, buckets: int) -> int:
    return zlib.crc32(word.encode()) % buckets


def total_key(word: str) -> bytes:
    return b"%d|%b" % (ALL_TIME, word.encode())


def bucket_key(window: int, buckets: int, bucket: int) -> bytes:
    return b"%b%d|%d|%d" % (BUCKET_PREFIX, window, buckets, bucket)


def count_records(
    store: PartitionStore, changed: list[Row], buckets: int
) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of the records that carry `changed` rows of `store`: a record per changed
    all-time total, and each changed window's touched buckets, read whole from the store."""
    for word, window, count in changed:
        if window == ALL_TIME:
            yield total_key(word), b"%d" % count
    for window, touched in dirty_buckets(changed, buckets).items():
        yield from bucket_records(window, store.window_counts(window), touched, buckets)


def dirty_buckets(rows: list[Row], buckets: int) -> dict[int, set[int]]:
    """Per window (all-time totals left out), the buckets holding one of `rows`."""
    touched: dict[int, set[int]] = defaultdict(set)
    for word, window, _ in rows:
        if window != ALL_TIME:
            touched[window].add(bucket_of(word, buckets))
    return touched


def bucket_records(
    window: int, counts: list[tuple[str, int]], wanted: set[int], buckets: int
) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of each `wanted` bucket of `window`, from every count of that window."""
    packed: dict[int, dict[str, int]] = defaultdict(dict)
    for word, count in counts:
        bucket = bucket_of(word, buckets)
        if bucket in wanted:
            packed[bucket][word] = count
    for bucket, words in packed.items():
        yield bucket_key(window, buckets, bucket), orjson.dumps(words)


class Replay:
    """A store's state rebuilt from its changelog, one record at a time, in offset order."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        self.sources: dict[int, Position] = {}
        self.times: dict[int, int] = {}
        self.next_offset = 0

    def add(self, record: ConsumerRecord) -> None:
        key: bytes = record.key
        if key == OFFSET_MARKER:
            self.next_offset = int(record.value)
        elif key.startswith(BUCKET_PREFIX):
            window = int(key[len(BUCKET_PREFIX) :].split(b"|", 1)[0])
            for word, count in orjson.loads(record.value).items():
                self.counts[(word, window)] = int(count)
        elif key.startswith(SOURCE_PREFIX):
            last, chunk = record.value.decode().split(",")
            self.sources[int(key[len(SOURCE_PREFIX) :])] = (int(last), int(chunk))
        elif key.startswith(TIME_PREFIX):
            self.times[int(key[len(TIME_PREFIX) :])] = int(record.value)
        elif record.value is not None:
            window_text, _, word = key.decode().partition("|")
            self.counts[(word, int(window_text))] = int(record.value)

    def rows(self) -> Iterator[Row]:
        return ((word, window, count) for (word, window), count in self.counts.items())
