"""kafka-streams-service against a real broker: exact counts through crashes, scale-out, restore."""

from __future__ import annotations

import random
import re
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from devstack.broker import TansuBroker
from kafka_streams.splitter import input_lag, source_of_key
from kafka_streams.windows import hop_key
from tests.support.issuer import DevIssuer, bearer
from tests.support.kafka import (
    OVERSIZED_BYTES,
    assert_truncated_copy,
    produce,
    produce_oversized,
    produce_tweets,
    read_topic,
)
from tests.support.openapi_contract import assert_contract_holds
from tests.support.ports import free_port
from tests.support.services import ServiceProcess, metric_value
from tweetpipe.kafka import make_producer
from tweetpipe.model import Tweet, WordCount
from tweetpipe.settings import KafkaSettings
from tweetpipe.waiting import wait_until
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.settings import Burst, GeneratorOptions

REPARTITION_TOPIC = "kafka-streams-word-repartition"
WINDOW_S = 60
HOP_S, ADVANCE_S = 180, 60
"""Hopping windows in these tests: 3 minutes, every minute (each tweet counts in three)."""
LENIENT_GRACE_S = 24 * 3600
"""Grace for the tests whose tweets arrive in random time order: none is late."""
BASE = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
WindowKey = tuple[str, datetime, datetime]
"""(word, window start, window end)"""


def tweets(count: int, seed: int, minutes: int = 5) -> list[Tweet]:
    """Generated tweets spread over `minutes` tumbling windows."""
    spread = random.Random(seed)
    return [
        t.model_copy(
            update={"created_at": BASE + timedelta(seconds=spread.randrange(minutes * 60))}
        )
        for t in TweetGenerator(GeneratorOptions(seed=seed, count=count))
    ]


def words(text: str) -> list[str]:
    """The counting rule, restated: lower-case runs of word characters, at most 100 long."""
    return [w for w in re.split(r"\W+", text.lower()) if w and len(w) <= 100]


def window_starts(moment: datetime, size_s: int, advance_s: int) -> list[datetime]:
    """Starts of the windows of `size_s` every `advance_s` seconds that hold `moment`."""
    epoch = int(moment.timestamp())
    latest = epoch - epoch % advance_s
    return [
        datetime.fromtimestamp(start, UTC) for start in range(latest, epoch - size_s, -advance_s)
    ]


def ground_truth(
    batch: list[Tweet], grace_s: int = LENIENT_GRACE_S, partitions: list[int] | None = None
) -> tuple[Counter[str], Counter[WindowKey], Counter[WindowKey], int]:
    """All-time totals, tumbling and hopping window counts, and how many tweets were late.

    Event time restated: per input partition (`partitions[i]` is tweet i's; one partition if
    not given), stream time is the latest tweet time so far; a tweet is left out of a window
    whose end + grace is not after it, and is late if that happened to any of its windows."""
    totals: Counter[str] = Counter()
    tumbling: Counter[WindowKey] = Counter()
    hopping: Counter[WindowKey] = Counter()
    stream_time: dict[int, datetime] = {}
    late = 0
    grace = timedelta(seconds=grace_s)
    for i, tweet in enumerate(batch):
        partition = partitions[i] if partitions else 0
        now = stream_time[partition] = max(
            stream_time.get(partition, tweet.created_at), tweet.created_at
        )
        tweet_words = words(tweet.text)
        missed = False
        for size, advance, counts in (
            (WINDOW_S, WINDOW_S, tumbling),
            (HOP_S, ADVANCE_S, hopping),
        ):
            for start in window_starts(tweet.created_at, size, advance):
                end = start + timedelta(seconds=size)
                if end + grace <= now:
                    missed = True
                    continue
                for word in tweet_words:
                    counts[(word, start, end)] += 1
        late += missed
        totals.update(tweet_words)
    return totals, tumbling, hopping, late


