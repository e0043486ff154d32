"""The split stage in its own process (`tweetpipe.stage_process` says why): the splitter, its
transactional producer and the intents, built from the service's settings in the child."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge

from kafka_streams import metrics
from kafka_streams.intents import Intents
from kafka_streams.settings import SERVICE, StreamsSettings
from kafka_streams.splitter import Splitter
from kafka_streams.transactions import transactional_producer
from tweetpipe.dlq import DEAD_LETTERED, TRUNCATED, DeadLetterPublisher
from tweetpipe.kafka import make_consumer
from tweetpipe.pipeline_metrics import CONSUMER_LAG, RECORDS_CONSUMED
from tweetpipe.runtime import ServiceRuntime
from tweetpipe.stage_process import StageLink


def relayed_metrics() -> Sequence[Counter | Gauge]:
    """Everything the splitter counts, reported on the service's `/metrics`."""
    return [
        metrics.TWEETS,
        metrics.DELTAS,
        metrics.LATE_TWEETS,
        RECORDS_CONSUMED,
        CONSUMER_LAG,
        DEAD_LETTERED,
        TRUNCATED,
    ]


def main(settings: StreamsSettings, link: StageLink) -> int:
    """Split until the service stops this process (0), or the splitter fails (1)."""
    options, kafka = settings.streams, settings.kafka
    with ServiceRuntime(SERVICE, settings, stop=link.stop) as runtime:
        runtime.on_close("metric relay", link.start().close)  # closed last: the final values
        producer = transactional_producer(settings, "split")
        runtime.on_close("split producer", lambda: producer.close(timeout=5))
        intents = Intents(kafka.servers, settings.intents_topic)
        runtime.on_close("intents", intents.close)
        splitter = Splitter(
            connect=lambda listener: make_consumer(
                kafka,
                options.application_id,
                [kafka.tweets_topic],
                client_id=f"{SERVICE}-split",
                listener=listener,
                max_poll_records=options.batch_size,
            ),
            producer=producer,
            dead_letters=DeadLetterPublisher(producer, kafka.dlq_topic, stage=f"{SERVICE}-split"),
            group_id=options.application_id,
            repartition_topic=settings.repartition_topic,
            repartition_partitions=options.repartition_partitions,
            intents=intents,
            windows=options.windows,
            stop_words=frozenset(w.lower() for w in options.stop_words),
            batcher=options.batcher(),
            stop=runtime.stop,
            transaction_attempts=options.transaction_attempts,
            crash_after_deltas=options.crash_after_deltas,
            limits=settings.tweets,
        )
        runtime.on_close("splitter", splitter.close)
        runtime.worker("splitter", splitter.run)
        runtime.wait()
    return runtime.exit_code
