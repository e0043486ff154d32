"""kafka-init-topics in the rehearsal: the pipeline's topics, as kafka_cluster.yml creates them
with kafka-topics.sh (no Kafka image here; the broker is Tansu). Exits 0 once they exist.

Any failure to reach or use a broker that is still starting (a KafkaError, a name the network's
DNS does not resolve yet, a refused connection) is retried until the deadline, each one printed;
only then does it exit 1, with the last reason."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

SERVERS = "kafka-broker-1:9092,kafka-broker-2:9092,kafka-broker-3:9092"
TOPICS = {
    "twitter-topic": 3,
    "twitter-analytics-topic": 3,
    "twitter-analytics-hopping-topic": 3,
    "twitter-dlq": 1,
}
DEADLINE_S = 300
"""Compose waits for this container; a loaded machine starts twenty at once."""
T = TypeVar("T")


class GaveUp(Exception):
    """The deadline passed; the message gives the last reason."""


def until_deadline(what: str, action: Callable[[], T], deadline: float) -> T:
    """`action()`'s result, any failure retried (and printed) each second until `deadline`."""
    while True:
        try:
            return action()
        except Exception as exc:  # every reason is retried, then reported
            if time.monotonic() > deadline:
                raise GaveUp(f"{what}: {exc!r}") from exc
            print(f"{what} failed ({exc!r}); retrying", file=sys.stderr, flush=True)
            time.sleep(1)


def create(admin: KafkaAdminClient, topic: NewTopic) -> str:
    try:
        admin.create_topics([topic])
    except TopicAlreadyExistsError:
        return "exists"
    return "created"


def main() -> int:
    deadline = time.monotonic() + DEADLINE_S
    try:
        admin = until_deadline(
            f"connecting to {SERVERS}",
            lambda: KafkaAdminClient(bootstrap_servers=SERVERS, client_id="kafka-init-topics"),
            deadline,
        )
        for name, partitions in TOPICS.items():
            topic = NewTopic(name, partitions, 3, topic_configs={"min.insync.replicas": "2"})
            outcome = until_deadline(f"creating {name}", partial(create, admin, topic), deadline)
            print(f"{name}: {outcome} ({partitions} partitions)")
    except GaveUp as exc:
        print(f"gave up after {DEADLINE_S} s, {exc}", file=sys.stderr)
        return 1
    admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