class Instance:
    def __init__(self, kafka: KafkaSettings, workdir: Path, name: str, issuer: DevIssuer) -> None:
        self.name = name
        self.token = issuer.password_token("app_user")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state_dir = workdir / "state"
        self.workdir = workdir
        self.env = {
            "KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "ADMIN__PORT": str(self.port),
            "AUTH__ISSUER_URL": issuer.realm_url,
            "STREAMS__INSTANCE_ID": name,
            "STREAMS__STATE_DIR": str(self.state_dir),
            "STREAMS__WINDOW_SECONDS": str(WINDOW_S),
            "STREAMS__HOP_SECONDS": str(HOP_S),
            "STREAMS__HOP_ADVANCE_SECONDS": str(ADVANCE_S),
            "STREAMS__GRACE_SECONDS": str(LENIENT_GRACE_S),
            "STREAMS__EMIT_INTERVAL_S": "0.5",
            "STREAMS__BATCH_SIZE": "500",
        }
        self.runs = 0
        self.process: ServiceProcess | None = None

    def start(self) -> Instance:
        self.runs += 1
        log = self.workdir / f"{self.name}-{self.runs}.log"
        self.process = ServiceProcess("kafka_streams", self.env, log).start()
        self.process.wait_healthy(self.port)
        return self

    def kill(self) -> None:
        if self.process:
            self.process.kill()

    def get(self, path: str, token: str | None = "", **params: Any) -> httpx.Response:
        """GET as `app_user`; `token=None` sends none."""
        headers = bearer(self.token if token == "" else token)
        return httpx.get(self.url + path, params=params, headers=headers, timeout=10)

    def count(self, word: str) -> int | None:
        reply = self.get(f"/get-word-count-by-word/{word}")
        return int(reply.json()["word_count"]) if reply.status_code == 200 else None


@pytest.fixture
def instances(
    kafka_settings: KafkaSettings, tmp_path: Path, dev_issuer: DevIssuer
) -> Iterator[Callable[[str], Instance]]:
    started: list[Instance] = []

    def make(name: str) -> Instance:
        instance = Instance(kafka_settings, tmp_path / name, name, dev_issuer)
        started.append(instance)
        return instance

    yield make
    for instance in started:
        instance.kill()


def assert_totals(instance: Instance, totals: Counter[str], sample: int = 60) -> None:
    """Every instance answers with the exact all-time counts (top words and a random sample)."""
    top = [w for w, _ in totals.most_common(sample)]
    others = random.Random(1).sample(sorted(totals), min(sample, len(totals)))
    for word in [*top, *others]:
        assert instance.count(word) == totals[word], word
    assert instance.count("zzzneverseen") == 0


def wait_for_totals(
    instances: list[Instance], totals: Counter[str], timeout_s: float = 120
) -> None:
    """Until every instance gives the exact counts; then they must stay exact."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            for instance in instances:
                assert_totals(instance, totals)
            break
        except (AssertionError, httpx.HTTPError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    time.sleep(1.0)  # a double count would show up now
    for instance in instances:
        assert_totals(instance, totals)


def published(kafka: KafkaSettings, topic: str) -> dict[WindowKey, WordCount]:
    """Per (word, window) on `topic`, the largest count published (what the analytics service
    keeps), final if any update said so."""
    consumer = KafkaConsumer(
        bootstrap_servers=kafka.servers,
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    latest: dict[WindowKey, WordCount] = {}
    idle = 0
    while idle < 3:
        polled = consumer.poll(timeout_ms=500)
        idle = 0 if polled else idle + 1
        for records in polled.values():
            for record in records:
                update = WordCount.from_json(record.value)
                key = (update.word, update.window_start, update.window_end)
                kept = latest.get(key)
                if kept is not None:
                    assert not (kept.final and update.word_count != kept.word_count), key
                    update = update.model_copy(
                        update={
                            "word_count": max(kept.word_count, update.word_count),
                            "final": kept.final or update.final,
                        }
                    )
                latest[key] = update
    consumer.close()
    return latest


def analytics_windows(kafka: KafkaSettings) -> dict[WindowKey, int]:
    """Tumbling-window counts on the analytics topic (one-minute windows only)."""
    counts = {k: u.word_count for k, u in published(kafka, kafka.analytics_topic).items()}
    assert all(end - start == timedelta(seconds=WINDOW_S) for _, start, end in counts)
    return counts


def hopping_windows(kafka: KafkaSettings) -> dict[WindowKey, int]:
    """Hopping-window counts on their own topic."""
    counts = {k: u.word_count for k, u in published(kafka, kafka.analytics_hopping_topic).items()}
    assert all(end - start == timedelta(seconds=HOP_S) for _, start, end in counts)
    return counts


def wait_for_windows(
    kafka: KafkaSettings, tumbling: Counter[WindowKey], hopping: Counter[WindowKey]
) -> None:
    wait_until(lambda: analytics_windows(kafka) == dict(tumbling), 60, "tumbling window counts")
    wait_until(lambda: hopping_windows(kafka) == dict(hopping), 60, "hopping window counts")


def stored_windows(instance: Instance) -> dict[tuple[str, int], int]:
    """Every window count in the instance's stores, by (word, window key)."""
    counts: dict[tuple[str, int], int] = {}
    for path in sorted((instance.state_dir / instance.name).glob("partition-*.sqlite")):
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT word, window, count FROM counts WHERE window != ?", (-1,))
            counts.update(((w, win), c) for w, win, c in rows)
    return counts


