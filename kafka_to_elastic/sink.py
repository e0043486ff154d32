"""The indexing loop: batch → index → dead-letter → commit, in that order, always.

Offsets are committed only once the batch is durable in the store and its dead letters are
acknowledged, so a crash at any point means re-delivery (harmless: `_id` = tweet id), never loss.
While the store is down the loop pauses its partitions and keeps polling (to stay in the group)
instead of committing or dropping anything (`tweetpipe.batch_stage`).
"""

from __future__ import annotations

import logging
import time

from kafka.consumer.fetcher import ConsumerRecord

from kafka_to_elastic import metrics
from kafka_to_elastic.settings import SinkOptions
from tweetpipe.batch_consumer import BatchConsumer
from tweetpipe.batch_stage import BatchStage
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.records import DeadLetter, decode_documents
from tweetpipe.search import BulkResult, IndexedTweet, SearchStore, StoreUnavailable
from tweetpipe.settings import TweetLimits
from tweetpipe.tracing import traced_batch

log = logging.getLogger(__name__)


class Sink(BatchStage):
    destination = "search store"
    retries = metrics.RETRIES
    assigned = metrics.ASSIGNED

    def __init__(
        self,
        *,
        batches: BatchConsumer,
        store: SearchStore,
        dead_letters: DeadLetterPublisher,
        options: SinkOptions,
        limits: TweetLimits | None = None,
    ) -> None:
        """`limits`: what a tweet may be (the `tweets` settings; their defaults unless given)."""
        self._limits = limits
        super().__init__(batches=batches, dead_letters=dead_letters, options=options)
        self._store = store
        self.indexed = 0

    @property
    def progress(self) -> int:
        return self.indexed

    def process(self, records: list[ConsumerRecord]) -> None:
        started = time.perf_counter()
        batch = decode_documents(records, self._limits)
        with traced_batch("index tweet", batch.span_attributes):
            result = self._index_until_durable([tweet for tweet, _ in batch.tweets.values()])
            dead = list(batch.dead)
            for rejection in result.rejected:
                _, record = batch.tweets[rejection.tweet_id]
                dead.append(DeadLetter(record, "StoreRejected", rejection.reason))
            self.finish(records, dead)
        self.indexed += result.indexed
        metrics.INDEXED.inc(result.indexed)
        metrics.BATCH_SIZE.observe(len(records))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    def _index_until_durable(self, tweets: list[IndexedTweet]) -> BulkResult:
        if not tweets:
            return BulkResult(indexed=0)
        return self.until_durable(lambda: self._store.bulk_upsert(tweets), (StoreUnavailable,))

    def report(self, total: int, rate: float) -> None:
        log.info(
            "indexed %d tweets (%.0f/s), %d dead-lettered, lag %d",
            total,
            rate,
            self.dead_lettered,
            self.lag,
            extra={"tweets.indexed": self.indexed, "tweets.dead_lettered": self.dead_lettered},
        )
