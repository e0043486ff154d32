"""twitter-to-kafka: generate mock tweets and publish them to `twitter-topic`."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from tweetpipe.kafka import broker_reachable, ensure_topics, make_producer, pipeline_topics
from tweetpipe.lifecycle import StopSignal
from tweetpipe.runtime import ServiceRuntime
from twitter_to_kafka.ahead import TweetsAhead
from twitter_to_kafka.generator import TweetGenerator, TweetRecord
from twitter_to_kafka.publisher import TweetPublisher
from twitter_to_kafka.settings import GeneratorOptions, GeneratorSettings

SERVICE = "twitter-to-kafka"
EUREKA_APP = "TWITTER-TO-KAFKA-SERVICE"
log = logging.getLogger(__name__)


def run(settings: GeneratorSettings, stop: StopSignal | None = None) -> int:
    """Run until the configured count is produced or a stop signal (0), or a failure (1)."""
    with ServiceRuntime(SERVICE, settings, eureka_app=EUREKA_APP, stop=stop) as runtime:
        options = settings.generator
        tweets = _tweets(options, runtime)
        ensure_topics(settings.kafka, pipeline_topics(settings.kafka))
        producer = make_producer(settings.kafka, client_id=SERVICE)
        runtime.on_close("producer", lambda: producer.close(timeout=30))
        runtime.admin({"kafka": lambda: broker_reachable(settings.kafka)})
        log.info(
            "generating tweets for keywords %s at %s",
            options.keywords,
            f"{options.rate:g}/s" if options.rate else "full speed",
            extra={"generator.count": options.count, "generator.seed": options.seed},
        )
        publisher = TweetPublisher(
            producer, settings.kafka.tweets_topic, options.progress_interval_s
        )
        runtime.worker("publisher", lambda: publisher.run(tweets, options.rate, runtime.stop))
        runtime.wait()
    return runtime.exit_code


def _tweets(options: GeneratorOptions, runtime: ServiceRuntime) -> Iterable[TweetRecord]:
    """Paced, each tweet is made when it is due. At full speed they are made in a second
    process, a batch ahead, so that both cores work (`twitter_to_kafka.ahead`); started before
    anything else, its interpreter and sentence pools are built while this process connects."""
    if options.rate:
        return TweetGenerator(options).records()
    ahead = TweetsAhead(options).start()
    runtime.on_close("tweet maker", ahead.close)
    return ahead
