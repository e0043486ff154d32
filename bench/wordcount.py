"""Word-count figures on this machine; the last line printed is one JSON object.

    .venv/bin/python bench/wordcount.py [--tweets 100000] [--rows 50000]

- raw_consume_per_s: a plain kafka-python consumer reading the same pre-produced tweets
- wordcount_tweets_per_s: one kafka-streams-service instance, input pre-produced; timed from
  its first counted tweet (after start-up and the group join) to exact counts in its stores,
  published to the changelog and the analytics topics
- analytics_rows_per_s: word-count upserts into a throwaway PostgreSQL (bench/analytics_rows.py)
- for the word-count run, per process (the word count's counting process, its split stage
  process, the broker): cpu_us_per_tweet_*,
  cpu_share_* (cores busy while it ran) and rss_mb_* (peak resident memory)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from kafka import KafkaConsumer

from bench.analytics_rows import measure_analytics_rows
from bench.usage import Tracker, child_pids, figures
from devstack.broker import TansuBroker
from tests.support.issuer import DevIssuer
from tests.support.kafka import produce_tweets
from tests.support.ports import free_port
from tests.support.services import ServiceProcess, metric_value
from tweetpipe.kafka import ensure_topics, pipeline_topics
from tweetpipe.settings import KafkaSettings
from tweetpipe.text import words
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.settings import GeneratorOptions


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def raw_consume(kafka: KafkaSettings, count: int) -> float:
    consumer = KafkaConsumer(
        kafka.tweets_topic,
        bootstrap_servers=kafka.servers,
        group_id="bench-raw",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=kafka.session_timeout_ms,
    )
    seen, started = 0, None
    while seen < count:
        polled = consumer.poll(timeout_ms=1000, max_records=5000)
        if polled and started is None:
            started = time.perf_counter()  # time reading, not the group join
        seen += sum(len(records) for records in polled.values())
    assert started is not None
    rate = count / (time.perf_counter() - started)
    consumer.close()
    return rate


def wordcount(
    kafka: KafkaSettings,
    truth: Counter[str],
    count: int,
    workdir: Path,
    broker_pid: int | None = None,
) -> tuple[float, dict[str, float]]:
    port = free_port()
    issuer = DevIssuer(workdir).start()
    auth = {"Authorization": f"Bearer {issuer.password_token('app_user')}"}
    env = {
        "KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "AUTH__ISSUER_URL": issuer.realm_url,
        "ADMIN__PORT": str(port),
        "STREAMS__STATE_DIR": str(workdir / "state"),
    }
    instance = ServiceProcess("kafka_streams", env, workdir / "streams.log").start()
    try:
        instance.wait_healthy(port)
        while metric_value(port, "tweetpipe_streams_tweets_processed_total") == 0:
            time.sleep(0.01)
        started = time.perf_counter()
        trackers = [
            Tracker("wordcount", instance.pid).start(),
            *(Tracker("split", pid).start() for pid in child_pids(instance.pid)),
            Tracker("broker", broker_pid).start(),
        ]
        while metric_value(port, "tweetpipe_streams_tweets_processed_total") < count:
            time.sleep(0.05)
        say(f"  split stage done after {time.perf_counter() - started:.1f}s")
        probes = [w for w, _ in truth.most_common(20)] + sorted(truth)[:: max(1, len(truth) // 20)]
        while not all(_count(port, w, auth) == truth[w] for w in probes):
            time.sleep(0.2)
        say(f"  counts exact after {time.perf_counter() - started:.1f}s")
        while metric_value(port, "tweetpipe_streams_stores_unpublished") != 0:
            time.sleep(0.05)
        wall_s = time.perf_counter() - started
        return count / wall_s, figures(trackers, count, wall_s)
    finally:
        instance.terminate()
        issuer.stop()


def _count(port: int, word: str, auth: dict[str, str]) -> int | None:
    url = f"http://127.0.0.1:{port}/get-word-count-by-word/{word}"
    reply = httpx.get(url, headers=auth, timeout=10)
    return int(reply.json()["word_count"]) if reply.status_code == 200 else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--tweets", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()

    tweets = list(TweetGenerator(GeneratorOptions(seed=4, count=args.tweets)))
    truth = Counter(w for t in tweets for w in words(t.text))
    with (
        tempfile.TemporaryDirectory(prefix="tweetpipe-bench-") as tmp,
        TansuBroker(free_port(), log_path=Path(tmp) / "broker.log") as broker,
    ):
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        ensure_topics(kafka, pipeline_topics(kafka))
        say(f"producing {args.tweets} tweets …")
        produce_tweets(kafka, tweets)

        say("raw kafka-python consume …")
        raw = raw_consume(kafka, args.tweets)
        say(f"  {raw:,.0f} msg/s")

        say("word count, one instance …")
        counted, usage = wordcount(kafka, truth, args.tweets, Path(tmp), broker_pid=broker.pid)
        say(f"  {counted:,.0f} tweets/s ({counted / raw:.2f} x raw consume); {usage}")

    say(f"analytics upserts into PostgreSQL, {args.rows} rows …")
    rows = measure_analytics_rows(args.rows)
    say(f"  {rows:,.0f} rows/s")
    print(
        json.dumps(
            {
                "raw_consume_per_s": round(raw),
                "wordcount_tweets_per_s": round(counted),
                "wordcount_ratio": round(counted / raw, 3),
                **usage,
                "analytics_rows_per_s": round(rows),
                "tweets": args.tweets,
                "rows": args.rows,
            }
        )
    )


if __name__ == "__main__":
    main()
