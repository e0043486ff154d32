"""The ingestion path end to end: generator → Tansu → kafka-to-elastic → tantivy, as processes."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from devstack.broker import TansuBroker
from tests.support.elasticsearch import ElasticsearchServer
from tests.support.kafka import (
    OVERSIZED_BYTES,
    assert_truncated_copy,
    committed_offsets,
    partition_counts,
    produce,
    produce_oversized,
    produce_tweets,
    read_topic,
)
from tests.support.ports import free_port
from tests.support.services import ServiceProcess, metric_value
from tweetpipe.model import Tweet
from tweetpipe.search import SearchQuery, SearchStore, open_store
from tweetpipe.settings import KafkaSettings, SearchSettings
from tweetpipe.waiting import wait_until
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.settings import GeneratorOptions

GROUP = "kafka-to-elastic"
WORDS = re.compile(r"[^\W_]+")


class Sink:
    """A kafka-to-elastic process plus a reader on the same tantivy index."""

    def __init__(
        self,
        kafka: KafkaSettings,
        workdir: Path,
        search: SearchSettings | None = None,
        **env: str,
    ) -> None:
        self.port = free_port()
        self.search = search or SearchSettings(backend="tantivy", tantivy_path=workdir / "index")
        self.env = {
            "KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "KAFKA__STARTUP_TIMEOUT_S": "60",
            "SEARCH__BACKEND": self.search.backend,
            "SEARCH__TANTIVY_PATH": str(self.search.tantivy_path),
            "SEARCH__ELASTICSEARCH_HOSTS": self.search.elasticsearch_hosts,
            "SEARCH__INDEX": self.search.index,
            "ADMIN__PORT": str(self.port),
            "SINK__BATCH_WAIT_MS": "100",
            **env,
        }
        self.workdir = workdir
        self.runs = 0
        self.process: ServiceProcess | None = None
        self._store: SearchStore | None = None

    def start(self, wait_healthy: bool = True) -> ServiceProcess:
        self.runs += 1
        log = self.workdir / f"sink-{self.runs}.log"
        self.process = ServiceProcess("kafka_to_elastic", self.env, log).start()
        if wait_healthy:
            self.process.wait_healthy(self.port)
        return self.process

    @property
    def store(self) -> SearchStore:
        if self._store is None:
            self._store = open_store(self.search)
        return self._store

    def count(self) -> int:
        self.store.refresh()
        return self.store.count()

    def wait_count(self, expected: int, timeout_s: float = 90) -> None:
        wait_until(lambda: self.count() >= expected, timeout_s, f"{expected} indexed tweets")
        time.sleep(0.5)  # anything beyond `expected` would show up now
        assert self.count() == expected

    def close(self) -> None:
        if self.process:
            self.process.kill()
        if self._store:
            self._store.close()


@pytest.fixture
def sink(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[Sink]:
    running = Sink(kafka_settings, tmp_path)
    yield running
    running.close()


def generated(count: int, seed: int) -> list[Tweet]:
    return list(TweetGenerator(GeneratorOptions(seed=seed, count=count)))


def test_every_generated_tweet_is_searchable_exactly_once(
    kafka_settings: KafkaSettings, sink: Sink, tmp_path: Path
) -> None:
    count = 3000
    generator = ServiceProcess(
        "twitter_to_kafka",
        {
            "KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
            "GENERATOR__COUNT": str(count),
            "GENERATOR__RATE": "0",
            "GENERATOR__SEED": "11",
            "ADMIN__PORT": str(free_port()),
        },
        tmp_path / "generator.log",
    ).start()
    sink.start()
    assert generator.wait_exit() == 0, generator.output
    assert f"produced {count} tweets" in generator.output

    records = read_topic(kafka_settings, kafka_settings.tweets_topic, count)
    produced = {t.id: t for t in (Tweet.from_json(r.value) for r in records)}
    assert len(records) == count
    assert len(produced) == count
    for record in records:  # keyed by user, so one user's tweets share a partition
        assert record.key == str(orjson.loads(record.value)["user_id"]).encode()

    sink.wait_count(count)
    for tweet in produced.values():
        assert sink.store.get(tweet.id) == tweet

    mentioning_kafka = [t for t in produced.values() if "kafka" in WORDS.findall(t.text.lower())]
    assert sink.store.count(SearchQuery(text="kafka")) == len(mentioning_kafka)
    top_user, tweets_by_top_user = Counter(t.user_id for t in produced.values()).most_common(1)[0]
    assert sink.store.count(SearchQuery(user_id=top_user)) == tweets_by_top_user
    assert metric_value(sink.port, "tweetpipe_tweets_indexed_total") == count

    assert sink.process is not None
    assert sink.process.terminate() == 0  # SIGTERM: finish the batch, commit, exit cleanly
    assert committed_offsets(kafka_settings, GROUP, kafka_settings.tweets_topic) == (
        partition_counts(records)
    )


def test_replay_from_the_start_changes_nothing(kafka_settings: KafkaSettings, sink: Sink) -> None:
    tweets = generated(1500, seed=5)
    produce_tweets(kafka_settings, tweets)
    sink.start()
    sink.wait_count(len(tweets))
    assert sink.process is not None
    assert sink.process.terminate() == 0

    # Reset the group to the beginning, as `kafka-consumer-groups --reset-offsets` would.
    consumer = KafkaConsumer(
        bootstrap_servers=kafka_settings.servers, group_id=GROUP, enable_auto_commit=False
    )
    partitions = consumer.partitions_for_topic(kafka_settings.tweets_topic) or set()
    tps = [TopicPartition(kafka_settings.tweets_topic, p) for p in partitions]
    consumer.assign(tps)
    consumer.commit({tp: OffsetAndMetadata(0, "", -1) for tp in tps})
    consumer.close(autocommit=False)
    assert set(committed_offsets(kafka_settings, GROUP, kafka_settings.tweets_topic).values()) == {
        0
    }

    sink.start()
    wait_until(
        lambda: metric_value(sink.port, "tweetpipe_tweets_indexed_total") >= len(tweets),
        60,
        "the replay to be indexed again",
    )
    assert sink.count() == len(tweets)
    assert metric_value(sink.port, "tweetpipe_tweets_indexed_total") == len(tweets)


def test_poison_records_go_to_the_dead_letter_topic_and_the_rest_flows(
    kafka_settings: KafkaSettings, sink: Sink
) -> None:
    before, after = generated(400, seed=1)[:200], generated(400, seed=1)[200:]
    valid = before[0].model_dump(mode="json")
    poison: list[tuple[bytes | None, bytes | None, str, str]] = [
        (b"1", b"{this is not json", "MalformedJson", ""),
        (b"2", orjson.dumps({**valid, "id": "not-a-number"}), "SchemaViolation", "id"),
        (b"3", orjson.dumps({**valid, "text": "x" * 25_001}), "SchemaViolation", "text"),
        (b"4", orjson.dumps({**valid, "schema_version": 99}), "SchemaViolation", "schema_version"),
        (b"5", b"[1, 2, 3]", "SchemaViolation", "dictionary"),
        (b"6", None, "EmptyValue", ""),
    ]
    produce_tweets(kafka_settings, before)
    produce(kafka_settings, kafka_settings.tweets_topic, ((k, v) for k, v, _, _ in poison))
    produce_tweets(kafka_settings, after)
    sink.start()
    sink.wait_count(len(before) + len(after))

    dead = read_topic(kafka_settings, kafka_settings.dlq_topic, len(poison))
    assert len(dead) == len(poison)
    by_key = {record.key: record for record in dead}
    for key, value, error, reason_mentions in poison:
        record = by_key[key]
        headers = {k: v.decode() for k, v in record.headers}
        assert record.value == value  # the original bytes, untouched
        assert headers["dlq.stage"] == "kafka-to-elastic"
        assert headers["dlq.error"] == error
        assert reason_mentions in headers["dlq.reason"]
        assert headers["dlq.source.topic"] == kafka_settings.tweets_topic
        assert int(headers["dlq.source.offset"]) >= 0
    assert metric_value(sink.port, "tweetpipe_dead_lettered_total") == len(poison)
    wait_until(
        lambda: (
            sum(committed_offsets(kafka_settings, GROUP, kafka_settings.tweets_topic).values())
            == len(before) + len(after) + len(poison)
        ),
        30,
        "offsets committed past every record, poison included",
    )


def test_services_wait_for_a_late_broker(tmp_path: Path) -> None:
    port = free_port()
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")
    generator = ServiceProcess(
        "twitter_to_kafka",
        {
            "KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "GENERATOR__COUNT": "300",
            "GENERATOR__RATE": "0",
            "ADMIN__PORT": str(free_port()),
        },
        tmp_path / "generator.log",
    ).start()
    sink = Sink(kafka, tmp_path)
    try:
        sink.start(wait_healthy=False)
        assert sink.process is not None
        for service in (generator, sink.process):
            service.wait_for_log(rf"waiting for Kafka broker at 127\.0\.0\.1:{port}", 30)
        with TansuBroker(port, log_path=tmp_path / "broker.log"):
            assert generator.wait_exit() == 0, generator.output
            sink.wait_count(300)
    finally:
        generator.kill()
        sink.close()


def test_store_outage_pauses_the_sink_and_loses_nothing(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    tweets = generated(300, seed=8)
    first, second = tweets[:150], tweets[150:]
    topic = kafka_settings.tweets_topic
    with ElasticsearchServer(tmp_path / "es") as es:
        search = SearchSettings(backend="elasticsearch", elasticsearch_hosts=es.url, index="outage")
        sink = Sink(kafka_settings, tmp_path, search=search, SINK__RETRY_MAX_S="1")
        try:
            produce_tweets(kafka_settings, first)
            sink.start()
            sink.wait_count(len(first))
            wait_until(
                lambda: sum(committed_offsets(kafka_settings, GROUP, topic).values()) == len(first),
                30,
                "the first batch to be committed",
            )

            es.stop()
            produce_tweets(kafka_settings, second)
            assert sink.process is not None
            sink.process.wait_for_log("search store unavailable .* retrying", 60)
            wait_until(
                lambda: metric_value(sink.port, "tweetpipe_sink_retries_total") >= 3,
                60,
                "several retries",
            )
            health = httpx.get(f"http://127.0.0.1:{sink.port}/health")
            assert health.status_code == 503
            assert health.json()["components"]["search"]["status"] == "DOWN"
            # Nothing past the indexed data is committed while the store is down.
            assert sum(committed_offsets(kafka_settings, GROUP, topic).values()) == len(first)

            es.start()
            sink.wait_count(len(tweets))
            for tweet in tweets:
                assert sink.store.get(tweet.id) == tweet
            wait_until(
                lambda: (
                    sum(committed_offsets(kafka_settings, GROUP, topic).values()) == len(tweets)
                ),
                30,
                "every offset committed after recovery",
            )
            assert sink.process.process is not None
            assert sink.process.process.poll() is None  # it kept running throughout
        finally:
            sink.close()


def test_a_record_too_large_to_dead_letter_whole_goes_there_truncated(
    kafka_settings: KafkaSettings, sink: Sink
) -> None:
    """A multi-MB record between valid tweets: the sink keeps running, every valid tweet is
    indexed once, and the record's truncated copy is in the dead-letter topic, with headers."""
    tweets = generated(300, seed=7)
    valid = tweets[0].model_dump(mode="json")
    huge = orjson.dumps({**valid, "text": "x" * OVERSIZED_BYTES})
    produce_tweets(kafka_settings, tweets[:150])
    produce_oversized(kafka_settings, kafka_settings.tweets_topic, b"huge", huge)
    produce_tweets(kafka_settings, tweets[150:])
    sink.start()
    sink.wait_count(len(tweets))

    (dead,) = read_topic(kafka_settings, kafka_settings.dlq_topic, 1)
    headers = assert_truncated_copy(dead, huge, "kafka-to-elastic")
    assert headers["dlq.error"] == "SchemaViolation"
    assert headers["dlq.source.topic"] == kafka_settings.tweets_topic
    assert metric_value(sink.port, "tweetpipe_dead_letters_truncated_total") == 1
    assert sink.process is not None
    assert sink.process.process is not None
    assert sink.process.process.poll() is None, sink.process.output
    wait_until(
        lambda: (
            sum(committed_offsets(kafka_settings, GROUP, kafka_settings.tweets_topic).values())
            == len(tweets) + 1
        ),
        30,
        "offsets committed past the oversized record",
    )
