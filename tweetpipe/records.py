"""Turn consumer records into models, separating out what must be dead-lettered."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import ValidationError

from tweetpipe.model import Tweet


@dataclass(frozen=True)
class DeadLetter:
    record: ConsumerRecord
    error: str
    reason: str


@dataclass
class DecodedBatch:
    """Tweets from one poll, and the records that failed to decode."""

    tweets: dict[int, tuple[Tweet, ConsumerRecord]] = field(default_factory=dict)
    """By tweet id: a re-sent tweet later in the batch replaces the earlier one."""
    dead: list[DeadLetter] = field(default_factory=list)


def describe(error: ValidationError) -> str:
    """`text: String should have at most 280 characters; lang: Field required`."""
    parts = []
    for item in error.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "record"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def decode(records: Iterable[ConsumerRecord]) -> DecodedBatch:
    batch = DecodedBatch()
    for record in records:
        if record.value is None:
            batch.dead.append(DeadLetter(record, "EmptyValue", "record has no value"))
            continue
        try:
            tweet = Tweet.from_json(record.value)
        except orjson.JSONDecodeError as exc:
            batch.dead.append(DeadLetter(record, "MalformedJson", str(exc)))
        except ValidationError as exc:
            batch.dead.append(DeadLetter(record, "SchemaViolation", describe(exc)))
        else:
            batch.tweets[tweet.id] = (tweet, record)
    return batch
