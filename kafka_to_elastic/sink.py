"""The indexing loop: batch → index → dead-letter → commit, in that order, always.

Offsets are committed only once the batch is durable in the store and its dead letters are
acknowledged, so a crash at any point means re-delivery (harmless: `_id` = tweet id), never loss.
While the store is down the loop pauses its partitions and keeps polling (to stay in the group)
instead of committing or dropping anything.
"""

from __future__ import annotations

import logging
import time

from kafka.consumer.fetcher import ConsumerRecord
from tenacity import RetryCallState

from kafka_to_elastic import metrics
from kafka_to_elastic.settings import SinkOptions
from tweetpipe.batch_consumer import BatchConsumer
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.lifecycle import StopSignal
from tweetpipe.model import Tweet
from tweetpipe.progress import Progress
from tweetpipe.records import DeadLetter, decode
from tweetpipe.search import BulkResult, SearchStore, StoreUnavailable
from tweetpipe.settings import TweetLimits
from tweetpipe.tracing import traced_batch

log = logging.getLogger(__name__)


class Sink:
    def __init__(
        self,
        batches: BatchConsumer,
        store: SearchStore,
        dead_letters: DeadLetterPublisher,
        options: SinkOptions,
        stop: StopSignal,
        limits: TweetLimits | None = None,
    ) -> None:
        self._limits = limits
        self._batches = batches
        self._store = store
        self._dead_letters = dead_letters
        self._options = options
        self._stop = stop
        self.indexed = 0
        self.dead_lettered = 0
        self._lag = 0
        self._progress = Progress(options.progress_interval_s, self._report)

    def run(self) -> None:
        """Until stopped; the batch in hand when the signal arrives is finished first."""
        self._batches.run(self.process, self._after_poll)

    def _after_poll(self) -> None:
        self._lag = self._export_lag()
        self._progress.update(self.indexed)

    def process(self, records: list[ConsumerRecord]) -> None:
        started = time.perf_counter()
        batch = decode(records, self._limits)
        with traced_batch("index tweet", batch.span_attributes):
            result = self._index_until_durable([tweet for tweet, _ in batch.tweets.values()])
            dead = list(batch.dead)
            for rejection in result.rejected:
                _, record = batch.tweets[rejection.tweet_id]
                dead.append(DeadLetter(record, "StoreRejected", rejection.reason))
            self._dead_letters.publish_all(dead)
            self._batches.commit(records)
        self.indexed += result.indexed
        self.dead_lettered += len(dead)
        metrics.INDEXED.inc(result.indexed)
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    def _index_until_durable(self, tweets: list[Tweet]) -> BulkResult:
        if not tweets:
            return BulkResult(indexed=0)
        return self._batches.until_durable(
            lambda: self._store.bulk_upsert(tweets), (StoreUnavailable,), self._log_retry
        )

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

    def _export_lag(self) -> int:
        group = self._options.group_id
        lags = self._batches.lag()
        metrics.ASSIGNED.set(len(self._batches.consumer.assignment()))
        for tp, lag in lags.items():
            metrics.LAG.labels(group, tp.topic, str(tp.partition)).set(lag)
        return sum(lags.values())

    def _report(self, total: int, rate: float) -> None:
        log.info(
            "indexed %d tweets (%.0f/s), %d dead-lettered, lag %d",
            total,
            rate,
            self.dead_lettered,
            self._lag,
            extra={"tweets.indexed": self.indexed, "tweets.dead_lettered": self.dead_lettered},
        )
