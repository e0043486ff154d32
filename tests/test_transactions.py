"""A transaction's commit waits for the coordinator's answer, but not forever: a broker that does
not answer (here: frozen with SIGSTOP) makes the commit fail after its deadline, so the stage
stops and is restarted instead of hanging."""

from __future__ import annotations

import os
import signal

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaTimeoutError

from devstack.broker import TansuBroker
from tweetpipe.kafka import TopicSpec, commit_transaction, ensure_topics
from tweetpipe.settings import KafkaSettings


def _producer(kafka: KafkaSettings, transactional_id: str) -> KafkaProducer:
    producer = KafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, transactional_id=transactional_id
    )
    producer.init_transactions()
    return producer


def test_a_commit_is_answered_and_its_records_are_readable(kafka_settings: KafkaSettings) -> None:
    ensure_topics(kafka_settings, [TopicSpec("committed", partitions=1, replication_factor=1)])
    producer = _producer(kafka_settings, "commit-test")
    producer.begin_transaction()
    for i in range(5):
        producer.send("committed", key=b"k", value=str(i).encode())
    commit_transaction(producer, timeout_s=30)
    producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_settings.bootstrap_servers, isolation_level="read_committed"
    )
    tp = TopicPartition("committed", 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    values: list[bytes] = []
    for _ in range(50):
        values += [r.value for r in consumer.poll(timeout_ms=200).get(tp, [])]
        if len(values) == 5:
            break
    consumer.close()
    assert values == [b"0", b"1", b"2", b"3", b"4"]


def test_a_commit_nobody_answers_fails_after_its_deadline(
    broker: TansuBroker, kafka_settings: KafkaSettings
) -> None:
    ensure_topics(kafka_settings, [TopicSpec("unanswered", partitions=1, replication_factor=1)])
    producer = _producer(kafka_settings, "unanswered-test")
    producer.begin_transaction()
    producer.send("unanswered", value=b"x").get(timeout=30)
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        with pytest.raises(KafkaTimeoutError, match="not answered within 2s"):
            commit_transaction(producer, timeout_s=2)
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    producer.close(timeout=1)
