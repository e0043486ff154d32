"""Sub-topology 2: per-word deltas → counts in a local store per owned partition.

Order of work, chosen so a crash at any point neither loses nor double-counts:
1. per batch: publish the batch's dead letters (committed first, so a crash can only send one
   twice, never lose it), then apply the deltas and the next offset in one SQLite transaction
   (the store decides where consumption resumes, not Kafka's committed offsets);
2. per publish interval, in one Kafka transaction per store: the rows changed since the last
   publish to the compacted changelog (`kafka_streams.changelog`: a record per changed all-time
   total and per changed window's bucket of words) with an offset marker, and the changed
   window counts to the analytics topics (tumbling windows on `twitter-analytics-topic`,
   hopping ones on their own topic, so readers keyed by (word, window start) never mix the
   two), with every count of each window that has just become final (the watermark passed its
   end + grace) once more with `final: true`; then the rows are marked clean and emitted (rows
   still flagged after a crash are published again; consumers keep the largest count per
   window, so that is harmless).

Publishing is the counter's dominant cost (a Kafka record per changed (word, window) to the
analytics topics, six windows per word), and it grows with the distinct words of an interval,
not with its tweets: so it happens once per `emit_interval_s` rather than per batch, and while
input keeps coming and rounds are slow it happens less often, so that publishing takes at most
`backlog_publish_share` of the time (`kafka_streams.publish_pacing`).
A partition whose store is missing (new disk, new instance) is rebuilt from the changelog
before it is consumed.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection
from pathlib import Path

import orjson
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.producer.future import FutureRecordMetadata

from kafka_streams import metrics
from kafka_streams.batching import Batcher
from kafka_streams.changelog import (
    OFFSET_MARKER,
    SOURCE_PREFIX,
    TIME_PREFIX,
    WRITER,
    Replay,
    count_records,
)
from kafka_streams.publish_pacing import PublishPacing
from kafka_streams.splitter import decode_delta, input_lag, source_of_key
from kafka_streams.store import PartitionStore
from kafka_streams.updates import UpdateEncoder
from kafka_streams.windows import ALL_TIME, Windows
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.kafka import commit_transaction, consumer_lag, read_to_end
from tweetpipe.lifecycle import StopSignal
from tweetpipe.pipeline_metrics import export_lag
from tweetpipe.records import DeadLetter
from tweetpipe.settings import KafkaSettings

log = logging.getLogger(__name__)


class Counter(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python is untyped
    def __init__(
        self,
        *,
        connect: Callable[[ConsumerRebalanceListener], KafkaConsumer],
        producer: KafkaProducer,
        dead_letters: DeadLetterPublisher,
        kafka: KafkaSettings,
        topics: tuple[str, str],
        state_dir: Path,
        windows: Windows,
        emit_interval_s: float,
        backlog_publish_share: float,
        changelog_buckets: int,
        batcher: Batcher,
        instance_id: str,
        stop: StopSignal,
        on_ownership: Callable[[frozenset[int]], None],
    ) -> None:
        self._batcher = batcher
        self._instance_id = instance_id
        self._consumer = connect(self)
        self._group = str(self._consumer.config["group_id"])
        self._producer = producer
        self._dead_letters = dead_letters
        self._kafka = kafka
        self._repartition_topic, self._changelog_topic = topics
        self._state_dir = state_dir
        self.windows = windows
        self._changelog_buckets = changelog_buckets
        self._pacing = PublishPacing(
            emit_interval_s=emit_interval_s, publish_share=backlog_publish_share
        )
        self._stop = stop
        self._on_ownership = on_ownership
        self.stores: dict[int, PartitionStore] = {}
        self._unpublished: set[int] = set()
        """Partitions whose store moved (offset, sources, times) since their last publish."""
        self._upstream: dict[int, tuple[tuple[int, int], int | None]] = {}
        """Input partition → (source position, input lag) of the newest delta read from it."""

    # -- ownership ---------------------------------------------------------------------------

    def store_path(self, partition: int) -> Path:
        return self._state_dir / f"partition-{partition}.sqlite"

    def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        """Apply and publish what is pending first: the next owner restores from the changelog."""
        self._apply_batch(self._batcher.take())
        self._publish_all()
        for tp in revoked:
            store = self.stores.pop(tp.partition, None)
            self._unpublished.discard(tp.partition)
            if store:
                store.close()
        self._owned_changed()
        log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        for tp in assigned:
            path = self.store_path(tp.partition)
            store = PartitionStore(path)
            if store.offset is not None:
                store = self._reconcile(tp.partition, store)
            if store.offset is None:
                self._restore(tp.partition, store)
            if store.offset is not None:  # what a crash may have left unpublished
                self._unpublished.add(tp.partition)
                self._publish(tp.partition, store)
            self.stores[tp.partition] = store
            self._consumer.seek(tp, store.offset or 0)
        self._owned_changed()
        log.info("partitions assigned: %s", sorted(tp.partition for tp in assigned))

    def _owned_changed(self) -> None:
        owned = frozenset(self.stores)
        metrics.OWNED.set(len(owned))
        self._on_ownership(owned)

    def _reconcile(self, partition: int, store: PartitionStore) -> PartitionStore:
        """The local store as the broker's topics now stand.

        The changelog ends before this store's last write: the topics are newer than the store
        (the local broker keeps topics in memory and restarted empty, or they were recreated),
        and the store's repartition offset points past data that no longer exists. Its counts
        are kept and published to the new changelog, and counting starts at the new topic's
        beginning. Another instance wrote the changelog after this store did: it counted past
        the local state, which is stale and is rebuilt from the changelog.
        """
        foreign = False

        def check(record: ConsumerRecord) -> None:
            nonlocal foreign
            writer = dict(record.headers or []).get(WRITER)
            foreign = foreign or writer != self._instance_id.encode()

        end = self._read_changelog(partition, store.changelog_next, check)
        if end < store.changelog_next:
            log.warning(
                "partition %d: the changelog ends at %d, before this store's last write at %d: "
                "the broker's topics are newer than the store (restarted empty, or recreated). "
                "Keeping its %d counts, publishing them to the new changelog, and counting the "
                "repartition topic from its start instead of offset %d",
                partition,
                end,
                store.changelog_next,
                store.size(),
                store.offset,
                extra={"kafka.partition": partition},
            )
            metrics.REBASED.inc()
            store.rebase()
        elif foreign:
            log.info("partition %d moved on elsewhere; discarding local state", partition)
            store.close()
            store.path.unlink()
            store = PartitionStore(store.path)
        return store

    def _read_changelog(
        self, partition: int, start: int, handle: Callable[[ConsumerRecord], None]
    ) -> int:
        """Feed every changelog record from `start` on; returns the end offset."""
        tp = TopicPartition(self._changelog_topic, partition)
        return read_to_end(self._kafka.servers, tp, handle, start)

    def _restore(self, partition: int, store: PartitionStore) -> None:
        """Rebuild a partition's store from its changelog (committed transactions only)."""
        started = time.monotonic()
        replay = Replay()

        def add(record: ConsumerRecord) -> None:
            metrics.RESTORED.inc()
            replay.add(record)

        end = self._read_changelog(partition, 0, add)
        store.restore(replay.rows(), replay.next_offset, end, replay.sources, replay.times)
        log.info(
            "restored partition %d from the changelog: %d counts, resuming at offset %d (%.1fs)",
            partition,
            len(replay.counts),
            replay.next_offset,
            time.monotonic() - started,
        )

    # -- processing --------------------------------------------------------------------------

    def run(self) -> None:
        while not self._stop.is_set():
            polled = self._consumer.poll(timeout_ms=100)
            if polled:
                self._pacing.input_arrived()
                self._note_upstream(polled)
            self._batcher.add(polled)
            if self._batcher.due():
                self._apply_batch(self._batcher.take())
            caught_up = self._caught_up()
            metrics.CAUGHT_UP.set(caught_up)
            if self._pacing.due(caught_up=caught_up, pending=self._pending):
                self._publish_all()
                self._export_metrics()
        self._apply_batch(self._batcher.take())
        self._publish_all()

    def _note_upstream(self, polled: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """How far behind its input the split stage was, per input partition, as the newest
        delta from it says (deltas of one batch reach several partitions, in any order)."""
        for records in polled.values():
            for record in records:
                source = source_of_key(record.key)
                if source is None:
                    continue  # not a splitter's: its value is judged when applied
                known = self._upstream.get(source.partition)
                if known is None or source.position >= known[0]:
                    self._upstream[source.partition] = (source.position, input_lag(record))

    def _caught_up(self) -> bool:
        """The split stage had read all its input (by the newest delta from each input
        partition) and this counter has read every delta, and applied them."""
        if not self._upstream or len(self._batcher):
            return False
        if any(lag != 0 for _, lag in self._upstream.values()):
            return False
        lag = consumer_lag(self._consumer)
        return len(lag) == len(self.stores) > 0 and not any(lag.values())

    def _pending(self) -> int:
        return sum(
            store.pending_emit_count(exclude_window=ALL_TIME) for store in self.stores.values()
        )

    def _apply_batch(self, records: list[ConsumerRecord]) -> None:
        by_partition: dict[int, list[ConsumerRecord]] = defaultdict(list)
        for record in records:
            by_partition[record.partition].append(record)
        for partition, partition_records in by_partition.items():
            store = self.stores.get(partition)
            if store is None:
                continue  # no longer ours: the new owner reads these again
            # A record before the store's offset is already counted (re-fetched after a seek).
            fresh = [r for r in partition_records if r.offset >= (store.offset or 0)]
            if fresh:
                self._apply(partition, store, fresh)

    def _apply(self, partition: int, store: PartitionStore, records: list[ConsumerRecord]) -> None:
        """Add each source's deltas once: a replayed range repeats sources already applied."""
        totals: dict[tuple[str, int], int] = defaultdict(int)
        positions = store.sources()
        times: dict[int, int] = {}
        dead: list[DeadLetter] = []
        for record in records:
            try:
                source, deltas, stream_time = decode_delta(record.value)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
                dead.append(DeadLetter(record, "MalformedDelta", f"{type(exc).__name__}: {exc}"))
                continue
            if source.position <= positions.get(source.partition, (-1, -1)):
                metrics.DUPLICATES.inc()
                continue
            positions[source.partition] = source.position
            times[source.partition] = max(times.get(source.partition, 0), stream_time)
            for word, per_window in deltas.items():
                for window, count in per_window.items():
                    totals[(word, window)] += count
        if dead:  # before the store moves past them: a crash in between sends them again
            self._producer.begin_transaction()
            for letter in dead:
                self._dead_letters.publish(letter.record, letter.error, letter.reason)
            commit_transaction(self._producer)
        store.apply(
            ((w, win, c) for (w, win), c in totals.items()),
            records[-1].offset + 1,
            positions,
            times,
        )
        self._unpublished.add(partition)
        metrics.UNPUBLISHED.set(len(self._unpublished))

    def _publish_all(self) -> None:
        """Publish every store; its duration decides when the next round is due."""
        started = self._pacing.now()
        sent = sum(self._publish(partition, store) for partition, store in self.stores.items())
        self._pacing.published(started, records=sent)
        metrics.UNPUBLISHED.set(len(self._unpublished))

    def _publish(self, partition: int, store: PartitionStore) -> int:
        """One Kafka transaction (the producer is transactional: nothing is sent outside one):
        the store's changed rows, sources, stream times and offset to the changelog; its changed
        window counts, and the counts of windows that became final, to the analytics topics.
        Returns how many analytics records it sent."""
        changed = store.dirty()
        watermark, finalised = store.watermark, store.finalised_through
        emits = store.pending_emits(exclude_window=ALL_TIME)
        newly_final: list[tuple[str, int, int]] = []
        if watermark > finalised:
            for low, high in self.windows.final_key_ranges(finalised, watermark):
                newly_final += store.windows_between(low, high)
        if not (changed or emits or newly_final or partition in self._unpublished):
            if watermark > finalised:
                store.set_finalised_through(watermark)
            return 0
        self._producer.begin_transaction()
        marker = self._send_changelog(partition, store, changed)
        updates = UpdateEncoder(
            self.windows,
            watermark,
            tumbling_topic=self._analytics_topic,
            hopping_topic=self._kafka.analytics_hopping_topic,
        )
        for word, window, count in (*emits, *newly_final):
            topic, value = updates.encode(word, window, count)
            self._producer.send(topic, key=word.encode(), value=value)
        commit_transaction(self._producer)
        store.mark_clean(changed, changelog_next=marker.get(timeout=30).offset + 1)
        store.mark_emitted(emits)
        store.set_finalised_through(watermark)
        self._unpublished.discard(partition)
        sent = len(emits) + len(newly_final)
        metrics.EMITTED.inc(sent)
        metrics.WINDOWS_FINALISED.inc(len(newly_final))
        return sent

    def _send_changelog(
        self, partition: int, store: PartitionStore, rows: list[tuple[str, int, int]]
    ) -> FutureRecordMetadata:
        """The counts, then the sources, stream times and the offset marker (whose future says
        where this store's writes to the changelog end)."""
        # A new headers list per record: the Kafka tracing instrumentation appends its
        # traceparent to the list it is given, so a shared one grows with every send.
        writer = (WRITER, self._instance_id.encode())
        topic = self._changelog_topic
        for key, value in count_records(store, rows, self._changelog_buckets):
            self._producer.send(topic, key=key, value=value, partition=partition, headers=[writer])
        for source_partition, (last, chunk) in store.sources().items():
            self._producer.send(
                topic,
                key=SOURCE_PREFIX + str(source_partition).encode(),
                value=f"{last},{chunk}".encode(),
                partition=partition,
                headers=[writer],
            )
        for source_partition, stream_time in store.stream_times().items():
            self._producer.send(
                topic,
                key=TIME_PREFIX + str(source_partition).encode(),
                value=str(stream_time).encode(),
                partition=partition,
                headers=[writer],
            )
        return self._producer.send(
            topic,
            key=OFFSET_MARKER,
            value=str(store.offset or 0).encode(),
            partition=partition,
            headers=[writer],
        )

    @property
    def _analytics_topic(self) -> str:
        return self._kafka.analytics_topic

    def _export_metrics(self) -> None:
        for partition, store in self.stores.items():
            metrics.STATE_ROWS.labels(str(partition)).set(store.size())
        export_lag(self._group, consumer_lag(self._consumer))

    def close(self) -> None:
        """After `run` returns: leave the group, then close the stores."""
        self._consumer.close(autocommit=False, timeout_ms=5000)
        for store in self.stores.values():
            store.close()
        self.stores.clear()
