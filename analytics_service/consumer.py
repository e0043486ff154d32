"""The storing loop: batch → decode → upsert (one transaction) → dead-letter → commit.

Offsets are committed only after the SQL transaction has committed and the batch's dead
letters are acknowledged, so a crash at any point means re-delivery, never loss; re-delivery
is harmless because the upsert keeps the larger count. While the database is unavailable the
loop retries with backoff, its partitions paused (see `tweetpipe.batch_stage`). A row the
database refuses outright (not an outage: a constraint, a type it cannot hold) is retried
alone, and if refused again its records are dead-lettered, so one bad row neither blocks the
topic nor takes the rest of its batch down with it.
"""

from __future__ import annotations

import logging
import time

from kafka.consumer.fetcher import ConsumerRecord
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from analytics_service import metrics
from analytics_service.decode import DecodedCounts, decode
from analytics_service.repository import UpsertResult, WordCountRepository
from analytics_service.settings import AnalyticsOptions
from tweetpipe.batch_consumer import BatchConsumer
from tweetpipe.batch_stage import BatchStage
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.model import WordCount
from tweetpipe.records import DeadLetter
from tweetpipe.sql import TRANSIENT_ERRORS

log = logging.getLogger(__name__)


def _rejection(error: SQLAlchemyError) -> str:
    """The database's own message, first line only (no SQL, no parameters)."""
    original = error.orig if isinstance(error, DBAPIError) else error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(error).__name__


class AnalyticsConsumer(BatchStage):
    destination = "database"
    retries = metrics.RETRIES
    assigned = metrics.ASSIGNED

    def __init__(
        self,
        *,
        batches: BatchConsumer,
        repository: WordCountRepository,
        dead_letters: DeadLetterPublisher,
        options: AnalyticsOptions,
        hopping_topic: str,
    ) -> None:
        super().__init__(batches=batches, dead_letters=dead_letters, options=options)
        self._repository = repository
        self._hopping_topic = hopping_topic
        self.records = 0
        self.rows = 0

    @property
    def progress(self) -> int:
        return self.records

    def process(self, records: list[ConsumerRecord]) -> None:
        started = time.perf_counter()
        batch = decode(records, self._hopping_topic)
        result, rejected = self._store(batch)
        dead = [*batch.dead, *rejected]
        for letter in dead:
            metrics.DEAD_LETTERS.labels(letter.error).inc()
        self.finish(records, dead)
        self.records += len(records)
        self.rows += result.rows
        metrics.RECORDS.inc(len(records))
        metrics.ROWS_UPSERTED.inc(result.rows)
        metrics.ROWS_CHANGED.inc(result.changed)
        metrics.BATCHES.inc()
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    def _store(self, batch: DecodedCounts) -> tuple[UpsertResult, list[DeadLetter]]:
        try:
            return self._upsert_until_durable(*batch.split()), []
        except SQLAlchemyError as exc:
            log.error(
                "the database refused a batch of %d rows (%s); storing them one by one",
                len(batch.counts),
                _rejection(exc),
            )
        return self._store_one_by_one(batch)

    def _store_one_by_one(self, batch: DecodedCounts) -> tuple[UpsertResult, list[DeadLetter]]:
        rows = changed = 0
        rejected: list[DeadLetter] = []
        for key in batch.counts:
            try:
                result = self._upsert_until_durable(*batch.split([key]))
            except SQLAlchemyError as exc:
                reason = _rejection(exc)
                rejected += [DeadLetter(r, "StoreRejected", reason) for r in batch.records[key]]
            else:
                rows += result.rows
                changed += result.changed
        return UpsertResult(rows=rows, changed=changed), rejected

    def _upsert_until_durable(
        self, counts: list[WordCount], hopping: list[WordCount]
    ) -> UpsertResult:
        if not counts and not hopping:
            return UpsertResult(rows=0, changed=0)
        return self.until_durable(
            lambda: self._repository.upsert(counts, hopping=hopping), TRANSIENT_ERRORS
        )

    def describe_error(self, error: BaseException | None) -> str:
        return _rejection(error) if isinstance(error, SQLAlchemyError) else str(error)

    def report(self, total: int, rate: float) -> None:
        log.info(
            "stored %d records (%.0f/s) as %d row upserts, %d dead-lettered, lag %d",
            total,
            rate,
            self.rows,
            self.dead_lettered,
            self.lag,
            extra={
                "analytics.records": self.records,
                "analytics.rows": self.rows,
                "analytics.dead_lettered": self.dead_lettered,
            },
        )
