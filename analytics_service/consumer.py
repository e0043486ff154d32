"""The storing loop: batch → decode → upsert (one transaction) → dead-letter → commit.

Offsets are committed only after the SQL transaction has committed and the batch's dead
letters are acknowledged, so a crash at any point means re-delivery, never loss; re-delivery
is harmless because the upsert keeps the larger count. While the database is unavailable the
loop retries with backoff, its partitions paused (see `tweetpipe.batch_consumer`). A row the
database refuses outright (not an outage: a constraint, a type it cannot hold) is retried
alone, and if refused again its records are dead-lettered, so one bad row neither blocks the
topic nor takes the rest of its batch down with it.
"""

from __future__ import annotations

import logging
import time

from kafka.consumer.fetcher import ConsumerRecord
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from tenacity import RetryCallState

from analytics_service import metrics
from analytics_service.decode import DecodedCounts, decode
from analytics_service.repository import UpsertResult, WordCountRepository
from analytics_service.settings import AnalyticsOptions
from tweetpipe.batch_consumer import BatchConsumer
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.lifecycle import StopSignal
from tweetpipe.model import WordCount
from tweetpipe.progress import Progress
from tweetpipe.records import DeadLetter
from tweetpipe.sql import TRANSIENT_ERRORS

log = logging.getLogger(__name__)


def _rejection(error: SQLAlchemyError) -> str:
    """The database's own message, first line only (no SQL, no parameters)."""
    original = error.orig if isinstance(error, DBAPIError) else error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(error).__name__


class AnalyticsConsumer:
    def __init__(
        self,
        batches: BatchConsumer,
        repository: WordCountRepository,
        dead_letters: DeadLetterPublisher,
        options: AnalyticsOptions,
        stop: StopSignal,
    ) -> None:
        self._batches = batches
        self._repository = repository
        self._dead_letters = dead_letters
        self._options = options
        self._stop = stop
        self.records = 0
        self.rows = 0
        self.dead_lettered = 0
        self._lag = 0
        self._progress = Progress(options.progress_interval_s, self._report)

    def run(self) -> None:
        """Until stopped; the batch in hand when the signal arrives is finished first."""
        self._batches.run(self.process, self._after_poll)

    def _after_poll(self) -> None:
        self._lag = self._export_lag()
        self._progress.update(self.records)

    def process(self, records: list[ConsumerRecord]) -> None:
        started = time.perf_counter()
        batch = decode(records)
        result, rejected = self._store(batch)
        dead = [*batch.dead, *rejected]
        self._dead_letters.publish_all(dead)
        for letter in dead:
            metrics.DEAD_LETTERS.labels(letter.error).inc()
        self._batches.commit(records)
        self.records += len(records)
        self.rows += result.rows
        self.dead_lettered += len(dead)
        metrics.RECORDS.inc(len(records))
        metrics.ROWS_UPSERTED.inc(result.rows)
        metrics.ROWS_CHANGED.inc(result.changed)
        metrics.BATCHES.inc()
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)

    def _store(self, batch: DecodedCounts) -> tuple[UpsertResult, list[DeadLetter]]:
        try:
            return self._upsert_until_durable(list(batch.counts.values())), []
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
        for key, count in batch.counts.items():
            try:
                result = self._upsert_until_durable([count])
            except SQLAlchemyError as exc:
                reason = _rejection(exc)
                rejected += [DeadLetter(r, "StoreRejected", reason) for r in batch.records[key]]
            else:
                rows += result.rows
                changed += result.changed
        return UpsertResult(rows=rows, changed=changed), rejected

    def _upsert_until_durable(self, counts: list[WordCount]) -> UpsertResult:
        if not counts:
            return UpsertResult(rows=0, changed=0)
        return self._batches.until_durable(
            lambda: self._repository.upsert(counts), TRANSIENT_ERRORS, self._log_retry
        )

    def _log_retry(self, state: RetryCallState) -> None:
        metrics.RETRIES.inc()
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "database unavailable (attempt %d), retrying in %.1fs with consumption paused: %s",
            state.attempt_number,
            state.upcoming_sleep,
            _rejection(error) if isinstance(error, SQLAlchemyError) else error,
            extra={"retry.attempt": state.attempt_number},
        )

    def _export_lag(self) -> int:
        lags = self._batches.lag()
        metrics.ASSIGNED.set(len(self._batches.consumer.assignment()))
        for tp, lag in lags.items():
            metrics.LAG.labels(tp.topic, str(tp.partition)).set(lag)
        return sum(lags.values())

    def _report(self, total: int, rate: float) -> None:
        log.info(
            "stored %d records (%.0f/s) as %d row upserts, %d dead-lettered, lag %d",
            total,
            rate,
            self.rows,
            self.dead_lettered,
            self._lag,
            extra={
                "analytics.records": self.records,
                "analytics.rows": self.rows,
                "analytics.dead_lettered": self.dead_lettered,
            },
        )
