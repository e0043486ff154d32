"""Direct Kafka access for tests: produce raw records, read topics back, inspect offsets."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from tweetpipe.kafka import make_producer
from tweetpipe.model import Tweet
from tweetpipe.settings import KafkaSettings


def consumer_record(
    topic: str,
    value: bytes | None,
    *,
    key: bytes | None = None,
    offset: int = 0,
    headers: list[tuple[str, bytes | None]] | None = None,
) -> ConsumerRecord:
    """A record as a consumer hands it over, for code that reads records without a broker."""
    return ConsumerRecord(
        topic=topic,
        partition=0,
        leader_epoch=None,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        headers=[] if headers is None else headers,
        checksum=None,
        serialized_key_size=-1 if key is None else len(key),
        serialized_value_size=-1 if value is None else len(value),
        serialized_header_size=0,
    )


def produce(
    settings: KafkaSettings, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
) -> int:
    producer: KafkaProducer = make_producer(settings, client_id="test-producer")
    count = 0
    for key, value in records:
        producer.send(topic, key=key, value=value)
        count += 1
    producer.flush()
    producer.close()
    return count


OVERSIZED_BYTES = 5 * 1024 * 1024
"""A record the broker accepts and the stages' producers may not send whole (1 MiB limit)."""


def produce_oversized(settings: KafkaSettings, topic: str, key: bytes, value: bytes) -> None:
    """One record larger than the stages' `max_request_size`, by a producer allowed to send it."""
    producer: KafkaProducer = make_producer(
        settings, client_id="test-oversized", max_request_size=len(value) + 64 * 1024
    )
    producer.send(topic, key=key, value=value).get(timeout=60)
    producer.close()


def assert_truncated_copy(record: ConsumerRecord, original: bytes, stage: str) -> dict[str, str]:
    """`record` is the dead-letter topic's truncated copy of `original`, saying so."""
    headers = {k: v.decode() for k, v in record.headers}
    assert headers["dlq.stage"] == stage
    assert headers["dlq.truncated"] == "true"
    assert headers["dlq.original.size"] == str(len(original))
    assert headers["dlq.original.sha256"] == hashlib.sha256(original).hexdigest()
    assert 0 < len(record.value) < 1024 * 1024
    assert original.startswith(record.value)
    return headers


def produce_tweets(settings: KafkaSettings, tweets: Iterable[Tweet]) -> int:
    return produce(settings, settings.tweets_topic, ((t.key, t.to_json()) for t in tweets))


def read_topic(
    settings: KafkaSettings, topic: str, expected: int, timeout_s: float = 60.0
) -> list[ConsumerRecord]:
    """Every record of `topic` from the beginning, once `expected` have arrived."""
    consumer = KafkaConsumer(bootstrap_servers=settings.servers, enable_auto_commit=False)
    partitions = None
    deadline = time.monotonic() + timeout_s
    while not partitions and time.monotonic() < deadline:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            time.sleep(0.2)
    assert partitions, f"topic {topic} does not exist"
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    records: list[ConsumerRecord] = []
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    consumer.close()
    assert len(records) >= expected, f"{topic}: {len(records)} records, expected {expected}"
    return records


def committed_offsets(settings: KafkaSettings, group: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.servers, group_id=group, enable_auto_commit=False
    )
    partitions = consumer.partitions_for_topic(topic) or set()
    offsets = {}
    for p in sorted(partitions):
        offsets[p] = consumer.committed(TopicPartition(topic, p)) or 0
    consumer.close(autocommit=False)
    return offsets


def partition_counts(records: Iterable[ConsumerRecord]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for record in records:
        counts[record.partition] = max(counts.get(record.partition, 0), record.offset + 1)
    return counts
