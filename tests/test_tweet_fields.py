"""The stages' tweet checks (msgspec: the split stage's fields, the sink's documents) against the
contract (`Tweet`, pydantic): the same verdict and dead-letter reason for every record, the same
document where it is indexed, and the fast check never admits what the contract refuses. The
records are the odd ones a careless or hostile upstream sends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from tests.support.kafka import consumer_record
from tweetpipe.records import DecodedBatch, decode, decode_documents, decode_fields
from tweetpipe.search import document
from tweetpipe.settings import TweetLimits
from tweetpipe.tweet_fields import checked, checked_document
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.settings import GeneratorOptions

LIMITS = TweetLimits(max_text_length=300)
GOOD_TIME = b"2026-12-01T00:00:00Z"


def tweet(
    text: bytes = b"hello world",
    created_at: bytes = GOOD_TIME,
    lang: bytes = b"en",
    extra: bytes = b"",
) -> bytes:
    return b'{"id":7,"user_id":2,"text":"%s","created_at":"%s","lang":"%s"%s}' % (
        text,
        created_at,
        lang,
        extra,
    )


ODD = [
    # text
    tweet(b""),
    tweet(b"\\ud800 lone surrogate"),
    tweet(b"\\udc00"),
    tweet(b"nul \\u0000 inside"),
    tweet(b"\xff invalid utf-8"),
    tweet(b"\xed\xa0\x80 encoded surrogate"),
    tweet("caf\u00e9 \u65e5\u672c".encode()),
    tweet(b"x" * 300),
    tweet(b"x" * 301),  # over the limit
    # time
    tweet(created_at=b"2026-12-01T00:00:00+05:30"),
    tweet(created_at=b"2026-12-01T00:00:00-00:00"),
    tweet(created_at=b"2026-12-01T00:00:00"),  # no offset
    tweet(created_at=b"2026-12-01 00:00:00Z"),
    tweet(created_at=b"2026-12-01t00:00:00z"),
    tweet(created_at=b"2026-12-01T00:00:59.9999999Z"),  # rounding would change the second
    tweet(created_at=b"2026-12-01T00:00:00.123456Z"),
    tweet(created_at=b"2026-12-01T00:00:00.1Z"),
    tweet(created_at=b"2026-12-01T24:00:00Z"),
    tweet(created_at=b"2026-02-30T00:00:00Z"),
    tweet(created_at=b"2026-12-01T00:00:60Z"),
    tweet(created_at=b"2026-12-01T00:00Z"),
    tweet(created_at=b"2026-12-01T00:00:00+24:00"),
    tweet(created_at=b"2026-12-01T00:00:00+23:59"),
    tweet(created_at=b"0001-01-01T00:00:00Z"),
    tweet(created_at=b"9999-12-31T23:59:59Z"),
    tweet(created_at=b"1796187960"),
    tweet(created_at="\u0662\u0660\u0662\u0666-12-01T00:00:00Z".encode()),  # Arabic digits
    tweet(extra=b',"created_at":1796187960'),
    # lang
    tweet(lang=b"EN"),
    tweet(lang=b"en\\n"),
    tweet(lang=b"eng"),
    tweet(lang="\u00e9n".encode()),
    # ids, versions, lists, unknown fields
    tweet(extra=b',"id":"42"'),
    tweet(extra=b',"id":42.0'),
    tweet(extra=b',"id":true'),
    tweet(extra=b',"id":0'),
    tweet(extra=b',"id":-1'),
    tweet(extra=b',"id":9223372036854775807'),
    tweet(extra=b',"id":9223372036854775808'),
    tweet(extra=b',"id":99999999999999999999999'),
    tweet(extra=b',"schema_version":1'),
    tweet(extra=b',"schema_version":true'),
    tweet(extra=b',"schema_version":2'),
    tweet(extra=b',"hashtags":null'),
    tweet(extra=b',"hashtags":[1]'),
    tweet(extra=b',"hashtags":["a"],"hashtags":[2]'),
    tweet(extra=b',"mentions":[' + b",".join([b'"m"'] * 1001) + b"]"),
    tweet(extra=b',"keywords":[' + b",".join([b'"k"'] * 1000) + b"]"),
    tweet(extra=b',"future":{"a":[1,2,{"b":null}]}'),
    tweet(extra=b',"future":1e999'),
    tweet(extra=b',"future":NaN'),
    tweet(extra=b',"text":null'),
    tweet(extra=b',"lang":null'),
    # not a tweet at all
    b"",
    b"null",
    b"[]",
    b"{}",
    b'"a string"',
    b'{"id":1}',
    b" " + tweet() + b" \n",
    tweet() + b"x",
    b"\xef\xbb\xbf" + tweet(),
    tweet()[:-1] + b",}",
    b"[" * 100_000,
]


def record(value: bytes | None, offset: int = 0) -> ConsumerRecord:
    return consumer_record("twitter-topic", value, offset=offset)


def verdict(
    value: bytes | None, decoder: Callable[..., DecodedBatch[Any]] = decode
) -> tuple[str, object]:
    """("tweet", (id, instant, text)) or ("dead", (error, reason)); the contract's way unless
    another `decoder` is given."""
    batch = decoder([record(value)], LIMITS)
    if batch.dead:
        return "dead", (batch.dead[0].error, batch.dead[0].reason)
    ((tweet, _),) = batch.tweets.values()
    return "tweet", (tweet.id, tweet.created_at.timestamp(), tweet.text)


def fast_verdict(value: bytes | None) -> tuple[str, object]:
    return verdict(value, decode_fields)


@pytest.mark.parametrize("value", [*ODD, None], ids=lambda v: repr(v)[:60])
def test_same_verdict_and_reason_as_the_contract(value: bytes | None) -> None:
    assert fast_verdict(value) == verdict(value)


@pytest.mark.parametrize("value", ODD, ids=lambda v: repr(v)[:60])
def test_the_fast_check_never_admits_what_the_contract_refuses(value: bytes) -> None:
    fields = checked(value, LIMITS.max_text_length)
    if fields is not None:
        assert verdict(value) == ("tweet", (fields.id, fields.created_at.timestamp(), fields.text))


def document_verdict(
    value: bytes | None, decoder: Callable[..., DecodedBatch[Any]]
) -> tuple[str, object]:
    """As `verdict`, with what a search store would index of an admitted tweet."""
    batch = decoder([record(value)], LIMITS)
    if batch.dead:
        return "dead", (batch.dead[0].error, batch.dead[0].reason)
    ((tweet, _),) = batch.tweets.values()
    return "tweet", document(tweet)


@pytest.mark.parametrize("value", [*ODD, None], ids=lambda v: repr(v)[:60])
def test_the_sink_indexes_what_the_contract_would(value: bytes | None) -> None:
    assert document_verdict(value, decode_documents) == document_verdict(value, decode)


def test_odd_records_that_the_contract_admits_still_count() -> None:
    """A lax value (an id sent as a string) is declined by the fast check, then admitted."""
    value = tweet(extra=b',"id":"42"')
    assert checked(value, LIMITS.max_text_length) is None
    assert fast_verdict(value)[0] == "tweet"


def test_generated_tweets_take_the_fast_way_with_the_same_values() -> None:
    tweets = list(TweetGenerator(GeneratorOptions(count=2000, seed=7)))
    for t in tweets:
        fields = checked(t.to_json(), LIMITS.max_text_length)
        assert fields is not None, t.to_json()
        assert (fields.id, fields.created_at, fields.text) == (t.id, t.created_at, t.text)
        indexed = checked_document(t.to_json(), LIMITS.max_text_length)
        assert indexed is not None
        assert document(indexed) == document(t)


def test_the_sinks_documents_are_in_utc() -> None:
    value = tweet(created_at=b"2026-12-01T05:30:00.25+05:30")
    indexed = checked_document(value, LIMITS.max_text_length)
    assert indexed is not None
    assert document(indexed)["created_at"] == "2026-12-01T00:00:00.250000Z"


def test_a_batch_keeps_the_last_copy_of_a_resent_tweet_and_every_dead_letter() -> None:
    records = [
        record(tweet(b"first"), 0),
        record(b"not json", 1),
        record(tweet(b"second"), 2),
        record(tweet(b"x" * 301), 3),
    ]
    fast, slow = decode_fields(records, LIMITS), decode(records, LIMITS)
    assert [(f.text, r.offset) for f, r in fast.tweets.values()] == [("second", 2)]
    assert [(t.text, r.offset) for t, r in slow.tweets.values()] == [("second", 2)]
    assert [(d.record.offset, d.error, d.reason) for d in fast.dead] == [
        (d.record.offset, d.error, d.reason) for d in slow.dead
    ]
