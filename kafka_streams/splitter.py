"""Sub-topology 1: tweets (keyed by user) → per-word deltas on the repartition topic (by word).

Like a Kafka Streams `groupBy`, so every count for a word lands on one partition whichever
instance read the tweet. Each poll is pre-aggregated (one record per word, not per occurrence),
and the deltas, the dead letters and the input offsets go out in ONE Kafka transaction: a crash
at any point either publishes the whole batch with its offsets, or none of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

import orjson
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from kafka_streams import metrics
from kafka_streams.batching import Batcher
from kafka_streams.tokenize import count_batch
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.lifecycle import StopSignal
from tweetpipe.records import decode

log = logging.getLogger(__name__)


def encode_delta(word: str, per_window: dict[int, int]) -> bytes:
    return orjson.dumps({"w": word, "c": {str(k): v for k, v in per_window.items()}})


def decode_delta(value: bytes) -> tuple[str, dict[int, int]]:
    body = orjson.loads(value)
    return str(body["w"]), {int(k): int(v) for k, v in body["c"].items()}


class Splitter(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python is untyped
    def __init__(
        self,
        connect: Callable[[ConsumerRebalanceListener], KafkaConsumer],
        producer: KafkaProducer,
        dead_letters: DeadLetterPublisher,
        group_id: str,
        repartition_topic: str,
        window_seconds: int,
        stop_words: frozenset[str],
        batcher: Batcher,
        stop: StopSignal,
    ) -> None:
        self._consumer = connect(self)
        self._batcher = batcher
        self._producer = producer
        self._dead_letters = dead_letters
        self._group_id = group_id
        self._topic = repartition_topic
        self._window_seconds = window_seconds
        self._stop_words = stop_words
        self._stop = stop

    def run(self) -> None:
        while not self._stop.is_set():
            self._batcher.add(self._consumer.poll(timeout_ms=100))
            if self._batcher.due():
                self._process(self._batcher.take())
        if len(self._batcher):
            self._process(self._batcher.take())

    def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        """Finish the batch before the partitions move, so the next owner starts after it."""
        if len(self._batcher):
            self._process(self._batcher.take())

    def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        pass

    def close(self) -> None:
        self._consumer.close(autocommit=False, timeout_ms=5000)

    def _process(self, records: list[ConsumerRecord]) -> None:
        batch = decode(records)
        counts = count_batch(
            (t for t, _ in batch.tweets.values()), self._window_seconds, self._stop_words
        )
        try:
            self._producer.begin_transaction()
            for word, per_window in counts.items():
                self._producer.send(
                    self._topic, key=word.encode(), value=encode_delta(word, per_window)
                )
            for letter in batch.dead:
                self._dead_letters.publish(letter.record, letter.error, letter.reason)
            self._producer.send_offsets_to_transaction(_next_offsets(records), self._group_id)
            self._producer.commit_transaction()
        except KafkaError as exc:
            log.warning("transaction failed, re-reading the batch: %s", exc)
            self._producer.abort_transaction()
            self._rewind(records)
            return
        metrics.TWEETS.inc(len(batch.tweets))
        metrics.DELTAS.inc(len(counts))

    def _rewind(self, records: list[ConsumerRecord]) -> None:
        first: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            first[tp] = min(first.get(tp, record.offset), record.offset)
        for tp, offset in first.items():
            if tp in self._consumer.assignment():
                self._consumer.seek(tp, offset)


def _next_offsets(records: list[ConsumerRecord]) -> dict[TopicPartition, OffsetAndMetadata]:
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        if tp not in offsets or offsets[tp].offset <= record.offset:
            offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
    return offsets
