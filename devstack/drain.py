"""Single-machine profile: how far behind the consuming stages are.

Where a stage commits offsets once its output is durable (the sink after the index write, the
word-count split in the transaction that publishes its deltas, analytics after the SQL upsert),
the backlog is measured at the broker: the records between the group's committed offsets and
the end of each partition. The word-count counter keeps its position in its own store, not in
Kafka, so its backlog is the lag it exports (`tweetpipe_consumer_lag` of its group: the fetch
high watermark minus its position, updated every emit interval).

"The end" is the high watermark carried by fetch responses: the local broker answers a
ListOffsets ("latest offset", `end_offsets()`) request wrongly. And on topics written in
transactions the end is not a record count: commit markers take offsets too, so the records
left are counted by reading them (`read_committed`), for partitions where few can be left.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpx
from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, Field

EXACT_UP_TO = 5000
"""A partition further behind than this is reported as end minus committed, not read."""
READ_BUDGET_S = 2.0
"""Longest one measurement reads records (an open transaction can hold the end back)."""


class DrainOptions(BaseModel):
    """How Ctrl-C on `tweetpipe up` waits for the stages to catch up."""

    timeout_s: float = Field(default=120.0, gt=0)
    """Longest it waits before stopping the stages anyway (saying how much is left)."""
    interval_s: float = Field(default=1.0, gt=0)
    settle_checks: int = Field(default=3, ge=1)
    """Consecutive empty measurements needed: the word count publishes its counts a moment
    after it has consumed them, so one empty look at the analytics topic is not enough."""
    progress_interval_s: float = Field(default=5.0, gt=0)


@dataclass(frozen=True)
class Stream:
    """A consumer group reading a topic, as one stage of the pipeline."""

    stage: str
    """What progress lines call it (the service, and which of its consumers)."""
    group: str
    topic: str


@dataclass(frozen=True)
class ExportedLag:
    """A stage whose position is not a committed offset: the lag its group exports, summed
    over partitions."""

    stage: str
    metrics_url: str
    group: str
    metric: str = "tweetpipe_consumer_lag"

    def left(self) -> int | None:
        """None while the stage cannot be asked (starting, restarting) or exports no lag yet."""
        try:
            text = httpx.get(self.metrics_url, timeout=2.0).text
        except httpx.HTTPError:
            return None
        samples = [
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == self.metric
            for sample in family.samples
            if sample.labels.get("group") == self.group
        ]
        return int(sum(samples)) if samples else None


Measured = Stream | ExportedLag


class BacklogMeter:
    """Records not yet processed per stream. Owns one consumer per group (for committed
    offsets, never joining the group) and one reader (for the high watermarks)."""

    def __init__(self, servers: list[str], streams: Iterable[Measured]) -> None:
        self._servers = servers
        self.streams = list(streams)
        self._groups: dict[str, KafkaConsumer] = {}
        self._reader: KafkaConsumer | None = None

    def _group(self, group: str) -> KafkaConsumer:
        if group not in self._groups:
            self._groups[group] = KafkaConsumer(
                bootstrap_servers=self._servers, group_id=group, enable_auto_commit=False
            )
        return self._groups[group]

    def _partitions(self, topic: str) -> list[TopicPartition]:
        reader = self._read()
        found = reader.partitions_for_topic(topic) or set()
        return [TopicPartition(topic, p) for p in sorted(found)]

    def _read(self) -> KafkaConsumer:
        if self._reader is None:
            self._reader = KafkaConsumer(
                bootstrap_servers=self._servers,
                enable_auto_commit=False,
                isolation_level="read_committed",
            )
        return self._reader

    def measure(self) -> dict[str, int | None]:
        """Unprocessed records per stage, right now (None: not known at the moment)."""
        return {
            stream.stage: stream.left()
            if isinstance(stream, ExportedLag)
            else self._backlog(stream)
            for stream in self.streams
        }

    def _backlog(self, stream: Stream) -> int:
        tps = self._partitions(stream.topic)
        if not tps:
            return 0
        committed = {tp: self._group(stream.group).committed(tp) or 0 for tp in tps}
        reader = self._read()
        reader.assign(tps)
        for tp in tps:
            reader.seek(tp, committed[tp])
        left: dict[TopicPartition, int] = dict.fromkeys(tps, 0)
        open_: set[TopicPartition] = set(tps)
        deadline = time.monotonic() + READ_BUDGET_S
        while open_ and time.monotonic() < deadline:
            for tp, records in reader.poll(timeout_ms=200).items():
                left[tp] += len(records)
            for tp in list(open_):
                high = reader.highwater(tp)
                if high is None:
                    continue
                if high - committed[tp] > EXACT_UP_TO:
                    left[tp] = high - committed[tp]  # far behind: the offsets say enough
                    reader.pause(tp)
                    open_.discard(tp)
                elif reader.position(tp) >= high:
                    open_.discard(tp)
        for tp in open_:  # still reading when the budget ran out: count what the offsets say
            high = reader.highwater(tp)
            left[tp] = max(left[tp], (high or committed[tp]) - committed[tp])
        reader.resume(*tps)
        return sum(left.values())

    def close(self) -> None:
        for consumer in [*self._groups.values(), *([self._reader] if self._reader else [])]:
            consumer.close(autocommit=False)
        self._groups.clear()
        self._reader = None
