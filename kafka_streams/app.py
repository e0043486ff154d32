"""kafka-streams-service: exactly-once word counts with interactive queries.

Two processes, one service: the split stage (tweets → repartition topic, `split_stage`) runs in
a process of its own so that it and the counter each have a core's GIL; this process runs the
counter (repartition topic → local stores → changelog and analytics topics), the directory (who
owns what) and the HTTP server (queries, /health, /metrics, the split stage's metrics
included). A worker that ends, the split process among them, stops the service
(`tweetpipe.runtime`), so a supervisor restarts it rather than leaving a half-working instance.
"""

from __future__ import annotations

import logging

from kafka_streams import split_stage
from kafka_streams.api import query_router
from kafka_streams.counter import Counter
from kafka_streams.directory import Directory
from kafka_streams.settings import SERVICE, StreamsSettings
from kafka_streams.transactions import transactional_producer
from tweetpipe.auth import TokenValidator
from tweetpipe.dlq import DeadLetterPublisher
from tweetpipe.kafka import (
    TopicSpec,
    broker_reachable,
    ensure_topics,
    make_consumer,
    pipeline_topics,
)
from tweetpipe.lifecycle import StopSignal
from tweetpipe.runtime import WORKER_STOP_TIMEOUT_S, ServiceRuntime
from tweetpipe.stage_process import StageProcess

EUREKA_APP = "KAFKA-STREAMS-SERVICE"
log = logging.getLogger(__name__)
COMPACTED = {"cleanup.policy": "compact"}


def topics(settings: StreamsSettings) -> list[TopicSpec]:
    kafka, partitions = settings.kafka, settings.streams.repartition_partitions
    rf = kafka.replication_factor
    return [
        *pipeline_topics(kafka),
        TopicSpec(kafka.analytics_topic, kafka.partitions, rf),
        TopicSpec(kafka.analytics_hopping_topic, kafka.partitions, rf),
        TopicSpec(settings.repartition_topic, partitions, rf),
        TopicSpec(settings.changelog_topic, partitions, rf, COMPACTED),
        TopicSpec(settings.instances_topic, 1, rf, COMPACTED),
        TopicSpec(settings.intents_topic, 1, rf, COMPACTED),
    ]


def run(settings: StreamsSettings, stop: StopSignal | None = None) -> int:
    """Count until SIGTERM/SIGINT (0) or the failure of a worker thread (1)."""
    options, kafka = settings.streams, settings.kafka
    with ServiceRuntime(SERVICE, settings, eureka_app=EUREKA_APP, stop=stop) as runtime:
        ensure_topics(kafka, topics(settings))
        directory = Directory(
            bootstrap_servers=kafka.servers,
            topic=settings.instances_topic,
            instance_id=options.instance_id,
            url=settings.url,
            stop=runtime.stop,
        )
        runtime.on_close("directory", directory.close)
        count_producer = transactional_producer(settings, "count")
        runtime.on_close("count producer", lambda: count_producer.close(timeout=5))
        split = StageProcess(
            "split",
            split_stage.main,
            settings,
            metrics=split_stage.relayed_metrics,
            stop=runtime.stop,
            stop_timeout_s=WORKER_STOP_TIMEOUT_S - 5,
        )
        counter = Counter(
            connect=lambda listener: make_consumer(
                kafka,
                f"{options.application_id}-counter",
                [settings.repartition_topic],
                client_id=f"{SERVICE}-count",
                listener=listener,
                isolation_level="read_committed",
                max_poll_records=options.batch_size,
            ),
            producer=count_producer,
            dead_letters=DeadLetterPublisher(
                count_producer, kafka.dlq_topic, stage=f"{SERVICE}-count"
            ),
            kafka=kafka,
            topics=(settings.repartition_topic, settings.changelog_topic),
            state_dir=options.state_dir / options.instance_id,
            windows=options.windows,
            emit_interval_s=options.emit_interval_s,
            backlog_publish_share=options.backlog_publish_share,
            changelog_buckets=options.changelog_buckets,
            batcher=options.batcher(),
            instance_id=options.instance_id,
            stop=runtime.stop,
            on_ownership=directory.set_owned,
        )
        runtime.on_close("counter", counter.close)
        runtime.admin(
            {"kafka": lambda: broker_reachable(kafka)},
            state={"token_validator": TokenValidator(settings.auth.for_audience(SERVICE))},
            routers=[
                query_router(
                    counter=counter,
                    directory=directory,
                    partitions=options.repartition_partitions,
                    window_seconds=options.window_seconds,
                    timeout_s=options.peer_timeout_s,
                    trending=options.trending,
                )
            ],
            status_path="/docs",
        )
        runtime.worker("splitter", split.run)
        runtime.worker("counter", counter.run)
        runtime.worker("directory", directory.run)
        log.info(
            "counting words from %s as %s (%s)",
            kafka.tweets_topic,
            options.instance_id,
            settings.url,
        )
        runtime.wait()
    return runtime.exit_code
