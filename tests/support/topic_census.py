"""Run inside a service container (stdin of `python -`): reads twitter-topic from the start and
prints, as JSON, what was produced: records, distinct tweet ids, and per word of `WORDS` its
all-time count and its count per window, counted over distinct tweets with the stream stage's
own rules (`tweetpipe.text.words`, tumbling windows of `WINDOW_S`)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import datetime

from kafka import KafkaConsumer, TopicPartition

from tweetpipe.text import words

SERVERS = "kafka-broker-1:9092,kafka-broker-2:9092,kafka-broker-3:9092"
WORDS = sys.argv[1].split(",") if len(sys.argv) > 1 else ["kafka"]
WINDOW_S = int(sys.argv[2]) if len(sys.argv) > 2 else 60


def main() -> None:
    # Two minutes, not kafka-python's 30 s: right after the fault steps, with a stream stage
    # restoring its stores, the brokers on a loaded 2-core machine can miss every bootstrap
    # attempt for 30 s (a CI run failed so).
    consumer = KafkaConsumer(
        bootstrap_servers=SERVERS, enable_auto_commit=False, bootstrap_timeout_ms=120_000
    )
    partitions = [
        TopicPartition("twitter-topic", p)
        for p in consumer.partitions_for_topic("twitter-topic") or []
    ]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records = 0
    texts: dict[int, tuple[str, str]] = {}
    empty = 0
    while empty < 5:  # Tansu's end offsets are wrong: read until the topic stays quiet
        batch = consumer.poll(timeout_ms=1000, max_records=5000)
        empty = 0 if batch else empty + 1
        for messages in batch.values():
            for message in messages:
                records += 1
                tweet = json.loads(message.value)
                texts[int(tweet["id"])] = (tweet["text"], tweet["created_at"])
    consumer.close()
    totals: Counter[str] = Counter()
    windows: dict[str, Counter[int]] = {w: Counter() for w in WORDS}
    for text, created in texts.values():
        seconds = int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
        for word in words(text):
            if word in windows:
                totals[word] += 1
                windows[word][seconds - seconds % WINDOW_S] += 1
    print(
        json.dumps(
            {
                "records": records,
                "distinct": len(texts),
                "totals": {w: totals[w] for w in WORDS},
                "windows": {w: {str(k): v for k, v in c.items()} for w, c in windows.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
