"""kafka-init-topics in the rehearsal: the pipeline's topics, as kafka_cluster.yml creates them
with kafka-topics.sh (no Kafka image here; the broker is Tansu). Exits 0 once they exist.

Any failure to reach or use a broker that is still starting (a KafkaError, a name the network's
DNS does not resolve yet, a refused connection) is retried until the deadline, each one printed;
only then does it exit 1, with the last reason."""

from __future__ import annotations

import sys
import time

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


def main() -> int:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=SERVERS, client_id="kafka-init-topics")
            break
        except Exception as exc:  # every reason is retried, then reported
            if time.monotonic() > deadline:
                print(f"no broker at {SERVERS}: {exc!r}", file=sys.stderr)
                return 1
            print(f"no broker yet ({exc!r}); retrying", file=sys.stderr, flush=True)
            time.sleep(1)
    for name, partitions in TOPICS.items():
        topic = NewTopic(name, partitions, 3, topic_configs={"min.insync.replicas": "2"})
        while True:  # a broker still starting may refuse: retry until the deadline, saying why
            try:
                admin.create_topics([topic])
                print(f"created {name} ({partitions} partitions)")
                break
            except TopicAlreadyExistsError:
                print(f"{name} exists")
                break
            except Exception as exc:  # every reason is retried, then reported
                if time.monotonic() > deadline:
                    print(f"could not create {name}: {exc!r}", file=sys.stderr)
                    return 1
                print(f"creating {name} failed ({exc!r}); retrying", file=sys.stderr, flush=True)
                time.sleep(1)
    admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