def store_keyed(
    tumbling: Counter[WindowKey], hopping: Counter[WindowKey]
) -> dict[tuple[str, int], int]:
    """The ground truth's window counts keyed as the stores key them (`kafka_streams.windows`)."""
    keyed = {(w, int(start.timestamp())): c for (w, start, _), c in tumbling.items()}
    keyed.update(
        ((w, hop_key(int(start.timestamp()), HOP_S)), c) for (w, start, _), c in hopping.items()
    )
    return keyed


def test_counts_equal_ground_truth_with_windows(
    kafka_settings: KafkaSettings, instances: Callable[[str], Instance], dev_issuer: DevIssuer
) -> None:
    batch = tweets(3000, seed=21)
    totals, windows, hops, _ = ground_truth(batch)
    produce_tweets(kafka_settings, batch)
    instance = instances("a").start()
    wait_for_totals([instance], totals)
    wait_for_windows(kafka_settings, windows, hops)

    top = instance.get("/words/top", window=BASE.isoformat(), n=5).json()
    expected = sorted(
        ((w, c) for (w, start, _), c in windows.items() if start == BASE),
        key=lambda x: (-x[1], x[0]),
    )[:5]
    assert [(x["word"], x["word_count"]) for x in top["words"]] == expected

    rejected = instance.get("/words/top", window="0.5")  # a number is not an ISO-8601 moment
    assert rejected.status_code == 422
    assert rejected.json()["detail"][0]["loc"] == ["query", "window"]

    # The interactive queries are for the application's members only.
    assert instance.get("/words/top", token=None).status_code == 401
    guest = instance.get(
        "/get-word-count-by-word/kafka", token=dev_issuer.password_token("app_guest")
    )
    assert guest.status_code == 403
    assert instance.get("/health", token=None).status_code == 200
    assert metric_value(instance.port, "tweetpipe_streams_tweets_processed_total") == len(batch)
    # one repartition record per word per batch, not one per occurrence
    wait_until(
        lambda: metric_value(instance.port, "tweetpipe_streams_caught_up") == 1, 30, "caught up"
    )
    deltas = metric_value(instance.port, "tweetpipe_streams_repartition_records_total")
    assert deltas < sum(totals.values()) / 2
    assert_input_lag_reported(kafka_settings, int(deltas))


