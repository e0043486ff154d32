"""The split stage's intents: which input range each input partition's next transaction covers.

Written (acknowledged) before the transaction starts, on a compacted topic keyed by input
partition. If the transaction never commits, whoever resumes that partition finds an intent that
starts at the committed offset and processes exactly that range again.
"""

from __future__ import annotations

import orjson
from kafka import KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from tweetpipe.kafka import read_to_end

Range = tuple[int, int]


class Intents:
    def __init__(self, bootstrap_servers: list[str], topic: str) -> None:
        self._servers = bootstrap_servers
        self._topic = topic
        self._producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=0)

    def record(self, ranges: dict[int, Range]) -> None:
        for partition, (first, last) in ranges.items():
            self._producer.send(
                self._topic, key=str(partition).encode(), value=orjson.dumps([first, last])
            )
        self._producer.flush(timeout=30)

    def latest(self) -> dict[int, Range]:
        """The last intent per input partition (reads the whole, compacted, topic)."""
        latest: dict[int, Range] = {}

        def keep(record: ConsumerRecord) -> None:
            first, last = orjson.loads(record.value)
            latest[int(record.key)] = (int(first), int(last))

        read_to_end(self._servers, TopicPartition(self._topic, 0), keep, timeout_s=60)
        return latest

    def close(self) -> None:
        self._producer.close(timeout=5)
