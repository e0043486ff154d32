"""The split stage's intents: which input range each input partition's next transaction covers.

Written (acknowledged) before the transaction starts, on a compacted topic keyed by input
partition. If the transaction never commits, whoever resumes that partition finds an intent that
starts at the committed offset and processes exactly that range again. Each intent also holds the
partition's stream time before and after the range: where a replay starts from, and where a
partition resumed after a committed range carries on from.
"""

from __future__ import annotations

from typing import NamedTuple

import orjson
from kafka import KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from tweetpipe.kafka import read_to_end


class Intent(NamedTuple):
    first: int
    last: int
    time_before: int = 0
    """Stream time (epoch seconds) at `first`; 0 in intents written before event time."""
    time_after: int = 0


class Intents:
    def __init__(self, bootstrap_servers: list[str], topic: str) -> None:
        self._servers = bootstrap_servers
        self._topic = topic
        self._producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=0)

    def record(self, intents: dict[int, Intent]) -> None:
        for partition, intent in intents.items():
            self._producer.send(
                self._topic, key=str(partition).encode(), value=orjson.dumps(list(intent))
            )
        self._producer.flush(timeout=30)

    def latest(self) -> dict[int, Intent]:
        """The last intent per input partition (reads the whole, compacted, topic)."""
        latest: dict[int, Intent] = {}

        def keep(record: ConsumerRecord) -> None:
            latest[int(record.key)] = Intent(*(int(x) for x in orjson.loads(record.value)))

        read_to_end(self._servers, TopicPartition(self._topic, 0), keep, timeout_s=60)
        return latest

    def close(self) -> None:
        self._producer.close(timeout=5)
