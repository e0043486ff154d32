"""twitter-to-kafka: generate mock tweets and publish them to `twitter-topic`."""

from __future__ import annotations

import logging

from tweetpipe.kafka import broker_reachable, ensure_topics, make_producer, pipeline_topics
from tweetpipe.lifecycle import StopSignal
from tweetpipe.runtime import ServiceRuntime
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.publisher import TweetPublisher
from twitter_to_kafka.settings import GeneratorSettings

SERVICE = "twitter-to-kafka"
EUREKA_APP = "TWITTER-TO-KAFKA-SERVICE"
log = logging.getLogger(__name__)


def run(settings: GeneratorSettings, stop: StopSignal | None = None) -> int:
    """Run until the configured count is produced or a stop signal (0), or a failure (1)."""
    with ServiceRuntime(SERVICE, settings, eureka_app=EUREKA_APP, stop=stop) as runtime:
        ensure_topics(settings.kafka, pipeline_topics(settings.kafka))
        producer = make_producer(settings.kafka, client_id=SERVICE)
        runtime.on_close("producer", lambda: producer.close(timeout=30))
        runtime.admin({"kafka": lambda: broker_reachable(settings.kafka)})
        options = settings.generator
        log.info(
            "generating tweets for keywords %s at %s",
            options.keywords,
            f"{options.rate:g}/s" if options.rate else "full speed",
            extra={"generator.count": options.count, "generator.seed": options.seed},
        )
        publisher = TweetPublisher(
            producer, settings.kafka.tweets_topic, options.progress_interval_s
        )
        tweets = TweetGenerator(options).records()
        runtime.worker("publisher", lambda: publisher.run(tweets, options.rate, runtime.stop))
        runtime.wait()
    return runtime.exit_code
