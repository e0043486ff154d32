"""Dead letters: records a stage cannot process, kept with the reason instead of dropped.

The original key and value bytes go to `twitter-dlq` unchanged, with headers naming the stage,
the error and where the record came from, so it can be inspected and replayed.

A record the dead-letter topic cannot take whole (larger than the producer may send, or refused
by the broker as too large) goes there truncated instead, with headers saying so: the original
size and the sha256 of the original value, so the copy can be matched with the source record
(still on its topic at the offset the headers give). A dead letter is never skipped: if even the
truncated copy is refused, `publish_all` raises `DeadLetterFailed` naming the record, and the
stage stops before committing past it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError, MessageSizeTooLargeError, RecordListTooLargeError
from kafka.producer.future import FutureRecordMetadata
from prometheus_client import Counter

from tweetpipe.records import DeadLetter

log = logging.getLogger(__name__)

MAX_REASON_BYTES = 2048
RECORD_OVERHEAD_BYTES = 1024
"""Room kept under the producer's `max_request_size` for the batch and record framing."""
TRUNCATED_KEY_BYTES = 256
REFUSED_RETRY_BYTES = 64 * 1024
"""The value kept when the broker refuses a copy the producer thought small enough (its own
`max.message.bytes` is lower)."""
ACK_TIMEOUT_S = 60.0

DEAD_LETTERED = Counter(
    "tweetpipe_dead_lettered_total",
    "Records sent to the dead-letter topic",
    ["stage", "error"],
)
TRUNCATED = Counter(
    "tweetpipe_dead_letters_truncated_total",
    "Dead letters sent truncated because the original was too large for the dead-letter topic",
    ["stage"],
)


class DeadLetterFailed(RuntimeError):
    """The dead-letter topic refused a record even truncated: committing past it would lose it."""


@dataclass(frozen=True)
class _Sent:
    letter: DeadLetter
    future: FutureRecordMetadata
    truncated: bool


class DeadLetterPublisher:
    def __init__(self, producer: KafkaProducer, topic: str, stage: str) -> None:
        self._producer = producer
        self._topic = topic
        self._stage = stage
        self._max_bytes = int(producer.config["max_request_size"]) - RECORD_OVERHEAD_BYTES

    def publish(self, record: ConsumerRecord, error: str, reason: str) -> FutureRecordMetadata:
        """Queue `record` for the dead-letter topic; call `flush()` before committing past it.

        Use `publish_all` where the stage can wait: it also checks every acknowledgement.
        """
        return self._send(DeadLetter(record, error, reason), self._max_bytes)[0]

    def publish_all(self, letters: Iterable[DeadLetter]) -> int:
        """Publish and wait until each is acknowledged: safe to commit past them afterwards."""
        sent = [self._sent(letter, self._max_bytes) for letter in letters]
        if not sent:
            return 0
        self._producer.flush()
        for item in sent:
            self._acknowledged(item)
        return len(sent)

    def flush(self) -> None:
        """Block until every queued dead letter is sent (`publish_all` also checks each)."""
        self._producer.flush()

    def _sent(self, letter: DeadLetter, max_bytes: int) -> _Sent:
        future, truncated = self._send(letter, max_bytes)
        return _Sent(letter, future, truncated)

    def _acknowledged(self, item: _Sent) -> None:
        try:
            item.future.get(timeout=ACK_TIMEOUT_S)
            return
        except (MessageSizeTooLargeError, RecordListTooLargeError) as exc:
            if item.truncated and self._max_bytes <= REFUSED_RETRY_BYTES:
                raise self._failed(item.letter, exc) from exc
            log.warning("the broker refused a dead letter as too large; sending it truncated")
        except KafkaError as exc:
            raise self._failed(item.letter, exc) from exc
        retry = self._sent(item.letter, min(self._max_bytes, REFUSED_RETRY_BYTES))
        self._producer.flush()
        try:
            retry.future.get(timeout=ACK_TIMEOUT_S)
        except KafkaError as exc:
            raise self._failed(item.letter, exc) from exc

    def _send(self, letter: DeadLetter, max_bytes: int) -> tuple[FutureRecordMetadata, bool]:
        record = letter.record
        headers = [
            ("dlq.stage", self._stage.encode()),
            ("dlq.error", letter.error.encode()),
            ("dlq.reason", letter.reason.encode()[:MAX_REASON_BYTES]),
            ("dlq.source.topic", record.topic.encode()),
            ("dlq.source.partition", str(record.partition).encode()),
            ("dlq.source.offset", str(record.offset).encode()),
        ]
        original = [(k, v) for k, v in (record.headers or []) if not k.startswith("dlq.")]
        key, value = record.key, record.value
        truncated = _size(key, value, headers + original) > max_bytes
        if truncated:
            key, value, headers = _truncate(key, value, headers, len(original), max_bytes)
            TRUNCATED.labels(self._stage).inc()
        else:
            headers += original
        DEAD_LETTERED.labels(self._stage, letter.error).inc()
        log.warning(
            "dead-lettered %s[%d]@%d%s: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            f" (truncated from {len(record.value or b'')} bytes)" if truncated else "",
            letter.error,
            letter.reason[:200],
            extra={
                "kafka.topic": record.topic,
                "kafka.partition": record.partition,
                "kafka.offset": record.offset,
                "dlq.error": letter.error,
                "dlq.truncated": truncated,
            },
        )
        future: FutureRecordMetadata = self._producer.send(
            self._topic, key=key, value=value, headers=headers
        )
        return future, truncated

    def _failed(self, letter: DeadLetter, error: Exception) -> DeadLetterFailed:
        record = letter.record
        return DeadLetterFailed(
            f"could not dead-letter {record.topic}[{record.partition}]@{record.offset} "
            f"({letter.error}) to {self._topic}: {type(error).__name__}: {error}"
        )


def _size(key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> int:
    return len(key or b"") + len(value or b"") + sum(len(k) + len(v) for k, v in headers)


def _truncate(
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]],
    dropped_headers: int,
    max_bytes: int,
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """A copy within `max_bytes`: the original's headers dropped, key and value cut, and
    headers saying what the original was."""
    original = value or b""
    headers = [
        *headers,
        ("dlq.truncated", b"true"),
        ("dlq.original.size", str(len(original)).encode()),
        ("dlq.original.sha256", hashlib.sha256(original).hexdigest().encode()),
        ("dlq.original.key.size", str(len(key or b"")).encode()),
        ("dlq.original.headers.dropped", str(dropped_headers).encode()),
    ]
    key = key[:TRUNCATED_KEY_BYTES] if key is not None else None
    room = max(0, max_bytes - _size(key, None, headers))
    return key, (original[:room] if value is not None else None), headers
