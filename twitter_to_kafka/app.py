"""twitter-to-kafka: generate mock tweets and publish them to `twitter-topic`."""

from __future__ import annotations

import logging

from tweetpipe.admin import AdminServer
from tweetpipe.discovery import registered
from tweetpipe.kafka import broker_reachable, ensure_topics, make_producer, pipeline_topics
from tweetpipe.lifecycle import StopSignal
from tweetpipe.logs import configure_logging
from tweetpipe.telemetry import start_tracing
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.publisher import TweetPublisher
from twitter_to_kafka.settings import GeneratorSettings

SERVICE = "twitter-to-kafka"
EUREKA_APP = "TWITTER-TO-KAFKA-SERVICE"
log = logging.getLogger(__name__)


def run(settings: GeneratorSettings, stop: StopSignal | None = None) -> int:
    """Run until the configured count is produced or a stop signal; returns tweets produced."""
    configure_logging(SERVICE, settings.log_level, settings.log_file)
    start_tracing(SERVICE, settings.tracing)
    stop = stop or StopSignal().install()
    ensure_topics(settings.kafka, pipeline_topics(settings.kafka))
    producer = make_producer(settings.kafka, client_id=SERVICE)
    admin = AdminServer(
        SERVICE,
        {"kafka": lambda: broker_reachable(settings.kafka)},
        settings.admin.host,
        settings.admin.port,
    ).start()
    options = settings.generator
    log.info(
        "generating tweets for keywords %s at %s",
        options.keywords,
        f"{options.rate:g}/s" if options.rate else "full speed",
        extra={"generator.count": options.count, "generator.seed": options.seed},
    )
    try:
        publisher = TweetPublisher(
            producer, settings.kafka.tweets_topic, options.progress_interval_s
        )
        with registered(settings, EUREKA_APP, admin.port):
            return publisher.run(TweetGenerator(options), options.rate, stop)
    finally:
        producer.close(timeout=30)
        admin.stop()
