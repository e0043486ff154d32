"""kafka-streams-service: exactly-once word counts with interactive queries.

Threads in one process: the splitter (tweets → repartition topic), the counter (repartition
topic → local stores → changelog and analytics topic), the directory (who owns what), and the
HTTP server (queries, /health, /metrics). A worker thread that dies stops the process, so a
supervisor restarts it rather than leaving a half-working instance.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kafka import KafkaProducer

from kafka_streams.api import query_router
from kafka_streams.batching import Batcher
from kafka_streams.counter import Counter
from kafka_streams.directory import Directory
from kafka_streams.intents import Intents
from kafka_streams.settings import StreamsSettings
from kafka_streams.splitter import Splitter
from tweetpipe.admin import AdminServer
from tweetpipe.auth import TokenValidator
from tweetpipe.discovery import registered
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.kafka import (
    TopicSpec,
    broker_reachable,
    ensure_topics,
    make_consumer,
    make_producer,
    pipeline_topics,
)
from tweetpipe.lifecycle import StopSignal
from tweetpipe.logs import configure_logging
from tweetpipe.telemetry import start_tracing

SERVICE = "kafka-streams-service"
EUREKA_APP = "KAFKA-STREAMS-SERVICE"
log = logging.getLogger(__name__)
COMPACTED = {"cleanup.policy": "compact"}


def topics(settings: StreamsSettings) -> list[TopicSpec]:
    kafka, partitions = settings.kafka, settings.streams.repartition_partitions
    rf = kafka.replication_factor
    return [
        *pipeline_topics(kafka),
        TopicSpec(kafka.analytics_topic, kafka.partitions, rf),
        TopicSpec(settings.repartition_topic, partitions, rf),
        TopicSpec(settings.changelog_topic, partitions, rf, COMPACTED),
        TopicSpec(settings.instances_topic, 1, rf, COMPACTED),
        TopicSpec(settings.intents_topic, 1, rf, COMPACTED),
    ]


def transactional_producer(settings: StreamsSettings, role: str) -> KafkaProducer:
    """A producer whose unfinished transactions a restarted instance fences and aborts."""
    options = settings.streams
    producer = make_producer(
        settings.kafka,
        client_id=f"{SERVICE}-{role}",
        transactional_id=f"{options.application_id}-{role}-{options.instance_id}",
        transaction_timeout_ms=options.transaction_timeout_ms,
    )
    producer.init_transactions()
    return producer


def run(settings: StreamsSettings, stop: StopSignal | None = None) -> None:
    configure_logging(SERVICE, settings.log_level, settings.log_file)
    start_tracing(SERVICE, settings.tracing)
    stop = stop or StopSignal().install()
    options, kafka = settings.streams, settings.kafka
    ensure_topics(kafka, topics(settings))
    state_dir = options.state_dir / options.instance_id

    directory = Directory(
        kafka.servers, settings.instances_topic, options.instance_id, settings.url, stop
    )
    split_producer = transactional_producer(settings, "split")
    count_producer = transactional_producer(settings, "count")
    wait_s = options.commit_interval_ms / 1000
    intents = Intents(kafka.servers, settings.intents_topic)
    splitter = Splitter(
        lambda listener: make_consumer(
            kafka,
            options.application_id,
            [kafka.tweets_topic],
            client_id=f"{SERVICE}-split",
            listener=listener,
            max_poll_records=options.batch_size,
        ),
        split_producer,
        DeadLetterPublisher(split_producer, kafka.dlq_topic, stage=f"{SERVICE}-split"),
        options.application_id,
        settings.repartition_topic,
        options.repartition_partitions,
        intents,
        options.window_seconds,
        frozenset(w.lower() for w in options.stop_words),
        Batcher(options.batch_size, wait_s),
        stop,
        crash_after_deltas=options.crash_after_deltas,
        limits=settings.tweets,
    )
    counter = Counter(
        lambda listener: make_consumer(
            kafka,
            f"{options.application_id}-counter",
            [settings.repartition_topic],
            client_id=f"{SERVICE}-count",
            listener=listener,
            isolation_level="read_committed",
            max_poll_records=options.batch_size,
        ),
        count_producer,
        DeadLetterPublisher(count_producer, kafka.dlq_topic, stage=f"{SERVICE}-count"),
        kafka,
        (settings.repartition_topic, settings.changelog_topic),
        state_dir,
        options.window_seconds,
        options.emit_interval_s,
        Batcher(options.batch_size, wait_s),
        options.instance_id,
        stop,
        on_ownership=directory.set_owned,
    )

    server = AdminServer(
        SERVICE,
        {"kafka": lambda: broker_reachable(kafka)},
        settings.admin.host,
        settings.admin.port,
        state={"token_validator": TokenValidator(settings.auth.for_audience(SERVICE))},
        routers=[
            query_router(
                counter,
                directory,
                options.repartition_partitions,
                options.window_seconds,
                options.peer_timeout_s,
            )
        ],
    ).start()
    workers = [
        _worker("splitter", splitter.run, stop),
        _worker("counter", counter.run, stop),
        _worker("directory", directory.run, stop),
    ]
    log.info(
        "counting words from %s as %s (%s)", kafka.tweets_topic, options.instance_id, settings.url
    )
    try:
        with registered(settings, EUREKA_APP, server.port, status_path="/docs"):
            while not stop.wait(0.5):
                pass
    finally:
        for worker in workers:
            worker.join(timeout=30)
        splitter.close()
        intents.close()
        counter.close()
        directory.close()
        split_producer.close(timeout=5)
        count_producer.close(timeout=5)
        server.stop()
    failed = [w.name for w in workers if w.failed]
    if failed:
        raise SystemExit(f"worker failed: {', '.join(failed)}")


class _Worker(threading.Thread):
    """A daemon thread that stops the whole instance if its loop raises."""

    def __init__(self, name: str, target: Callable[[], None], stop: StopSignal) -> None:
        super().__init__(name=name, daemon=True)
        self._loop = target
        self._stop_signal = stop
        self.failed = False

    def run(self) -> None:
        try:
            self._loop()
        except Exception:
            log.exception("%s failed; stopping the instance", self.name)
            self.failed = True
            self._stop_signal.set()


def _worker(name: str, target: Callable[[], None], stop: StopSignal) -> _Worker:
    worker = _Worker(name, target, stop)
    worker.start()
    return worker
