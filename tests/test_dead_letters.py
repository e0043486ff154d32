"""Before the local broker is recycled its dead letters are archived to disk: every record of
every partition, bytes exactly as they were (text as text, anything else base64)."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
from kafka import KafkaProducer

from devstack.dead_letters import archive_topic
from tweetpipe.kafka import TopicSpec, ensure_topics
from tweetpipe.settings import KafkaSettings

BINARY = bytes(range(256))


def test_every_record_is_archived_with_its_exact_bytes(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    topic = "letters-to-archive"
    ensure_topics(kafka_settings, [TopicSpec(topic, partitions=3, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    sent = [
        (str(i).encode(), f"letter {i}".encode(), [("dlq.reason", f"reason {i}".encode())])
        for i in range(50)
    ]
    for key, value, headers in sent:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.send(topic, key=None, value=BINARY, headers=[("raw", b"\xff\xfe")])
    producer.flush()
    producer.close()

    archive = archive_topic([kafka_settings.bootstrap_servers], topic, tmp_path / "archive")
    assert archive.records == 51
    assert archive.path is not None
    assert archive.path.parent == tmp_path / "archive"
    lines = [orjson.loads(line) for line in archive.path.read_bytes().splitlines()]
    texts = sorted((r["key"], r["value"], r["headers"]) for r in lines if "value" in r)
    assert texts == sorted(
        (k.decode(), v.decode(), [{"key": "dlq.reason", "value": h[0][1].decode()}])
        for k, v, h in sent
    )
    (binary,) = [r for r in lines if "value_base64" in r]
    assert base64.b64decode(binary["value_base64"]) == BINARY
    assert binary["key"] is None
    assert binary["headers"] == [
        {"key": "raw", "value_base64": base64.b64encode(b"\xff\xfe").decode()}
    ]
    assert len({r["partition"] for r in lines}) == 3
    assert len({(r["partition"], r["offset"]) for r in lines}) == 51


def test_an_empty_or_missing_topic_writes_no_file(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    ensure_topics(kafka_settings, [TopicSpec("empty-dlq", partitions=2, replication_factor=1)])
    for topic in ("empty-dlq", "never-created"):
        archive = archive_topic([kafka_settings.bootstrap_servers], topic, tmp_path / "archive")
        assert (archive.path, archive.records) == (None, 0)
    assert not list((tmp_path / "archive").glob("*"))
