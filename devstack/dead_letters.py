"""Single-machine profile: the dead-letter topic copied to disk before the broker is recycled.

The memory-only broker is restarted empty to bound its memory (`LocalStack.recycle_broker`).
Everything else it holds has been processed by then, but dead letters are kept for a person to
look at: they are written to `<data_dir>/dead-letters/` first, one JSON object per record, and
the recycle goes ahead only when every record up to the end of every partition was written.

Bytes are kept exactly: a key, value or header value that is UTF-8 is written as text
(`"value"`), anything else base64-encoded (`"value_base64"`).
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord


class ArchiveIncomplete(RuntimeError):
    """The topic could not be read to its end in time: the broker must not be emptied."""


@dataclass(frozen=True)
class Archive:
    path: Path | None
    """None when the topic held nothing (no file is written)."""
    records: int


def _bytes(name: str, data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {name: None}
    try:
        return {name: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(data).decode("ascii")}


def as_json(record: ConsumerRecord) -> bytes:
    """One archived record: where it was, when, and its exact bytes."""
    return orjson.dumps(
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp_ms": record.timestamp,
            **_bytes("key", record.key),
            **_bytes("value", record.value),
            "headers": [{"key": key, **_bytes("value", value)} for key, value in record.headers],
        }
    )


def archive_topic(
    servers: list[str], topic: str, directory: Path, *, timeout_s: float = 60.0
) -> Archive:
    """Every committed record of `topic`, appended to a new file under `directory`.

    "The end" is the high watermark carried by fetch responses (the local broker answers
    ListOffsets wrongly), and a partition is done when the position reaches it (on topics
    written in transactions commit markers take offsets too)."""
    consumer = KafkaConsumer(
        bootstrap_servers=servers,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or set())
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return Archive(path=None, records=0)
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        path = directory / f"{topic}-{stamp}.jsonl"
        written = 0
        deadline = time.monotonic() + timeout_s
        open_ = set(tps)
        directory.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as out:
            while open_:
                if time.monotonic() > deadline:
                    raise ArchiveIncomplete(
                        f"{topic}: not read to its end in {timeout_s:.0f}s "
                        f"({written:,} records written to {path})"
                    )
                for records in consumer.poll(timeout_ms=200).values():
                    for record in records:
                        out.write(as_json(record) + b"\n")
                        written += 1
                for tp in list(open_):
                    high = consumer.highwater(tp)
                    if high is not None and consumer.position(tp) >= high:
                        open_.discard(tp)
            out.flush()
            os.fsync(out.fileno())
        if not written:
            path.unlink()
            return Archive(path=None, records=0)
        return Archive(path=path, records=written)
    finally:
        consumer.close(autocommit=False)
