"""Tolerant reader: a newer producer's fields and long posts flow through every consumer.

The sink, the word count and the analytics service run as processes on one broker; the topic
holds generated tweets, tweets carrying fields the model does not know, and long posts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.support.issuer import DevIssuer
from tests.support.kafka import produce, produce_tweets, read_topic
from tests.support.services import metric_value
from tests.test_sink import Sink
from tests.test_streams import Instance, ground_truth, tweets, wait_for_totals
from tweetpipe.model import Tweet
from tweetpipe.search import SearchQuery
from tweetpipe.settings import KafkaSettings, TweetLimits
from tweetpipe.waiting import wait_until

NEWER_FIELDS = {"retweet_count": 7, "source": "web", "edit_history": {"ids": [1, 2]}}


def _with_fields(tweet: Tweet, **fields: Any) -> bytes:
    return orjson.dumps({**tweet.model_dump(mode="json"), **fields})


def _long_post(tweet: Tweet, length: int) -> Tweet:
    """A post of exactly `length` code points (mixed scripts: code points, not bytes)."""
    unit = "Kafka streams 流処理 scale out. "
    text = (unit * (length // len(unit) + 1))[:length]
    return tweet.model_copy(update={"text": text})


def test_unknown_fields_and_long_posts_are_indexed_and_counted(
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    dev_issuer: DevIssuer,
) -> None:
    batch = tweets(300, seed=31)
    plain, newer, long = batch[:200], batch[200:260], batch[260:]
    long = [_long_post(t, n) for t, n in zip(long, [281, 4000, 25_000] * 20, strict=False)]
    too_long = _long_post(batch[0].model_copy(update={"id": 2**62}), 25_001)

    produce_tweets(kafka_settings, plain)
    produce(
        kafka_settings,
        kafka_settings.tweets_topic,
        [(t.key, _with_fields(t, **NEWER_FIELDS)) for t in newer]
        + [(too_long.key, too_long.to_json())],
    )
    produce_tweets(kafka_settings, long)

    sink = Sink(kafka_settings, tmp_path / "sink")
    (tmp_path / "sink").mkdir()
    counter = Instance(kafka_settings, tmp_path / "counter", "a", dev_issuer)
    try:
        sink.start()
        counter.start()
        expected = plain + newer + long
        sink.wait_count(len(expected))
        wait_for_totals([counter], ground_truth(expected)[0])

        assert [sink.store.get(t.id) for t in newer] == newer  # contract fields, as sent
        assert [sink.store.get(p.id) for p in long] == long  # whole texts, not truncated
        assert sink.store.count(SearchQuery(ids=frozenset(p.id for p in long))) == len(long)

        # only the post over the default limit (25,000 code points) is a dead letter, by both
        dead = read_topic(kafka_settings, kafka_settings.dlq_topic, 2)
        assert [r.key for r in dead] == [too_long.key] * 2
        stages = {dict(r.headers)["dlq.stage"] for r in dead}
        assert stages == {b"kafka-to-elastic", b"kafka-streams-service-split"}
        assert {dict(r.headers)["dlq.error"] for r in dead} == {b"SchemaViolation"}
        assert all(b"25000" in dict(r.headers)["dlq.reason"] for r in dead)
        assert metric_value(sink.port, "tweetpipe_dead_lettered_total") == 1
    finally:
        sink.close()
        counter.kill()


def test_the_text_limit_is_a_setting(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    batch = tweets(50, seed=32)
    long = _long_post(batch[0], 1000)
    produce_tweets(kafka_settings, [*batch[1:], long])
    sink = Sink(kafka_settings, tmp_path, TWEETS__MAX_TEXT_LENGTH="999")
    try:
        sink.start()
        sink.wait_count(len(batch) - 1)
        dead = read_topic(kafka_settings, kafka_settings.dlq_topic, 1)
        assert [r.key for r in dead] == [long.key]
        assert b"999" in dict(dead[0].headers)["dlq.reason"]
        wait_until(
            lambda: metric_value(sink.port, "tweetpipe_dead_lettered_total") == 1, 30, "metric"
        )
    finally:
        sink.close()
    assert TweetLimits().max_text_length == 25_000
