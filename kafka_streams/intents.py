"""The split stage's intents: which input range each input partition's next transaction covers.

Written (acknowledged) before the transaction starts, on a compacted topic keyed by input
partition. If the transaction never commits, whoever resumes that partition finds an intent that
starts at the committed offset and processes exactly that range again.
"""

from __future__ import annotations

import time

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

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
        reader = KafkaConsumer(bootstrap_servers=self._servers, enable_auto_commit=False)
        tp = TopicPartition(self._topic, 0)
        reader.assign([tp])
        reader.seek_to_beginning(tp)
        latest: dict[int, Range] = {}
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                for records in reader.poll(timeout_ms=200).values():
                    for record in records:
                        first, last = orjson.loads(record.value)
                        latest[int(record.key)] = (int(first), int(last))
                high = reader.highwater(tp)
                if high is not None and reader.position(tp) >= high:
                    return latest
            raise TimeoutError(f"could not read {self._topic} to its end")
        finally:
            reader.close()

    def close(self) -> None:
        self._producer.close(timeout=5)
