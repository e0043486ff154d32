"""The stages' transactional producers: one per stage and instance, fenced on restart."""

from __future__ import annotations

from kafka import KafkaProducer

from kafka_streams.settings import SERVICE, StreamsSettings
from tweetpipe.kafka import make_producer


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
