"""Ingestion figures on this machine; the last line printed is one JSON object.

    .venv/bin/python bench/ingest.py [--tweets 100000] [--es-tweets 10000] [--fresh-seconds 15]

- raw_produce_per_s: a plain kafka-python producer sending pre-serialised tweets (same run)
- e2e_tweets_per_s: generator process start → last tweet searchable (tantivy backend)
- e2e_es_tweets_per_s: the same against an Elasticsearch-API server (noida-db, an emulator)
- freshness_p50_ms / freshness_p99_ms: produce → searchable at a steady 2,000 tweets/s
- for the tantivy end-to-end run, per process (generator, generator_maker: the process that
  makes the tweets at full speed, sink, broker): cpu_us_per_tweet_*, cpu_share_* (cores busy
  while it ran) and rss_mb_* (peak resident memory)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka import KafkaProducer

from bench.usage import ChildTracker, Tracker, figures
from devstack.broker import TansuBroker
from tests.support.elasticsearch import ElasticsearchServer
from tests.support.ports import free_port
from tests.support.services import ServiceProcess, metric_value
from tweetpipe.kafka import ensure_topics, make_producer, pipeline_topics
from tweetpipe.search import PageRequest, SearchQuery, SearchStore, open_store
from tweetpipe.settings import KafkaSettings, SearchSettings
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.settings import GeneratorOptions


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fresh_topics(broker: TansuBroker) -> KafkaSettings:
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    ensure_topics(kafka, pipeline_topics(kafka))
    return kafka


def raw_produce(kafka: KafkaSettings, count: int) -> float:
    payloads = [(t.key, t.to_json()) for t in TweetGenerator(GeneratorOptions(seed=1, count=count))]
    producer = KafkaProducer(
        bootstrap_servers=kafka.servers,
        acks="all",
        linger_ms=kafka.linger_ms,
        batch_size=kafka.batch_size,
    )
    started = time.perf_counter()
    for key, value in payloads:
        producer.send("bench-raw", key=key, value=value)
    producer.flush()
    rate = count / (time.perf_counter() - started)
    producer.close()
    return rate


def run_generator(kafka: KafkaSettings, count: int, log: Path, rate: float = 0) -> ServiceProcess:
    """The generator service sending `count` tweets at `rate` per second (0: full speed)."""
    env = {
        "KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GENERATOR__COUNT": str(count),
        "GENERATOR__RATE": f"{rate:g}",
        "GENERATOR__SEED": "2",
        "GENERATOR__PROGRESS_INTERVAL_S": "2",
        "ADMIN__PORT": str(free_port()),
    }
    return ServiceProcess("twitter_to_kafka", env, log).start()


def generator_alone(kafka: KafkaSettings, count: int, workdir: Path) -> float:
    """The generator service's own rate (its log), for comparison with the pipeline's."""
    generator = run_generator(kafka, count, workdir / "generator-alone.log")
    generator.wait_exit(timeout_s=600)
    match = generator.wait_for_log(r"produced \d+ tweets in [\d.]+s \((\d+)/s\)")
    return float(match.group(1))


def start_sink(kafka: KafkaSettings, search: SearchSettings, workdir: Path) -> ServiceProcess:
    port = free_port()
    env = {
        "KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "SEARCH__BACKEND": search.backend,
        "SEARCH__TANTIVY_PATH": str(search.tantivy_path),
        "SEARCH__ELASTICSEARCH_HOSTS": search.elasticsearch_hosts,
        "SEARCH__INDEX": search.index,
        "ADMIN__PORT": str(port),
        "SINK__GROUP_ID": f"bench-{search.backend}-{search.index}",
    }
    sink = ServiceProcess("kafka_to_elastic", env, workdir / f"sink-{search.index}.log").start()
    sink.wait_healthy(port)
    # Time the pipeline, not the group join (half the session timeout on Tansu).
    deadline = time.monotonic() + 60
    while metric_value(port, "tweetpipe_sink_assigned_partitions") < 1:
        if time.monotonic() > deadline:
            raise TimeoutError("the sink never joined its consumer group")
        time.sleep(0.1)
    return sink


def wait_for_count(
    store: SearchStore, expected: int, timeout_s: float, trackers: Sequence[Tracker] = ()
) -> float:
    deadline = time.monotonic() + timeout_s
    while (seen := store.count()) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {seen} of {expected} tweets searchable")
        for tracker in trackers:
            tracker.tick()
        store.refresh()
        time.sleep(0.05)
    return time.perf_counter()


def end_to_end(
    kafka: KafkaSettings,
    search: SearchSettings,
    count: int,
    workdir: Path,
    broker_pid: int | None = None,
) -> tuple[float, dict[str, float]]:
    """Tweets/s from launching the generator to the last tweet being searchable, and what
    each process spent on them."""
    sink = start_sink(kafka, search, workdir)
    store = open_store(search)
    try:
        started = time.perf_counter()
        generator = run_generator(kafka, count, workdir / f"generator-{search.index}.log")
        trackers = [
            Tracker("generator", generator.pid).start(),
            ChildTracker("generator_maker", generator.pid, "spawn_main").start(),
            Tracker("sink", sink.pid).start(),
            Tracker("broker", broker_pid).start(),
        ]
        baseline = store.count()
        finished = wait_for_count(store, baseline + count, timeout_s=600, trackers=trackers)
        usage = figures(trackers, count, finished - started)
        generator.wait_exit()
        summary = generator.wait_for_log(r"produced \d+ tweets in [^\"]+").group(0)
        say(f"  generator: {summary}")
        return count / (finished - started), usage
    finally:
        store.close()
        sink.terminate()


def freshness(
    kafka: KafkaSettings, search: SearchSettings, seconds: float, workdir: Path
) -> list[float]:
    """Produce at 2,000 tweets/s; time every 10th tweet from send to searchable."""
    sink = start_sink(kafka, search, workdir)
    store = open_store(search)
    producer = make_producer(kafka, client_id="bench-freshness")
    sent: dict[int, float] = {}
    latencies: list[float] = []
    done = threading.Event()
    lock = threading.Lock()

    def check() -> None:
        """One ids-filtered query per round finds which sampled tweets are searchable."""
        while not done.is_set() or sent:
            with lock:
                pending = frozenset(sent)
            if pending:
                page = store.search(SearchQuery(ids=pending), PageRequest(size=100, sort="oldest"))
                now = time.perf_counter()
                with lock:
                    for hit in page.hits:
                        latencies.append((now - sent.pop(hit.tweet.id)) * 1000)
            time.sleep(0.005)

    checker = threading.Thread(target=check, daemon=True)
    checker.start()
    rate, total = 2000, int(2000 * seconds)
    tweets = iter(TweetGenerator(GeneratorOptions(seed=3, count=total)))
    started = time.perf_counter()
    for index, tweet in enumerate(tweets):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        producer.send(kafka.tweets_topic, key=tweet.key, value=tweet.to_json())
        if index % 10 == 0:
            with lock:
                sent[tweet.id] = time.perf_counter()
    producer.flush()
    done.set()
    checker.join(timeout=60)
    producer.close()
    store.close()
    sink.terminate()
    return latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--tweets", type=int, default=100_000)
    parser.add_argument("--es-tweets", type=int, default=10_000)
    parser.add_argument("--fresh-seconds", type=float, default=15.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tweetpipe-bench-") as tmp:
        workdir = Path(tmp)
        with TansuBroker(free_port(), log_path=workdir / "broker-raw.log") as broker:
            kafka = fresh_topics(broker)
            say(f"raw kafka-python produce, {args.tweets} tweets …")
            raw = raw_produce(kafka, args.tweets)
            say(f"  {raw:,.0f} msg/s")

        with TansuBroker(free_port(), log_path=workdir / "broker-gen.log") as broker:
            say(f"generator alone (no sink running), {args.tweets} tweets …")
            generator_only = generator_alone(fresh_topics(broker), args.tweets, workdir)
            say(f"  {generator_only:,.0f} tweets/s")

        # Each phase gets its own broker, so no phase's sink starts behind a backlog.
        with TansuBroker(free_port(), log_path=workdir / "broker-e2e.log") as broker:
            tantivy = SearchSettings(backend="tantivy", tantivy_path=workdir / "index", index="e2e")
            say(f"end to end, tantivy, {args.tweets} tweets …")
            e2e, usage = end_to_end(
                fresh_topics(broker), tantivy, args.tweets, workdir, broker_pid=broker.pid
            )
            say(f"  {e2e:,.0f} tweets/s ({e2e / raw:.2f} x raw produce); {usage}")

        with TansuBroker(free_port(), log_path=workdir / "broker-fresh.log") as broker:
            say(f"freshness at 2,000 tweets/s for {args.fresh_seconds:.0f}s …")
            fresh_index = SearchSettings(
                backend="tantivy", tantivy_path=workdir / "fresh", index="fresh"
            )
            latencies = freshness(fresh_topics(broker), fresh_index, args.fresh_seconds, workdir)
            p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
            say(f"  p50 {p50:.0f} ms, p99 {p99:.0f} ms over {len(latencies)} sampled tweets")

        with (
            TansuBroker(free_port(), log_path=workdir / "broker-es.log") as broker,
            ElasticsearchServer(workdir / "es") as es,
        ):
            elastic = SearchSettings(
                backend="elasticsearch", elasticsearch_hosts=es.url, index="bench-e2e"
            )
            say(f"end to end, Elasticsearch API (noida-db), {args.es_tweets} tweets …")
            e2e_es, _ = end_to_end(fresh_topics(broker), elastic, args.es_tweets, workdir)
            say(f"  {e2e_es:,.0f} tweets/s")

    print(
        json.dumps(
            {
                "raw_produce_per_s": round(raw),
                "generator_alone_per_s": round(generator_only),
                "e2e_tweets_per_s": round(e2e),
                "e2e_ratio": round(e2e / raw, 3),
                "e2e_es_tweets_per_s": round(e2e_es),
                "freshness_p50_ms": round(p50, 1),
                "freshness_p99_ms": round(p99, 1),
                **usage,
                "tweets": args.tweets,
                "es_tweets": args.es_tweets,
            }
        )
    )


if __name__ == "__main__":
    main()
