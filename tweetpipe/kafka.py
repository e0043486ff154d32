"""Kafka clients configured one way for every service (kafka-python 3.x).

Producers favour throughput with safety (`acks=all`, idempotence, small linger, large batches);
consumers never auto-commit: each stage commits only after its work is durable.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka import (
    ConsumerRebalanceListener,
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    TopicPartition,
)
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from tweetpipe.partitioning import RememberingPartitioner
from tweetpipe.settings import KafkaSettings

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """The broker did not answer within `kafka.startup_timeout_s`."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] | None = None


def _log_wait(servers: list[str]) -> Any:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "waiting for Kafka broker at %s (attempt %d): %s",
            ",".join(servers),
            state.attempt_number,
            error,
            extra={"kafka.bootstrap_servers": servers, "retry.attempt": state.attempt_number},
        )

    return before_sleep


def _retrying(settings: KafkaSettings) -> Retrying:
    return Retrying(
        stop=stop_after_delay(settings.startup_timeout_s),
        wait=wait_exponential(multiplier=0.25, max=5),
        retry=retry_if_exception_type((KafkaError, OSError)),
        before_sleep=_log_wait(settings.servers),
        reraise=True,
    )


def admin_client(settings: KafkaSettings) -> KafkaAdminClient:
    """An admin client, waiting (with a log line per attempt) until the broker answers.

    Services call this (through `ensure_topics`) before creating producers and consumers,
    which would otherwise start without a broker and fail later, less clearly.
    """
    try:
        for attempt in _retrying(settings):
            with attempt:
                return KafkaAdminClient(
                    bootstrap_servers=settings.servers,
                    client_id="tweetpipe-admin",
                    bootstrap_timeout_ms=2000,
                )
    except (KafkaError, OSError) as exc:
        raise BrokerUnavailable(
            f"no Kafka broker at {settings.bootstrap_servers} after "
            f"{settings.startup_timeout_s:.0f}s: {exc}"
        ) from exc
    raise AssertionError("unreachable")


def ensure_topics(settings: KafkaSettings, topics: list[TopicSpec]) -> None:
    """Create the topics that do not exist yet; waits for the broker first."""
    admin = admin_client(settings)
    try:
        for attempt in _retrying(settings):
            with attempt:
                existing = set(admin.list_topics())
                missing = [
                    NewTopic(
                        t.name, t.partitions, t.replication_factor, topic_configs=t.config or {}
                    )
                    for t in topics
                    if t.name not in existing
                ]
                if missing:
                    with contextlib.suppress(TopicAlreadyExistsError):  # lost a creation race
                        admin.create_topics(missing)
                    log.info(
                        "created topics %s",
                        [t.name for t in missing],
                        extra={"kafka.topics": [t.name for t in missing]},
                    )
    finally:
        admin.close()


def pipeline_topics(settings: KafkaSettings) -> list[TopicSpec]:
    return [
        TopicSpec(settings.tweets_topic, settings.partitions, settings.replication_factor),
        TopicSpec(settings.dlq_topic, 1, settings.replication_factor),
    ]


COMMIT_TIMEOUT_S = 60.0
"""Longest a transaction's commit may wait for the coordinator's answer."""


def commit_transaction(producer: KafkaProducer, timeout_s: float = COMMIT_TIMEOUT_S) -> None:
    """`producer.commit_transaction()` with a deadline.

    kafka-python (3.0) waits for the EndTxn answer without one, so an answer that never comes
    holds the stage forever (seen once, the word count stuck on shutdown under load). Past the
    deadline this raises `KafkaTimeoutError` and the stage stops with its input uncommitted, for
    its supervisor to restart; the new instance fences the old transactional producer. The
    commit is started as `commit_transaction` does; only the wait is bounded."""
    manager = producer._transaction_manager
    if manager is None:
        raise ValueError("commit_transaction needs a transactional producer")
    result = manager.begin_commit()
    producer._sender.wakeup()
    if not result.wait(timeout_ms=timeout_s * 1000):
        raise KafkaTimeoutError(f"the transaction's commit was not answered within {timeout_s:g}s")


def make_producer(settings: KafkaSettings, client_id: str, **overrides: Any) -> KafkaProducer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.servers,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": settings.linger_ms,
        "batch_size": settings.batch_size,
        "max_request_size": settings.max_request_size,
        "retries": 2**31 - 1,
        "delivery_timeout_ms": 120_000,
        "partitioner": RememberingPartitioner(),
    }
    options.update(overrides)
    return KafkaProducer(**options)


def make_consumer(
    settings: KafkaSettings,
    group_id: str,
    topics: list[str],
    client_id: str,
    listener: ConsumerRebalanceListener | None = None,
    **overrides: Any,
) -> KafkaConsumer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.servers,
        "group_id": group_id,
        "client_id": client_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_poll_interval_ms": settings.max_poll_interval_ms,
        "max_partition_fetch_bytes": 4 * 1024 * 1024,
        "fetch_max_bytes": 16 * 1024 * 1024,
    }
    options.update(overrides)
    consumer = KafkaConsumer(**options)
    consumer.subscribe(topics, listener=listener)
    return consumer


def consumer_lag(consumer: KafkaConsumer) -> dict[TopicPartition, int]:
    """Lag per assigned partition from the fetch high watermark.

    `end_offsets()` is not used: the local broker answers ListOffsets wrongly, while the high
    watermark carried by every fetch response is right on every broker.
    """
    lag: dict[TopicPartition, int] = {}
    for tp in consumer.assignment():
        high = consumer.highwater(tp)
        if high is None:
            continue
        lag[tp] = max(0, high - consumer.position(tp))
    return lag


def broker_reachable(settings: KafkaSettings, timeout_s: float = 1.0) -> bool:
    """Health check: some bootstrap broker accepts a connection right now."""
    for server in settings.servers:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return True
        except OSError:
            continue
    return False


def read_to_end(
    servers: list[str],
    tp: TopicPartition,
    handle: Callable[[ConsumerRecord], None],
    start: int = 0,
    timeout_s: float = 120.0,
) -> int:
    """Feed every record of one partition from `start` to its end; returns the end offset.

    "The end" is the high watermark carried by fetch responses, which the local broker reports
    correctly (unlike its answer to a ListOffsets request).
    """
    reader = KafkaConsumer(
        bootstrap_servers=servers, isolation_level="read_committed", enable_auto_commit=False
    )
    reader.assign([tp])
    reader.seek(tp, start)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for records in reader.poll(timeout_ms=200).values():
                for record in records:
                    handle(record)
            high = reader.highwater(tp)
            if high is not None and reader.position(tp) >= high:
                # Not the position: a `start` past the end (the topic was recreated shorter)
                # is still where the reader stands, and the caller must learn where it ends.
                return int(high)
        raise TimeoutError(f"reading {tp.topic}[{tp.partition}] to its end took over {timeout_s}s")
    finally:
        reader.close()
