"""Turn consumer records into models, separating out what must be dead-lettered."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import orjson
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import BaseModel, ValidationError

from tweetpipe.model import Tweet
from tweetpipe.search.base import IndexedTweet
from tweetpipe.settings import TweetLimits
from tweetpipe.tracing import SpanAttributes
from tweetpipe.tweet_fields import TweetFields, checked, checked_document

M = TypeVar("M", bound=BaseModel)


class _Identified(Protocol):
    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=_Identified)


@dataclass(frozen=True)
class DeadLetter:
    record: ConsumerRecord
    error: str
    reason: str


@dataclass
class DecodedBatch(Generic[T]):
    """Tweets from one poll, and the records that failed to decode."""

    tweets: dict[int, tuple[T, ConsumerRecord]] = field(default_factory=dict)
    """By tweet id: a re-sent tweet later in the batch replaces the earlier one."""
    dead: list[DeadLetter] = field(default_factory=list)

    def span_attributes(self) -> Iterator[tuple[ConsumerRecord, SpanAttributes]]:
        """What a trace shows about each record: its tweet id, or why it was dead-lettered."""
        for tweet, record in self.tweets.values():
            yield record, {"tweet.id": tweet.id}
        for letter in self.dead:
            yield letter.record, {"dlq.error": letter.error, "dlq.reason": letter.reason[:200]}


def describe(error: ValidationError) -> str:
    """`text: String should have at most 280 characters; lang: Field required`."""
    parts = []
    for item in error.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "record"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse(
    record: ConsumerRecord, model: type[M], context: dict[str, object] | None = None
) -> M | DeadLetter:
    """The record's JSON value as `model`, or the dead letter that says why it is not one.

    `context` goes to the model's validators (the tweet's text limit). Fields the model does
    not know never make a dead letter (tolerant reader)."""
    if record.value is None:
        return DeadLetter(record, "EmptyValue", "record has no value")
    try:
        return model.model_validate(orjson.loads(record.value), context=context)
    except orjson.JSONDecodeError as exc:
        return DeadLetter(record, "MalformedJson", str(exc))
    except ValidationError as exc:
        return DeadLetter(record, "SchemaViolation", describe(exc))


def decode(
    records: Iterable[ConsumerRecord], limits: TweetLimits | None = None
) -> DecodedBatch[Tweet]:
    """Tweets from `twitter-topic`; one whose text is longer than the limit (the service's
    `tweets` settings, the default's unless given) is a dead letter."""
    batch = DecodedBatch[Tweet]()
    context: dict[str, object] = {"max_text_length": (limits or TweetLimits()).max_text_length}
    for record in records:
        tweet = parse(record, Tweet, context)
        if isinstance(tweet, DeadLetter):
            batch.dead.append(tweet)
        else:
            batch.tweets[tweet.id] = (tweet, record)
    return batch


def decode_fields(
    records: Iterable[ConsumerRecord], limits: TweetLimits | None = None
) -> DecodedBatch[TweetFields]:
    """As `decode`, the same verdicts and dead-letter reasons, without a pydantic model per
    valid tweet (`tweetpipe.tweet_fields`): for stages that read only id, time and text."""
    return _decode_checked(records, limits, checked, TweetFields.of)


def decode_documents(
    records: Iterable[ConsumerRecord], limits: TweetLimits | None = None
) -> DecodedBatch[IndexedTweet]:
    """As `decode_fields`, with every field a search store indexes (a `Tweet` where pydantic
    gave the verdict: it is one too)."""
    return _decode_checked(records, limits, checked_document, lambda tweet: tweet)


def _decode_checked(
    records: Iterable[ConsumerRecord],
    limits: TweetLimits | None,
    check: Callable[[bytes, int], T | None],
    of_tweet: Callable[[Tweet], T],
) -> DecodedBatch[T]:
    """`check` takes what plainly meets the contract; pydantic gives the verdict on the rest."""
    batch = DecodedBatch[T]()
    limit = (limits or TweetLimits()).max_text_length
    context: dict[str, object] = {"max_text_length": limit}
    for record in records:
        fields = None if record.value is None else check(record.value, limit)
        if fields is None:
            tweet = parse(record, Tweet, context)
            if isinstance(tweet, DeadLetter):
                batch.dead.append(tweet)
                continue
            fields = of_tweet(tweet)
        batch.tweets[fields.id] = (fields, record)
    return batch
