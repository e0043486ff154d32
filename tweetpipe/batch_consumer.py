"""The consuming half every sink stage shares: gather a batch, wait out outages, commit after.

A stage (search indexer, SQL upserter) polls a batch, writes it somewhere durable, and only
then commits the batch's offsets. When the destination is briefly unavailable the stage must
neither commit past data it has not written nor drop out of its consumer group, so it retries
with exponential backoff while its partitions are paused and it keeps polling (polling is
what keeps a kafka-python member alive). That logic lives here once, not in each service.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

from tweetpipe.kafka import consumer_lag
from tweetpipe.lifecycle import StopSignal
from tweetpipe.pipeline_metrics import RECORDS_CONSUMED, export_lag
from tweetpipe.settings import BatchOptions

log = logging.getLogger(__name__)

T = TypeVar("T")


class ShutdownRequested(Exception):
    """Stop arrived while waiting for the destination: leave without committing the batch."""


class BatchConsumer:
    """Wraps a subscribed consumer (auto-commit off) for batch → write → commit loops."""

    def __init__(self, consumer: KafkaConsumer, policy: BatchOptions, stop: StopSignal) -> None:
        self.consumer = consumer
        self._policy = policy
        self._stop = stop
        self._group = str(consumer.config["group_id"])

    def run(
        self, process: Callable[[list[ConsumerRecord]], None], after_poll: Callable[[], None]
    ) -> None:
        """Hand each batch to `process` until stopped; `after_poll` runs between polls.

        The batch in hand when the stop signal arrives is finished first; a stop that arrives
        while waiting out an outage leaves without committing (the batch is re-delivered).
        """
        try:
            while not self._stop.is_set():
                records = self.next_batch()
                if records:
                    process(records)
                after_poll()
        except ShutdownRequested:
            log.warning("stopped while the destination was unavailable; batch left uncommitted")

    def next_batch(self) -> list[ConsumerRecord]:
        """Up to `batch_size` records, waiting at most `batch_wait_ms` after the first.

        Returns early (possibly empty) when idle or stopping, so the caller can check the stop
        signal and export metrics between polls.
        """
        records: list[ConsumerRecord] = []
        deadline: float | None = None
        size = self._policy.batch_size
        while len(records) < size and not self._stop.is_set():
            if deadline is None:
                timeout_ms = 500
            else:
                timeout_ms = int((deadline - time.monotonic()) * 1000)
                if timeout_ms <= 0:
                    break
            polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=size - len(records))
            for tp, partition_records in polled.items():
                records.extend(partition_records)
                RECORDS_CONSUMED.labels(self._group, tp.topic).inc(len(partition_records))
            if records and deadline is None:
                deadline = time.monotonic() + self._policy.batch_wait_ms / 1000
            if not polled and deadline is None:
                break  # idle
        return records

    def until_durable(
        self,
        work: Callable[[], T],
        transient: tuple[type[BaseException], ...],
        on_retry: Callable[[RetryCallState], None],
    ) -> T:
        """Run `work` until it succeeds, retrying `transient` errors with consumption paused.

        `on_retry` is called before each wait (log and count there). Raises
        `ShutdownRequested` if stopped while waiting; other errors propagate at once.
        """
        retrying = Retrying(
            retry=retry_if_exception_type(transient),
            wait=wait_exponential(
                multiplier=self._policy.retry_initial_s, max=self._policy.retry_max_s
            ),
            sleep=self._sleep_paused,
            before_sleep=on_retry,
            reraise=True,
        )
        try:
            return retrying(work)
        finally:
            if paused := self.consumer.paused():
                self.consumer.resume(*paused)

    def _sleep_paused(self, seconds: float) -> None:
        """Wait with every partition paused, polling so the group keeps this member."""
        self.consumer.pause(*self.consumer.assignment())
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self._stop.is_set():
                raise ShutdownRequested
            polled = self.consumer.poll(timeout_ms=int(min(remaining, 1.0) * 1000) or 1)
            self._rewind(polled.values())
            self.consumer.pause(*self.consumer.assignment())

    def _rewind(self, polled: Iterable[list[ConsumerRecord]]) -> None:
        """Records from partitions assigned during the pause are not ours to handle yet."""
        for partition_records in polled:
            if partition_records:
                first = partition_records[0]
                self.consumer.seek(TopicPartition(first.topic, first.partition), first.offset)

    def commit(self, records: Iterable[ConsumerRecord]) -> None:
        """Commit past every record given; call only once their results are durable."""
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if tp not in offsets or offsets[tp].offset <= record.offset:
                offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
        if not offsets:
            return
        try:
            self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # The group rebalanced mid-batch: the new owner re-delivers, and writes are idempotent.
            log.warning("offset commit failed, batch will be re-delivered: %s", exc)

    def lag(self) -> dict[TopicPartition, int]:
        """Lag per assigned partition, also exported as `tweetpipe_consumer_lag`."""
        lags = consumer_lag(self.consumer)
        export_lag(self._group, lags)
        return lags
