"""Dead letters: records a stage cannot process, kept with the reason instead of dropped.

The original key and value bytes go to `twitter-dlq` unchanged, with headers naming the stage,
the error and where the record came from, so it can be inspected and replayed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.producer.future import FutureRecordMetadata
from prometheus_client import Counter

from tweetpipe.records import DeadLetter

log = logging.getLogger(__name__)

MAX_REASON_BYTES = 2048

DEAD_LETTERED = Counter(
    "tweetpipe_dead_lettered_total",
    "Records sent to the dead-letter topic",
    ["stage", "error"],
)


class DeadLetterPublisher:
    def __init__(self, producer: KafkaProducer, topic: str, stage: str) -> None:
        self._producer = producer
        self._topic = topic
        self._stage = stage

    def publish(self, record: ConsumerRecord, error: str, reason: str) -> FutureRecordMetadata:
        """Queue `record` for the dead-letter topic; call `flush()` before committing past it."""
        headers = [
            ("dlq.stage", self._stage.encode()),
            ("dlq.error", error.encode()),
            ("dlq.reason", reason.encode()[:MAX_REASON_BYTES]),
            ("dlq.source.topic", record.topic.encode()),
            ("dlq.source.partition", str(record.partition).encode()),
            ("dlq.source.offset", str(record.offset).encode()),
            *((k, v) for k, v in (record.headers or []) if not k.startswith("dlq.")),
        ]
        DEAD_LETTERED.labels(self._stage, error).inc()
        log.warning(
            "dead-lettered %s[%d]@%d: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            error,
            reason[:200],
            extra={
                "kafka.topic": record.topic,
                "kafka.partition": record.partition,
                "kafka.offset": record.offset,
                "dlq.error": error,
            },
        )
        future: FutureRecordMetadata = self._producer.send(
            self._topic, key=record.key, value=record.value, headers=headers
        )
        return future

    def publish_all(self, letters: Iterable[DeadLetter]) -> int:
        """Publish and wait for acknowledgement: safe to commit past them afterwards."""
        count = 0
        for letter in letters:
            self.publish(letter.record, letter.error, letter.reason)
            count += 1
        if count:
            self.flush()
        return count

    def flush(self) -> None:
        """Block until every queued dead letter is acknowledged by the broker."""
        self._producer.flush()
