"""kafka-to-elastic: index `twitter-topic` into the search store, dead-lettering bad records."""

from __future__ import annotations

import logging

from kafka_to_elastic.settings import SinkSettings
from kafka_to_elastic.sink import Sink
from tweetpipe.batch_consumer import BatchConsumer
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.kafka import (
    broker_reachable,
    ensure_topics,
    make_consumer,
    make_producer,
    pipeline_topics,
)
from tweetpipe.lifecycle import StopSignal
from tweetpipe.runtime import ServiceRuntime
from tweetpipe.search import open_store

SERVICE = "kafka-to-elastic"
EUREKA_APP = "KAFKA-TO-ELASTIC-SERVICE"
log = logging.getLogger(__name__)


def run(settings: SinkSettings, stop: StopSignal | None = None) -> int:
    """Index until SIGTERM/SIGINT (0) or a failure of the indexing loop (1)."""
    kafka = settings.kafka
    with ServiceRuntime(SERVICE, settings, eureka_app=EUREKA_APP, stop=stop) as runtime:
        ensure_topics(kafka, pipeline_topics(kafka))
        store = open_store(settings.search, writer=True)
        runtime.on_close("search store", store.close)
        store.ensure_ready()
        consumer = make_consumer(
            kafka,
            settings.sink.group_id,
            [kafka.tweets_topic],
            client_id=SERVICE,
            max_poll_records=settings.sink.batch_size,
        )
        runtime.on_close("consumer", lambda: consumer.close(autocommit=False, timeout_ms=5000))
        producer = make_producer(kafka, client_id=f"{SERVICE}-dlq", linger_ms=0)
        runtime.on_close("dead-letter producer", lambda: producer.close(timeout=5))
        runtime.admin({"kafka": lambda: broker_reachable(kafka), "search": store.ping})
        sink = Sink(
            batches=BatchConsumer(consumer, settings.sink, runtime.stop),
            store=store,
            dead_letters=DeadLetterPublisher(producer, kafka.dlq_topic, stage=SERVICE),
            options=settings.sink,
            limits=settings.tweets,
        )
        log.info(
            "indexing %s into %s (%s) as group %s",
            kafka.tweets_topic,
            settings.search.index,
            settings.search.backend,
            settings.sink.group_id,
        )
        runtime.worker("indexer", sink.run)
        runtime.wait()
    log.info("stopped after indexing %d tweets, %d dead-lettered", sink.indexed, sink.dead_lettered)
    return runtime.exit_code
