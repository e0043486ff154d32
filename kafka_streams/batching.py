"""Gathering polled records into large batches, as Kafka Streams' commit interval does.

Bigger batches are what make the stream stage fast: one repartition record per word per batch,
one changelog record per changed count per batch. A batch is due when it is full or when its
first record has waited `wait_s` (which bounds how stale counts get). A rebalance flushes it.
"""

from __future__ import annotations

import time

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord


class Batcher:
    def __init__(self, size: int, wait_s: float) -> None:
        self._size = size
        self._wait_s = wait_s
        self._records: list[ConsumerRecord] = []
        self._first_at: float | None = None

    def add(self, polled: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        for records in polled.values():
            if records and self._first_at is None:
                self._first_at = time.monotonic()
            self._records.extend(records)

    def due(self) -> bool:
        if not self._records:
            return False
        assert self._first_at is not None
        return len(self._records) >= self._size or time.monotonic() - self._first_at >= self._wait_s

    def take(self) -> list[ConsumerRecord]:
        records, self._records, self._first_at = self._records, [], None
        return records

    def __len__(self) -> int:
        return len(self._records)