def assert_input_lag_reported(kafka: KafkaSettings, deltas: int) -> None:
    """Every delta says how much of its input partition was still unread: some while the
    pre-produced tweets were read in batches of 500, none by the last batch of each partition
    (what tells the counter the pipeline has caught up)."""
    newest: dict[int, tuple[tuple[int, int], int | None]] = {}
    lags = []
    for record in read_topic(kafka, REPARTITION_TOPIC, deltas):
        source = source_of_key(record.key)
        assert source is not None, record.key
        lag = input_lag(record)
        assert lag is not None, record.headers
        assert lag >= 0
        lags.append(lag)
        if source.partition not in newest or source.position > newest[source.partition][0]:
            newest[source.partition] = (source.position, lag)
    assert max(lags) > 0
    assert len(newest) == 3  # every input partition had tweets
    assert all(lag == 0 for _, lag in newest.values()), newest


def test_kill_9_at_random_points_neither_loses_nor_double_counts(
    kafka_settings: KafkaSettings, instances: Callable[[str], Instance]
) -> None:
    batch = tweets(12_000, seed=22)
    totals, windows, hops, _ = ground_truth(batch)
    instance = instances("a").start()
    chaos = random.Random(7)
    for chunk in range(6):
        produce_tweets(kafka_settings, batch[chunk * 2000 : (chunk + 1) * 2000])
        time.sleep(chaos.uniform(0.05, 1.5))
        instance.kill()  # SIGKILL: no chance to finish a batch or a transaction
        instance.start()
    wait_for_totals([instance], totals, timeout_s=180)
    wait_for_windows(kafka_settings, windows, hops)


def test_crash_mid_transaction_counts_each_tweet_once(
    kafka_settings: KafkaSettings, instances: Callable[[str], Instance]
) -> None:
    """Crashes with part of a split transaction already on the broker: the local broker hands
    those aborted records to `read_committed` readers, so only the dedupe keeps counts exact."""
    batch = tweets(6000, seed=26)
    totals, windows, hops, _ = ground_truth(batch)
    produce_tweets(kafka_settings, batch)
    instance = instances("a")
    chaos = random.Random(3)
    for _ in range(4):
        instance.env["STREAMS__CRASH_AFTER_DELTAS"] = str(chaos.randint(1, 6))
        instance.start()
        assert instance.process is not None
        assert instance.process.wait_exit(timeout_s=90) != 0, instance.process.output
        assert "split stage process exited with code 137" in instance.process.output
        assert "crashing mid-transaction on purpose" in instance.process.output
    del instance.env["STREAMS__CRASH_AFTER_DELTAS"]
    instance.start()
    wait_for_totals([instance], totals, timeout_s=180)
    wait_for_windows(kafka_settings, windows, hops)
    assert metric_value(instance.port, "tweetpipe_streams_duplicate_deltas_total") > 0


def test_scale_out_with_rebalance_mid_run(
    kafka_settings: KafkaSettings, instances: Callable[[str], Instance]
) -> None:
    batch = tweets(6000, seed=23)
    totals, windows, hops, _ = ground_truth(batch)
    first, second = instances("a").start(), instances("b").start()
    produce_tweets(kafka_settings, batch[:3000])
    third = instances("c").start()  # joins mid-run: partitions move between instances
    produce_tweets(kafka_settings, batch[3000:])
    wait_for_totals([first, second, third], totals, timeout_s=180)
    wait_for_windows(kafka_settings, windows, hops)
    answered_by = {
        first.get(f"/get-word-count-by-word/{w}").json()["answered_by"] for w in list(totals)[:200]
    }
    assert len(answered_by) >= 2  # words really live on different instances (forwarded with
    # the caller's token: the owner checks it too)
    top = first.get("/words/top", window=BASE.isoformat(), n=5)
    assert top.status_code == 200
    assert len(top.json()["words"]) == 5  # gathered from every peer


