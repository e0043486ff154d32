"""The indexing loop: batch → index → dead-letter → commit, in that order, always.

Offsets are committed only once the batch is durable in the store and its dead letters are
acknowledged, so a crash at any point means re-delivery (harmless: `_id` = tweet id), never loss.
While the store is down the loop pauses its partitions and keeps polling (to stay in the group)
instead of committing or dropping anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from kafka_to_elastic import metrics
from kafka_to_elastic.settings import SinkOptions
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.kafka import consumer_lag
from tweetpipe.lifecycle import StopSignal
from tweetpipe.model import Tweet
from tweetpipe.records import DeadLetter, decode
from tweetpipe.search import BulkResult, SearchStore, StoreUnavailable

log = logging.getLogger(__name__)


class ShutdownRequested(Exception):
    """Stop arrived while waiting for the store: leave without committing the batch."""


class Sink:
    def __init__(
        self,
        consumer: KafkaConsumer,
        store: SearchStore,
        dead_letters: DeadLetterPublisher,
        options: SinkOptions,
        stop: StopSignal,
    ) -> None:
        self._consumer = consumer
        self._store = store
        self._dead_letters = dead_letters
        self._options = options
        self._stop = stop
        self.indexed = 0
        self.dead_lettered = 0

    def run(self) -> None:
        """Index until stopped; the batch in hand when the signal arrives is finished first."""
        last_report, reported = time.monotonic(), 0
        try:
            while not self._stop.is_set():
                records = self._next_batch()
                if records:
                    self.process(records)
                lag = self._export_lag()
                now = time.monotonic()
                if (
                    now - last_report >= self._options.progress_interval_s
                    and self.indexed > reported
                ):
                    self._progress(self.indexed - reported, now - last_report, lag)
                    last_report, reported = now, self.indexed
        except ShutdownRequested:
            log.warning("stopped while the store was unavailable; the batch will be re-delivered")

    def _next_batch(self) -> list[ConsumerRecord]:
        """Gather up to `batch_size` records, waiting at most `batch_wait_ms` after the first."""
        records: list[ConsumerRecord] = []
        deadline: float | None = None
        while len(records) < self._options.batch_size and not self._stop.is_set():
            if deadline is None:
                timeout_ms = 500
            else:
                timeout_ms = int((deadline - time.monotonic()) * 1000)
                if timeout_ms <= 0:
                    break
            polled = self._consumer.poll(
                timeout_ms=timeout_ms, max_records=self._options.batch_size - len(records)
            )
            for partition_records in polled.values():
                records.extend(partition_records)
            if records and deadline is None:
                deadline = time.monotonic() + self._options.batch_wait_ms / 1000
            if not polled and deadline is None:
                break  # idle: let the caller check the stop signal and export lag
        return records

    def process(self, records: list[ConsumerRecord]) -> None:
        started = time.perf_counter()
        batch = decode(records)
        result = self._index_until_durable([tweet for tweet, _ in batch.tweets.values()])
        dead = list(batch.dead)
        for rejection in result.rejected:
            _, record = batch.tweets[rejection.tweet_id]
            dead.append(DeadLetter(record, "StoreRejected", rejection.reason))
        self._dead_letter(dead)
        self._commit(records)
        self.indexed += result.indexed
        self.dead_lettered += len(dead)
        metrics.INDEXED.inc(result.indexed)
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    def _index_until_durable(self, tweets: list[Tweet]) -> BulkResult:
        if not tweets:
            return BulkResult(indexed=0)
        retrying = Retrying(
            retry=retry_if_exception_type(StoreUnavailable),
            wait=wait_exponential(
                multiplier=self._options.retry_initial_s, max=self._options.retry_max_s
            ),
            sleep=self._sleep_paused,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._store.bulk_upsert, tweets)
        finally:
            if paused := self._consumer.paused():
                self._consumer.resume(*paused)

    def _log_retry(self, state: RetryCallState) -> None:
        metrics.RETRIES.inc()
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "search store unavailable (attempt %d), retrying in %.1fs with consumption paused: %s",
            state.attempt_number,
            state.upcoming_sleep,
            error,
            extra={"retry.attempt": state.attempt_number},
        )

    def _sleep_paused(self, seconds: float) -> None:
        """Wait with every partition paused, polling so the group keeps this member."""
        self._consumer.pause(*self._consumer.assignment())
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self._stop.is_set():
                raise ShutdownRequested
            polled = self._consumer.poll(timeout_ms=int(min(remaining, 1.0) * 1000) or 1)
            self._rewind(polled.values())
            self._consumer.pause(*self._consumer.assignment())

    def _rewind(self, polled: Iterable[list[ConsumerRecord]]) -> None:
        """Records from partitions assigned during the pause are not ours to handle yet."""
        for partition_records in polled:
            if partition_records:
                first = partition_records[0]
                self._consumer.seek(TopicPartition(first.topic, first.partition), first.offset)

    def _dead_letter(self, dead: list[DeadLetter]) -> None:
        for letter in dead:
            self._dead_letters.publish(letter.record, letter.error, letter.reason)
        if dead:
            self._dead_letters.flush()

    def _commit(self, records: list[ConsumerRecord]) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if tp not in offsets or offsets[tp].offset <= record.offset:
                offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
        try:
            self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The group rebalanced mid-batch: the new owner re-delivers, and indexing is idempotent.
            log.warning("offset commit failed, batch will be re-delivered: %s", exc)

    def _export_lag(self) -> int:
        group = self._options.group_id
        lags = consumer_lag(self._consumer)
        metrics.ASSIGNED.set(len(self._consumer.assignment()))
        for tp, lag in lags.items():
            metrics.LAG.labels(group, tp.topic, str(tp.partition)).set(lag)
        return sum(lags.values())

    def _progress(self, count: int, seconds: float, lag: int) -> None:
        log.info(
            "indexed %d tweets (%.0f/s), %d dead-lettered, lag %d",
            self.indexed,
            count / seconds,
            self.dead_lettered,
            lag,
            extra={"tweets.indexed": self.indexed, "tweets.dead_lettered": self.dead_lettered},
        )
