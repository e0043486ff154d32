"""kafka-to-elastic: index `twitter-topic` into the search store, dead-lettering bad records."""

from __future__ import annotations

import logging

from kafka_to_elastic.settings import SinkSettings
from kafka_to_elastic.sink import Sink
from tweetpipe.admin import AdminServer
from tweetpipe.batch_consumer import BatchConsumer
from tweetpipe.discovery import registered
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.kafka import (
    broker_reachable,
    ensure_topics,
    make_consumer,
    make_producer,
    pipeline_topics,
)
from tweetpipe.lifecycle import StopSignal
from tweetpipe.logs import configure_logging
from tweetpipe.search import open_store
from tweetpipe.telemetry import start_tracing

SERVICE = "kafka-to-elastic"
EUREKA_APP = "KAFKA-TO-ELASTIC-SERVICE"
log = logging.getLogger(__name__)


def run(settings: SinkSettings, stop: StopSignal | None = None) -> None:
    configure_logging(SERVICE, settings.log_level, settings.log_file)
    start_tracing(SERVICE, settings.tracing)
    stop = stop or StopSignal().install()
    kafka = settings.kafka
    ensure_topics(kafka, pipeline_topics(kafka))
    store = open_store(settings.search, writer=True)
    store.ensure_ready()
    consumer = make_consumer(
        kafka,
        settings.sink.group_id,
        [kafka.tweets_topic],
        client_id=SERVICE,
        max_poll_records=settings.sink.batch_size,
    )
    producer = make_producer(kafka, client_id=f"{SERVICE}-dlq", linger_ms=0)
    admin = AdminServer(
        SERVICE,
        {"kafka": lambda: broker_reachable(kafka), "search": store.ping},
        settings.admin.host,
        settings.admin.port,
    ).start()
    log.info(
        "indexing %s into %s (%s) as group %s",
        kafka.tweets_topic,
        settings.search.index,
        settings.search.backend,
        settings.sink.group_id,
    )
    sink = Sink(
        BatchConsumer(consumer, settings.sink, stop),
        store,
        DeadLetterPublisher(producer, kafka.dlq_topic, stage=SERVICE),
        settings.sink,
        stop,
        limits=settings.tweets,
    )
    try:
        with registered(settings, EUREKA_APP, admin.port):
            sink.run()
    finally:
        consumer.close(autocommit=False, timeout_ms=5000)
        producer.close(timeout=5)
        store.close()
        admin.stop()
        log.info(
            "stopped after indexing %d tweets, %d dead-lettered", sink.indexed, sink.dead_lettered
        )
