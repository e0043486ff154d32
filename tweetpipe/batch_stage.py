"""The stages that write batches somewhere durable: the search indexer and the SQL upserter.

Both do the same around their own write: batch → write until durable → dead-letter → commit, in
that order, always; both export lag, log retries and report progress the same way. A subclass
says only how a batch is written (`process`) and what its progress line says (`report`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import ClassVar, TypeVar

from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client import Counter, Gauge
from tenacity import RetryCallState

from tweetpipe.batch_consumer import BatchConsumer
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.progress import Progress
from tweetpipe.records import DeadLetter
from tweetpipe.settings import BatchOptions

log = logging.getLogger(__name__)
T = TypeVar("T")


class BatchStage(ABC):
    """A consuming stage whose batches become durable before their offsets are committed."""

    destination: ClassVar[str]
    """What the stage writes to, as its log lines name it ("search store", "database")."""
    retries: ClassVar[Counter]
    """The stage's own metrics (its dashboards name them): retried writes, ..."""
    assigned: ClassVar[Gauge]
    """... and partitions owned."""

    def __init__(
        self, *, batches: BatchConsumer, dead_letters: DeadLetterPublisher, options: BatchOptions
    ) -> None:
        self._batches = batches
        self._dead_letters = dead_letters
        self.dead_lettered = 0
        self.lag = 0
        self._progress = Progress(options.progress_interval_s, self.report)

    def run(self) -> None:
        """Until stopped; the batch in hand when the signal arrives is finished first."""
        self._batches.run(self.process, self._after_poll)

    @abstractmethod
    def process(self, records: list[ConsumerRecord]) -> None:
        """Write `records` durably, then call `finish` with the ones that could not be."""

    @property
    @abstractmethod
    def progress(self) -> int:
        """The running total the progress line reports a rate of."""

    @abstractmethod
    def report(self, total: int, rate: float) -> None:
        """Log one progress line (every `progress_interval_s` while records flow)."""

    def finish(self, records: Iterable[ConsumerRecord], dead: list[DeadLetter]) -> None:
        """Dead-letter `dead` (acknowledged), then commit past every record of the batch."""
        self._dead_letters.publish_all(dead)
        self.dead_lettered += len(dead)
        self._batches.commit(records)

    def until_durable(self, work: Callable[[], T], transient: tuple[type[BaseException], ...]) -> T:
        """`work()`, retried with consumption paused while it fails with a `transient` error."""
        return self._batches.until_durable(work, transient, self._log_retry)

    def describe_error(self, error: BaseException | None) -> str:
        """How a retry line shows the error; a stage may shorten its driver's messages."""
        return str(error)

    def _after_poll(self) -> None:
        self.lag = sum(self._batches.lag().values())
        self.assigned.set(len(self._batches.consumer.assignment()))
        self._progress.update(self.progress)

    def _log_retry(self, state: RetryCallState) -> None:
        self.retries.inc()
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s unavailable (attempt %d), retrying in %.1fs with consumption paused: %s",
            self.destination,
            state.attempt_number,
            state.upcoming_sleep,
            self.describe_error(error),
            extra={"retry.attempt": state.attempt_number},
        )
