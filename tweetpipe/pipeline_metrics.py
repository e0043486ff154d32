"""Metrics every consuming stage shares, labelled by consumer group so one panel shows them all."""

from __future__ import annotations

from collections.abc import Mapping

from kafka import TopicPartition
from prometheus_client import Counter, Gauge

CONSUMER_LAG = Gauge(
    "tweetpipe_consumer_lag",
    "Records behind the partition's high watermark",
    ["group", "topic", "partition"],
)
RECORDS_CONSUMED = Counter(
    "tweetpipe_records_consumed_total",
    "Records polled from Kafka by a consumer group (re-deliveries included)",
    ["group", "topic"],
)


def export_lag(group: str, lags: Mapping[TopicPartition, int]) -> int:
    """Publish each assigned partition's lag; returns the total."""
    for tp, lag in lags.items():
        CONSUMER_LAG.labels(group, tp.topic, str(tp.partition)).set(lag)
    return sum(lags.values())
