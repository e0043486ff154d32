"""The split stage's per-batch work: `count_batch` (the word count's hot loop) against the
counting rule written out plainly, and the delta records it writes."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from kafka_streams.splitter import (
    INPUT_LAG,
    Source,
    decode_delta,
    encode_delta,
    input_lag,
    source_key,
    source_of_key,
)
from kafka_streams.tokenize import count_batch
from kafka_streams.windows import ALL_TIME, Windows
from tests.support.kafka import consumer_record
from tweetpipe.model import Tweet
from tweetpipe.text import MAX_WORD_LENGTH, STOP_WORDS, words
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.settings import GeneratorOptions

WINDOWS = Windows(tumbling_s=60, hop_s=300, advance_s=60, grace_s=30)


def reference(
    tweets: list[Tweet], windows: Windows, stop_words: frozenset[str], stream_time: int
) -> tuple[dict[str, dict[int, int]], int, int]:
    """One increment per occurrence and open window, words in first-occurrence order."""
    counts: dict[str, dict[int, int]] = {}
    late = 0
    for tweet in tweets:
        moment = int(tweet.created_at.timestamp())
        stream_time = max(stream_time, moment)
        keys, was_late = windows.keys(moment, stream_time)
        late += was_late
        for word in words(tweet.text, stop_words):
            per_window = counts.setdefault(word, {})
            for key in [*keys, ALL_TIME]:
                per_window[key] = per_window.get(key, 0) + 1
    return counts, stream_time, late


ODD_TEXTS = [
    "a" * 150 + " b " + "c" * MAX_WORD_LENGTH + " " + "d" * (MAX_WORD_LENGTH + 1),
    "\u00e9" * (MAX_WORD_LENGTH - 1) + "_x",  # _ is a word character
    "__ 1_2 \u0663\u0663 x\u200by",  # Arabic digits; a zero-width space
    "",
    "!!! ... ???",
    "\u01c5ungla \u03a3\u0391\u03a3 stra\u00dfe \u0130stanbul",  # lower() changes lengths
    "kafka,kafka;KAFKA\nkafka\tkafka",
]


@pytest.mark.parametrize("stop_words", [frozenset(), STOP_WORDS])
def test_words_are_the_runs_between_non_word_characters_up_to_the_limit(
    stop_words: frozenset[str],
) -> None:
    """The rule written out plainly: lower-case, split on non-word characters, leave out
    empty pieces, runs over the limit and stop words."""
    texts = [t.text for t in TweetGenerator(GeneratorOptions(seed=5, count=500))] + ODD_TEXTS
    for text in texts:
        plain = [
            w
            for w in re.split(r"\W+", text.lower())
            if w and len(w) <= MAX_WORD_LENGTH and w not in stop_words
        ]
        assert words(text, stop_words) == plain, text


def shuffled_in_time(count: int, seed: int) -> list[Tweet]:
    """Tweets over several minutes, every so often one from minutes ago (late)."""
    rnd = random.Random(seed)
    tweets = list(TweetGenerator(GeneratorOptions(seed=seed, count=count)))
    return [
        t.model_copy(
            update={
                "created_at": t.created_at
                + timedelta(seconds=i // 20 - (rnd.choice((90, 400)) if rnd.random() < 0.05 else 0))
            }
        )
        for i, t in enumerate(tweets)
    ]


@pytest.mark.parametrize(("count", "seed"), [(1, 1), (300, 2), (3000, 3)])
@pytest.mark.parametrize("stop_words", [frozenset(), STOP_WORDS])
def test_counts_equal_one_increment_per_occurrence_and_window(
    count: int, seed: int, stop_words: frozenset[str]
) -> None:
    tweets = shuffled_in_time(count, seed)
    start = int(tweets[0].created_at.timestamp()) - 5
    expected, stream_time, late = reference(tweets, WINDOWS, stop_words, start)
    batch = count_batch(tweets, WINDOWS, stop_words, start)
    assert batch.counts == expected
    # The order decides which repartition chunk a word goes in: a replay must repeat it.
    assert list(batch.counts) == list(expected)
    assert (batch.stream_time, batch.late) == (stream_time, late)
    assert count < 300 or late > 0  # the input does exercise late tweets


def test_an_empty_batch_keeps_the_stream_time() -> None:
    batch = count_batch([], WINDOWS, frozenset(), 1_796_000_000)
    assert (batch.counts, batch.stream_time, batch.late) == ({}, 1_796_000_000, 0)


def test_a_delta_record_is_the_documented_json_and_decodes_back() -> None:
    """The repartition record's format (window keys as JSON strings) is read by every counter
    instance, older ones included: the bytes are pinned, and decoding gives the deltas back."""
    source = Source(partition=2, first=10, last=19, chunk=1)
    deltas = {"kafka": {1_796_187_960: 3, ALL_TIME: 3}, "java": {1_796_187_960: 1, ALL_TIME: 1}}
    encoded = encode_delta(source, deltas, stream_time=1_796_188_017)
    assert encoded == (
        b'{"src":[2,10,19,1],"words":{"kafka":{"1796187960":3,"-1":3},'
        b'"java":{"1796187960":1,"-1":1}},"t":1796188017}'
    )
    assert decode_delta(encoded) == (source, deltas, 1_796_188_017)


def test_a_deltas_key_names_its_source_and_odd_keys_name_none() -> None:
    """The counter reads a delta's source from its key to follow the split stage's progress
    without decoding the words; a key no splitter wrote is no source."""
    source = Source(partition=2, first=10, last=19, chunk=1)
    assert source_key(source) == b"2:10-19:1"
    assert source_of_key(source_key(source)) == source
    for odd in (None, b"", b"junk", b"2:10:1", b"2:10-19", b"a:1-2:3", b"2:10-19:1:4", b"\xff"):
        assert source_of_key(odd) is None, odd


def delta_record(headers: list[tuple[str, bytes | None]] | None) -> ConsumerRecord:
    return consumer_record("repartition", b"{}", key=b"0:0-0:0", headers=headers)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(INPUT_LAG, b"0")], 0),
        ([("traceparent", b"00-ab-cd-01"), (INPUT_LAG, b"1234")], 1234),
        ([], None),
        (None, None),
        ([(INPUT_LAG, b"many")], None),
        ([(INPUT_LAG, None)], None),
        ([(INPUT_LAG, b"\xff")], None),
    ],
)
def test_the_input_lag_header_is_read_or_unknown(
    headers: list[tuple[str, bytes | None]] | None, expected: int | None
) -> None:
    """Unknown (no header: an older splitter; or an odd one) never counts as caught up."""
    assert input_lag(delta_record(headers)) == expected
