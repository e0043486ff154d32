"""Analytics-topic records → word counts to store, and the records to dead-letter."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from kafka.consumer.fetcher import ConsumerRecord

from tweetpipe.model import WordCount
from tweetpipe.records import DeadLetter, parse

MAX_COUNT = 2**63 - 1
"""A BIGINT column holds no more."""

Key = tuple[str, datetime]


@dataclass
class DecodedCounts:
    """One poll's counts, the largest per (word, window_start), and what failed to decode."""

    counts: dict[Key, WordCount] = field(default_factory=dict)
    records: dict[Key, list[ConsumerRecord]] = field(default_factory=dict)
    """Every record behind each kept count (to dead-letter them if the database refuses it)."""
    dead: list[DeadLetter] = field(default_factory=list)
    decoded: int = 0

    def add(self, count: WordCount, record: ConsumerRecord) -> None:
        key = (count.word, count.window_start)
        self.decoded += 1
        self.records.setdefault(key, []).append(record)
        kept = self.counts.get(key)
        if kept is None or count.word_count > kept.word_count:
            self.counts[key] = count


def _storable(count: WordCount) -> str | None:
    """Why SQL cannot hold this otherwise valid update, if it cannot."""
    if "\x00" in count.word:
        return "word: contains a NUL character, which SQL text columns cannot hold"
    if count.word_count > MAX_COUNT:
        return f"word_count: larger than {MAX_COUNT}"
    if count.window_end <= count.window_start:
        return "window_end: must be after window_start"
    return None


def decode(records: Iterable[ConsumerRecord]) -> DecodedCounts:
    batch = DecodedCounts()
    for record in records:
        count = parse(record, WordCount)
        if isinstance(count, DeadLetter):
            batch.dead.append(count)
        elif problem := _storable(count):
            batch.dead.append(DeadLetter(record, "SchemaViolation", problem))
        else:
            batch.add(count, record)
    return batch
