"""Which partition a keyed record goes to: kafka-python's default rule, with its hashes kept.

The rule stays the Java client's (murmur2 of the key bytes, modulo the partition count), so a
key lands on the same partition whichever client writes it. kafka-python computes murmur2 in
pure Python (about 2.5 µs a key, the largest single cost of a send in the word count's
profile), and the stages send the same keys over and over: a user's tweets, a word's update for
each of its windows. Remembering the hashes of recent keys makes that a dictionary lookup.
"""

from __future__ import annotations

import functools
from typing import Any

from kafka.partitioner import DefaultPartitioner
from kafka.partitioner.default import murmur2

KEYS_REMEMBERED = 65_536
"""Distinct keys whose hash is kept (least recently used first out): a few MB at most."""


class RememberingPartitioner(DefaultPartitioner):  # type: ignore[misc]  # kafka-python is untyped
    def __init__(self, keys_remembered: int = KEYS_REMEMBERED) -> None:
        self._hash = functools.lru_cache(maxsize=keys_remembered)(murmur2)

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        if serialized_key is None:  # unkeyed: the default's choice among available partitions
            chosen: int = super().partition(
                topic, key, serialized_key, value, serialized_value, cluster
            )
            return chosen
        known = cluster.partitions_for_topic(topic)
        if not known:
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        partitions: list[int] = sorted(known)
        hashed: int = self._hash(serialized_key)
        return partitions[(hashed & 0x7FFFFFFF) % len(partitions)]
