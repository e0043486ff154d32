"""Sub-topology 1: tweets (keyed by user) → per-word deltas on the repartition topic (by word).

Like a Kafka Streams `groupBy`, so every count for a word lands on one partition whichever
instance read the tweet. A batch is pre-aggregated per input partition, and the deltas, the dead
letters and the input offsets go out in ONE Kafka transaction.

Exactly once without trusting `read_committed`: the local broker hands records of aborted
transactions to every consumer, so a crash mid-transaction leaves deltas that will be sent again.
Each delta therefore carries its source (input partition, offset range, chunk), and before each
transaction the splitter records its *intent* (the range it is about to process per input
partition) on a compacted topic. Whoever resumes an uncommitted range processes exactly that
range again, producing identical deltas with identical sources, which the counter applies once.

Event time: each input partition has a stream time (its latest tweet time), which decides
which windows a tweet is too late for (`windows.Windows`). The intent records the stream time
before and after its range, so a replayed range starts from the same stream time and a resumed
partition carries on from where the last committed range left it. Every delta carries its
partition's stream time, and every repartition partition gets one per batch (empty if no word
went there), so the counter knows how far each input partition has got.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

import orjson
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from kafka_streams import metrics
from kafka_streams.batching import Batcher
from kafka_streams.directory import partition_for
from kafka_streams.intents import Intent, Intents
from kafka_streams.tokenize import CountedBatch, count_batch
from kafka_streams.windows import Windows
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.kafka import commit_transaction, consumer_lag
from tweetpipe.lifecycle import StopSignal
from tweetpipe.pipeline_metrics import RECORDS_CONSUMED, export_lag
from tweetpipe.records import decode_fields
from tweetpipe.settings import TweetLimits

log = logging.getLogger(__name__)

CHUNK_WORDS = 2000
"""Words per repartition record: keeps records far below the broker's size limit."""
INPUT_LAG = "input-lag"
"""Header of every delta: how many records of its input partition were still unread when its
batch was taken (decimal). 0 from every input partition, and nothing left unread by the counter,
means the pipeline has caught up: the counter's cue to publish (`kafka_streams.publish_pacing`).
"""


def input_lag(record: ConsumerRecord) -> int | None:
    """The `INPUT_LAG` header of a delta; None if it has none (an older splitter) or a bad one."""
    for key, value in record.headers or ():
        if key == INPUT_LAG:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


@dataclass(frozen=True)
class Source:
    """Where a delta comes from; the same input range always yields the same sources."""

    partition: int
    first: int
    last: int
    chunk: int

    @property
    def position(self) -> tuple[int, int]:
        return (self.last, self.chunk)


Deltas = dict[str, dict[int, int]]
"""word → window start (or ALL_TIME) → occurrences"""


def encode_delta(source: Source, deltas: Deltas, stream_time: int = 0) -> bytes:
    """Window keys become JSON object keys ("1796187960") in orjson itself, not in a copy."""
    body = {
        "src": [source.partition, source.first, source.last, source.chunk],
        "words": deltas,
        "t": stream_time,
    }
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


def source_key(source: Source) -> bytes:
    """A delta's record key: its source, readable without decoding the value."""
    return f"{source.partition}:{source.first}-{source.last}:{source.chunk}".encode()


def source_of_key(key: bytes | None) -> Source | None:
    """The source a delta's key names; None for a key no splitter wrote."""
    try:
        partition, span, chunk = (key or b"").split(b":")
        first, last = span.split(b"-")
        return Source(int(partition), int(first), int(last), int(chunk))
    except ValueError:
        return None


def decode_delta(value: bytes) -> tuple[Source, Deltas, int]:
    """(source, deltas, the source partition's stream time; 0 from older splitters)."""
    body = orjson.loads(value)
    partition, first, last, chunk = (int(x) for x in body["src"])
    words = {str(w): {int(k): int(v) for k, v in c.items()} for w, c in body["words"].items()}
    return Source(partition, first, last, chunk), words, int(body.get("t", 0))


def _chunks(deltas: Deltas, size: int) -> Iterator[Deltas]:
    """The words in chunks of `size`; one empty chunk when there are none."""
    items = list(deltas.items())
    for start in range(0, max(len(items), 1), size):
        yield dict(items[start : start + size])


class TransactionFailed(RuntimeError):
    """A batch's transaction cannot succeed: its input stays uncommitted and the stage stops."""


