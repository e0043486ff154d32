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

Key = tuple[bool, str, datetime, datetime | None]
"""(hopping?, word, window_start, window_end for hopping windows): one stored row."""


@dataclass
class DecodedCounts:
    """One poll's counts, the largest per stored row, and what failed to decode."""

    counts: dict[Key, WordCount] = field(default_factory=dict)
    records: dict[Key, list[ConsumerRecord]] = field(default_factory=dict)
    """Every record behind each kept count (to dead-letter them if the database refuses it)."""
    dead: list[DeadLetter] = field(default_factory=list)
    decoded: int = 0

    def add(self, count: WordCount, record: ConsumerRecord, hopping: bool = False) -> None:
        key = (hopping, count.word, count.window_start, count.window_end if hopping else None)
        self.decoded += 1
        self.records.setdefault(key, []).append(record)
        kept = self.counts.get(key)
        if kept is None or count.word_count > kept.word_count:
            if kept is not None and kept.final:
                count = count.model_copy(update={"final": True})
            self.counts[key] = count
        elif count.final and not kept.final:
            self.counts[key] = kept.model_copy(update={"final": True})

    def split(self, keys: list[Key] | None = None) -> tuple[list[WordCount], list[WordCount]]:
        """(tumbling, hopping) counts, of `keys` or of all."""
        tumbling: list[WordCount] = []
        hopping: list[WordCount] = []
        for key in self.counts if keys is None else keys:
            (hopping if key[0] else tumbling).append(self.counts[key])
        return tumbling, hopping


def _storable(count: WordCount) -> str | None:
    """Why SQL cannot hold this otherwise valid update, if it cannot."""
    if "\x00" in count.word:
        return "word: contains a NUL character, which SQL text columns cannot hold"
    if count.word_count > MAX_COUNT:
        return f"word_count: larger than {MAX_COUNT}"
    if count.window_end <= count.window_start:
        return "window_end: must be after window_start"
    return None


def decode(records: Iterable[ConsumerRecord], hopping_topic: str = "") -> DecodedCounts:
    """Records of `hopping_topic` are hopping-window counts, the rest tumbling ones."""
    batch = DecodedCounts()
    for record in records:
        count = parse(record, WordCount)
        if isinstance(count, DeadLetter):
            batch.dead.append(count)
        elif problem := _storable(count):
            batch.dead.append(DeadLetter(record, "SchemaViolation", problem))
        else:
            batch.add(count, record, record.topic == hopping_topic)
    return batch