def test_empty_state_dir_is_rebuilt_from_the_changelog(
    kafka_settings: KafkaSettings, instances: Callable[[str], Instance]
) -> None:
    first, second = tweets(4000, seed=24)[:2000], tweets(4000, seed=24)[2000:]
    instance = instances("a").start()
    produce_tweets(kafka_settings, first)
    wait_for_totals([instance], ground_truth(first)[0])
    assert instance.process is not None
    assert instance.process.terminate() == 0
    shutil.rmtree(instance.state_dir)

    instance.start()
    produce_tweets(kafka_settings, second)
    totals, tumbling, hopping, _ = ground_truth(first + second)
    wait_for_totals([instance], totals)
    assert metric_value(instance.port, "tweetpipe_streams_restored_records_total") > 0
    assert instance.process is not None
    assert "restored partition" in instance.process.output
    # The window counts came back too (packed a bucket of words to a record): the first
    # half's, restored, plus the second half's, counted on top, in the same windows.
    assert stored_windows(instance) == store_keyed(tumbling, hopping)


def test_bad_tweets_are_dead_lettered_and_counting_goes_on(
    kafka_settings: KafkaSettings, instances: Callable[[str], Instance]
) -> None:
    batch = tweets(500, seed=25)
    produce_tweets(kafka_settings, batch[:250])
    produce(
        kafka_settings, kafka_settings.tweets_topic, [(b"1", b"not json"), (b"2", b'{"id": 1}')]
    )
    produce_tweets(kafka_settings, batch[250:])
    instance = instances("a").start()
    wait_for_totals([instance], ground_truth(batch)[0])
    dead = read_topic(kafka_settings, kafka_settings.dlq_topic, 2)
    reasons = {r.key: dict(r.headers) for r in dead}
    assert reasons[b"1"]["dlq.error"] == b"MalformedJson"
    assert reasons[b"2"]["dlq.error"] == b"SchemaViolation"
    assert reasons[b"2"]["dlq.stage"] == b"kafka-streams-service-split"


def test_a_record_too_large_to_dead_letter_whole_does_not_stop_counting(
    kafka_settings: KafkaSettings, instances: Callable[[str], Instance]
) -> None:
    """The split stage dead-letters a multi-MB record truncated, inside its transaction, and
    moves on: every valid tweet around it is counted exactly once."""
    batch = tweets(600, seed=26)
    huge = orjson.dumps({**batch[0].model_dump(mode="json"), "text": "kafka " * 1_000_000})
    produce_tweets(kafka_settings, batch[:300])
    produce_oversized(kafka_settings, kafka_settings.tweets_topic, b"huge", huge)
    produce_tweets(kafka_settings, batch[300:])
    instance = instances("a").start()
    wait_for_totals([instance], ground_truth(batch)[0])
    (dead,) = read_topic(kafka_settings, kafka_settings.dlq_topic, 1)
    headers = assert_truncated_copy(dead, huge, "kafka-streams-service-split")
    assert headers["dlq.error"] == "SchemaViolation"
    assert instance.process is not None
    assert "giving up" not in instance.process.output