class Splitter(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python is untyped
    def __init__(
        self,
        *,
        connect: Callable[[ConsumerRebalanceListener], KafkaConsumer],
        producer: KafkaProducer,
        dead_letters: DeadLetterPublisher,
        group_id: str,
        repartition_topic: str,
        repartition_partitions: int,
        intents: Intents,
        windows: Windows,
        stop_words: frozenset[str],
        batcher: Batcher,
        stop: StopSignal,
        transaction_attempts: int = 8,
        crash_after_deltas: int | None = None,
        limits: TweetLimits | None = None,
    ) -> None:
        self._limits = limits
        self._attempts = transaction_attempts
        self._failures = 0
        """Transactions failed in a row: the same ranges, processed again each time."""
        self._crash_after = crash_after_deltas
        self._sent_total = 0
        self._consumer = connect(self)
        self._batcher = batcher
        self._producer = producer
        self._dead_letters = dead_letters
        self._group_id = group_id
        self._topic = repartition_topic
        self._partitions = repartition_partitions
        self._intents = intents
        self._unchecked: set[TopicPartition] = set()
        self._replay: dict[int, tuple[int, int]] = {}
        """Input partition → the exact (first, last) range its next batch must cover."""
        self._held: dict[int, dict[int, ConsumerRecord]] = {}
        self._windows = windows
        self._times: dict[int, int] = {}
        """Input partition → stream time at its next offset (epoch seconds)."""
        self._stop_words = stop_words
        self._stop = stop
        self._lag: dict[int, int] = {}
        """Input partition → records not yet read, as of the last poll."""

    def run(self) -> None:
        while not self._stop.is_set():
            polled = self._consumer.poll(timeout_ms=100)
            self._batcher.add(polled)
            self._measure(polled)
            if self._unchecked:
                self._find_unfinished_ranges()
            if self._batcher.due():
                self._process(self._batcher.take())
        if len(self._batcher):
            self._process(self._batcher.take())

    def _measure(self, polled: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Records read and input lag, on the same panels as the other consuming stages."""
        for tp, records in polled.items():
            RECORDS_CONSUMED.labels(self._group_id, tp.topic).inc(len(records))
        lag = consumer_lag(self._consumer)
        self._lag = {tp.partition: n for tp, n in lag.items()}
        export_lag(self._group_id, lag)

    def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        """Finish the batch before the partitions move, so the next owner starts after it."""
        if len(self._batcher):
            self._process(self._batcher.take())
        for tp in revoked:  # the next owner finds any unfinished range through the intents
            self._replay.pop(tp.partition, None)
            self._held.pop(tp.partition, None)
            self._times.pop(tp.partition, None)

    def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        # Checked from the poll loop: the consumer cannot fetch offsets inside this callback.
        self._unchecked.update(assigned)

    def _find_unfinished_ranges(self) -> None:
        """A recorded intent starting at the committed offset was never committed: replay it,
        from the stream time it started at. One ending there was: carry on from its end time."""
        latest = self._intents.latest()
        for tp in self._unchecked:
            intent = latest.get(tp.partition)
            committed = self._consumer.committed(tp) or 0
            self._times[tp.partition] = 0
            if intent and intent.first == committed:
                log.info(
                    "replaying the unfinished range %s-%s of partition %d",
                    intent.first,
                    intent.last,
                    tp.partition,
                )
                self._replay[tp.partition] = (intent.first, intent.last)
                self._times[tp.partition] = intent.time_before
            elif intent and intent.last + 1 == committed:
                self._times[tp.partition] = intent.time_after
        self._unchecked.clear()

    def close(self) -> None:
        self._consumer.close(autocommit=False, timeout_ms=5000)

    def _process(self, records: list[ConsumerRecord]) -> None:
        by_partition = self._exact_ranges(records)
        if not by_partition:
            return
        ranges = {p: (recs[0].offset, recs[-1].offset) for p, recs in by_partition.items()}
        decoded = {p: decode_fields(recs, self._limits) for p, recs in by_partition.items()}
        counted: dict[int, CountedBatch] = {}
        for partition, batch in decoded.items():
            counted[partition] = count_batch(
                (t for t, _ in batch.tweets.values()),
                self._windows,
                self._stop_words,
                self._times.get(partition, 0),
            )
        self._intents.record(
            {
                p: Intent(first, last, self._times.get(p, 0), counted[p].stream_time)
                for p, (first, last) in ranges.items()
            }
        )
        tweets = deltas = late = 0
        try:
            self._producer.begin_transaction()
            for partition, batch in decoded.items():
                first, last = ranges[partition]
                deltas += self._send_deltas(partition, first, last, counted[partition])
                for letter in batch.dead:
                    self._dead_letters.publish(letter.record, letter.error, letter.reason)
                tweets += len(batch.tweets)
                late += counted[partition].late
            flat = [r for recs in by_partition.values() for r in recs]
            self._producer.send_offsets_to_transaction(_next_offsets(flat), self._group_id)
            commit_transaction(self._producer)
        except KafkaError as exc:
            self._producer.abort_transaction()
            self._give_up_unless_retriable(exc, ranges)
            self._replay.update(ranges)
            self._rewind([r for recs in by_partition.values() for r in recs])
            return
        self._failures = 0
        for partition in by_partition:
            self._replay.pop(partition, None)
            self._times[partition] = counted[partition].stream_time
        metrics.TWEETS.inc(tweets)
        metrics.DELTAS.inc(deltas)
        metrics.LATE_TWEETS.inc(late)

    def _give_up_unless_retriable(
        self, error: KafkaError, ranges: dict[int, tuple[int, int]]
    ) -> None:
        """Back off before the same ranges are tried again; raise (the stage stops, its input
        uncommitted) on an error that would only repeat, or after `transaction_attempts`."""
        self._failures += 1
        named = ", ".join(f"input partition {p} offsets {a}-{b}" for p, (a, b) in ranges.items())
        if not error.retriable or self._failures >= self._attempts:
            raise TransactionFailed(
                f"giving up on {named} after {self._failures} attempt(s): "
                f"{type(error).__name__}: {error}"
            ) from error
        wait_s = min(0.1 * 2**self._failures, 10.0)
        log.warning(
            "transaction for %s failed (attempt %d of %d), trying again in %.1fs: %s",
            named,
            self._failures,
            self._attempts,
            wait_s,
            error,
            extra={"retry.attempt": self._failures},
        )
        self._stop.wait(wait_s)

    def _exact_ranges(self, records: list[ConsumerRecord]) -> dict[int, list[ConsumerRecord]]:
        """Group by input partition; a partition with a range to replay gets exactly that range
        (or waits for the rest of it), and records past it are read again afterwards."""
        grouped: dict[int, list[ConsumerRecord]] = defaultdict(list)
        for record in records:
            grouped[record.partition].append(record)
        ready: dict[int, list[ConsumerRecord]] = {}
        for partition, partition_records in grouped.items():
            partition_records.sort(key=lambda r: r.offset)
            replay = self._replay.get(partition)
            if replay is None:
                ready[partition] = partition_records
                continue
            first, last = replay
            held = self._held.setdefault(partition, {})
            held.update((r.offset, r) for r in partition_records if first <= r.offset <= last)
            if held and min(held) == first and max(held) == last:  # polls are in offset order
                ready[partition] = [held[o] for o in sorted(held)]
                del self._held[partition]
                if partition_records[-1].offset > last:  # read past the range: again later
                    tp = TopicPartition(partition_records[0].topic, partition)
                    self._consumer.seek(tp, last + 1)
            # else: hold what is here until the rest of the range arrives
        return ready

    def _send_deltas(self, partition: int, first: int, last: int, counted: CountedBatch) -> int:
        """One record per (repartition partition, chunk of words), in a deterministic order;
        at least one per repartition partition, which carries the stream time there."""
        by_target: dict[int, Deltas] = {t: {} for t in range(self._partitions)}
        for word, per_window in counted.counts.items():
            by_target[partition_for(word, self._partitions)][word] = per_window
        sent = 0
        lag = self._lag.get(partition)
        behind = str(lag).encode() if lag is not None else None
        for target in sorted(by_target):
            for chunk, deltas in enumerate(_chunks(by_target[target], CHUNK_WORDS)):
                source = Source(partition, first, last, chunk)
                self._producer.send(
                    self._topic,
                    key=source_key(source),
                    value=encode_delta(source, deltas, counted.stream_time),
                    partition=target,
                    # A new list per record: the tracing instrumentation appends to it.
                    headers=[(INPUT_LAG, behind)] if behind is not None else None,
                )
                sent += 1
                self._sent_total += 1
                if self._crash_after is not None and self._sent_total >= self._crash_after:
                    self._crash()
        return sent

    def _crash(self) -> None:
        """Crash tests: die like `kill -9` with part of a transaction already on the broker."""
        self._producer.flush()
        log.warning("crashing mid-transaction on purpose (streams.crash_after_deltas)")
        os._exit(137)

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
