"""The producers' partitioner: the same partition as kafka-python's default (the Java client's
rule) for every key, remembered or not, and the default's behaviour for unkeyed records."""

from __future__ import annotations

import random

import pytest
from kafka.partitioner import DefaultPartitioner

from tweetpipe.partitioning import RememberingPartitioner


class Cluster:
    """The two questions a partitioner asks of kafka-python's cluster metadata."""

    def __init__(self, partitions: dict[str, set[int]]) -> None:
        self._partitions = partitions

    def topics(self) -> set[str]:
        return set(self._partitions)

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._partitions.get(topic)

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._partitions.get(topic)


def test_every_key_goes_where_the_default_partitioner_sends_it() -> None:
    rnd = random.Random(7)
    cluster = Cluster({f"t{n}": set(range(n)) for n in (1, 2, 3, 7, 12, 50)})
    remembering = RememberingPartitioner(keys_remembered=64)  # small: keys also fall out
    default = DefaultPartitioner()
    keys = [str(rnd.randrange(10**9)).encode() for _ in range(300)]
    keys += [b"kafka", "データ".encode(), b"", bytes(range(256))]
    for _ in range(3):  # first sight, remembered, and fallen out and hashed again
        for key in keys:
            for topic in cluster.topics():
                expected = default.partition(topic, key, key, None, None, cluster)
                assert remembering.partition(topic, key, key, None, None, cluster) == expected
        rnd.shuffle(keys)


def test_unkeyed_records_go_to_an_available_partition_and_unknown_topics_are_refused() -> None:
    cluster = Cluster({"t": {0, 1, 2}})
    partitioner = RememberingPartitioner()
    chosen = {partitioner.partition("t", None, None, b"v", b"v", cluster) for _ in range(200)}
    assert chosen == {0, 1, 2}
    with pytest.raises(ValueError, match="Topic missing not found"):
        partitioner.partition("missing", b"k", b"k", None, None, cluster)