def test_a_broker_that_restarted_empty_keeps_the_counts_moving(
    tmp_path: Path, instances: Callable[[str], Instance]
) -> None:
    """The local broker keeps topics in memory. After it restarts empty, the counter's store on
    disk points past the new topics' end: it keeps its counts, republishes them, and counts the
    new tweets from the new topics' start. Counts = before the restart + the tweets since."""
    first, second = tweets(4000, seed=27)[:2000], tweets(4000, seed=27)[2000:]
    port = free_port()
    with TansuBroker(port, log_path=tmp_path / "broker-1.log") as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, startup_timeout_s=30)
        instance = instances("a")
        instance.env["KAFKA__BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers
        instance.start()
        produce_tweets(kafka, first)
        wait_for_totals([instance], ground_truth(first)[0])
        assert instance.process is not None
        assert instance.process.terminate() == 0
    with TansuBroker(port, log_path=tmp_path / "broker-2.log"):
        instance.start()
        produce_tweets(kafka, second)
        wait_for_totals([instance], ground_truth(first + second)[0])
        assert metric_value(instance.port, "tweetpipe_streams_stores_rebased_total") > 0
        assert instance.process is not None
        assert "the broker's topics are newer than the store" in instance.process.output
        # The kept counts are in the new changelog: a fresh instance restores all of them.
        shutil.rmtree(instance.state_dir)
        assert instance.process.terminate() == 0
        instance.start()
        wait_for_totals([instance], ground_truth(first + second)[0])


def test_bad_records_on_the_repartition_topic_are_dead_lettered_by_the_counter(
    kafka_settings: KafkaSettings, instances: Callable[[str], Instance]
) -> None:
    """Only the splitter should write the internal topic, but any client can: the count stage
    dead-letters what is not a delta (oversized included) and keeps counting."""
    batch = tweets(400, seed=28)
    instance = instances("a").start()
    produce_tweets(kafka_settings, batch[:200])
    wait_for_totals([instance], ground_truth(batch[:200])[0])
    repartition = REPARTITION_TOPIC
    produce(kafka_settings, repartition, [(b"junk", b"not a delta")])
    huge = b'{"src": [0, 0, 0, 0], "words": "' + b"x" * OVERSIZED_BYTES + b'"}'
    produce_oversized(kafka_settings, repartition, b"huge", huge)
    produce_tweets(kafka_settings, batch[200:])
    wait_for_totals([instance], ground_truth(batch)[0])
    dead = {r.key: r for r in read_topic(kafka_settings, kafka_settings.dlq_topic, 2)}
    assert dict(dead[b"junk"].headers)["dlq.error"] == b"MalformedDelta"
    assert dead[b"junk"].value == b"not a delta"
    headers = assert_truncated_copy(dead[b"huge"], huge, "kafka-streams-service-count")
    assert headers["dlq.error"] == "MalformedDelta"


def test_a_run_of_letters_too_long_to_be_a_word_is_not_counted_and_counting_goes_on(
    kafka_settings: KafkaSettings, instances: Callable[[str], Instance]
) -> None:
    """A 150-letter "word" fits no store (the analytics table holds 100): it is not counted,
    the tweet's other words are, and the counter keeps running (it used to crash emitting it)."""
    batch = tweets(300, seed=29)
    odd = batch[100].model_copy(update={"text": "kafka " + "z" * 150 + " streams"})
    batch[100] = odd
    produce_tweets(kafka_settings, batch)
    instance = instances("a").start()
    totals, windows, hops, _ = ground_truth(batch)
    assert "z" * 150 not in totals
    wait_for_totals([instance], totals)
    wait_for_windows(kafka_settings, windows, hops)


def produce_to_partitions(kafka: KafkaSettings, placed: list[tuple[int, Tweet]]) -> None:
    """Tweets onto chosen input partitions, in this order (each partition keeps it)."""
    producer = make_producer(kafka, client_id="test-placed")
    for partition, tweet in placed:
        producer.send(kafka.tweets_topic, key=tweet.key, value=tweet.to_json(), partition=partition)
    producer.flush()
    producer.close()


def test_late_tweets_inside_grace_count_outside_grace_only_in_totals(
    kafka_settings: KafkaSettings, instances: Callable[[str], Instance]
) -> None:
    """Per input partition, stream time runs ahead and tweets arrive late by varying amounts:
    within grace they update their windows, after it only the all-time totals and the late
    metric. Windows whose end + grace every partition has passed are published final."""
    grace_s = 30
    shuffle = random.Random(5)
    placed: list[tuple[int, Tweet]] = []
    for i, tweet in enumerate(tweets(1800, seed=31, minutes=1)):
        partition = i % 3
        # mostly in order, minute by minute, with some tweets up to 2 minutes behind
        offset_s = i // 3 + (-shuffle.randrange(121) if shuffle.random() < 0.2 else 0)
        moment = BASE + timedelta(seconds=max(offset_s, 0))
        placed.append((partition, tweet.model_copy(update={"created_at": moment})))
    batch = [t for _, t in placed]
    totals, windows, hops, late = ground_truth(batch, grace_s, [p for p, _ in placed])
    assert 0 < late < len(batch)
    instance = instances("a")
    instance.env["STREAMS__GRACE_SECONDS"] = str(grace_s)
    instance.start()
    produce_to_partitions(kafka_settings, placed)
    wait_for_totals([instance], totals)  # every tweet, late or not
    wait_for_windows(kafka_settings, windows, hops)
    assert metric_value(instance.port, "tweetpipe_streams_late_tweets_total") == late

    watermark = min(
        max(t.created_at for p, t in placed if p == partition) for partition in range(3)
    )

    grace = timedelta(seconds=grace_s)
    for topic in (kafka_settings.analytics_topic, kafka_settings.analytics_hopping_topic):
        updates = published(kafka_settings, topic)
        for (word, start, end), update in updates.items():
            assert update.final == (end + grace <= watermark), (word, start, end)
        finals = [u.final for u in updates.values()]
        assert any(finals)
        assert not all(finals)
    assert metric_value(instance.port, "tweetpipe_streams_windows_finalised_total") > 0


def test_the_openapi_spec_is_the_contract(
    kafka_settings: KafkaSettings, instances: Callable[[str], Instance], tmp_path: Path
) -> None:
    """schemathesis, every check and phase, with a real token, over counted tweets."""
    batch = tweets(300, seed=31)
    produce_tweets(kafka_settings, batch)
    instance = instances("a").start()
    wait_for_totals([instance], ground_truth(batch)[0])
    assert_contract_holds(instance.url, instance.token, tmp_path)


class SteppingClock:
    """A clock that moves `step_s` each time it is read: tweets `step_s` apart from `start`."""

    def __init__(self, start: datetime, step_s: float) -> None:
        self.now = start.timestamp()
        self.step_s = step_s

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


def test_an_injected_burst_is_rising_within_two_windows_and_a_flat_term_is_not(
    kafka_settings: KafkaSettings, instances: Callable[[str], Instance]
) -> None:
    """The generator's burst: from minute 12, for 4 minutes, 30% of tweets carry #LaunchDay.
    The live hopping window (3 minutes, every minute) reports it rising within two steps of
    its start; a hashtag at a steady rate is not, nor the burst term before it began."""
    burst_at = BASE + timedelta(minutes=12)
    options = GeneratorOptions(
        seed=41,
        count=3000,
        bursts=[Burst(term="#LaunchDay", after_s=720, duration_s=240, share=0.3)],
    )
    batch = list(TweetGenerator(options, clock=SteppingClock(BASE, 0.4)))
    assert sum("#LaunchDay" in t.text for t in batch) > 100
    produce_tweets(kafka_settings, batch)
    instance = instances("a").start()
    wait_for_totals([instance], ground_truth(batch)[0])

    def rising(window_end: datetime | None = None, **params: Any) -> dict[str, Any]:
        if window_end is not None:
            params["window"] = (window_end - timedelta(seconds=HOP_S)).isoformat()
        reply = instance.get("/words/trending", **params)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    def terms(answer: dict[str, Any]) -> list[str]:
        return [t["term"] for t in answer["trending"]]

    assert "launchday" not in terms(rising(burst_at, n=100))
    for steps in (1, 2):
        answer = rising(burst_at + steps * timedelta(seconds=ADVANCE_S), n=100)
        assert terms(answer)[0] == "launchday", answer
        assert "devops" not in terms(answer)  # a topic hashtag at its usual rate
        (launch,) = [t for t in answer["trending"] if t["term"] == "launchday"]
        assert launch["baseline"] == 0
        assert launch["count"] >= 5

    newest = int(max(t.created_at for t in batch).timestamp())
    live = rising(n=5)
    live_start = newest - newest % ADVANCE_S + ADVANCE_S - HOP_S
    assert live["window_start"] == datetime.fromtimestamp(live_start, UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert live["final"] is False
    assert metric_value(instance.port, "tweetpipe_streams_trending_terms") == len(live["trending"])
    for params in ({"n": 0}, {"n": 101}, {"min_count": 0}, {"min_score": -1}, {"window": "soon"}):
        reply = instance.get("/words/trending", **params)
        assert reply.status_code == 422, params
        assert reply.json()["detail"][0]["loc"][-1] == next(iter(params))
