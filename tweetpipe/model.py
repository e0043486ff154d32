"""The tweet record on `twitter-topic`: the one contract every producer and consumer shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from tweetpipe.text import MAX_WORD_LENGTH

SCHEMA_VERSION = 1
MAX_TEXT_LENGTH = 280


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]


class Tweet(BaseModel):
    """A tweet as published by the generator (schema version 1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    id: int = Field(gt=0, lt=2**63)
    user_id: int = Field(gt=0, lt=2**63)
    text: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    created_at: UtcDatetime
    lang: str = Field(pattern=r"^[a-z]{2}$")
    hashtags: list[str] = Field(default_factory=list, max_length=30)
    mentions: list[str] = Field(default_factory=list, max_length=30)
    keywords: list[str] = Field(default_factory=list, max_length=30)

    @property
    def key(self) -> bytes:
        """Kafka record key: the user id, so one user's tweets stay in order on one partition."""
        return str(self.user_id).encode()

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(), option=orjson.OPT_UTC_Z)

    @classmethod
    def from_json(cls, data: bytes | str) -> Tweet:
        """Parse and validate; raises `orjson.JSONDecodeError` or `pydantic.ValidationError`."""
        return cls.model_validate(orjson.loads(data))

    def to_document(self) -> dict[str, Any]:
        """Plain-JSON form used by search stores (ISO-8601 UTC timestamp)."""
        doc = self.model_dump()
        doc["created_at"] = self.created_at.isoformat().replace("+00:00", "Z")
        return doc


class WordCount(BaseModel):
    """A count update on `twitter-analytics-topic` (key = word): the word's total in a window.

    Updates for one (word, window) only grow; a consumer keeps the largest it has seen, so
    replays and re-deliveries are harmless.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    word: str = Field(min_length=1, max_length=MAX_WORD_LENGTH)
    word_count: int = Field(ge=0)
    window_start: UtcDatetime
    window_end: UtcDatetime

    @property
    def key(self) -> bytes:
        return self.word.encode()

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(), option=orjson.OPT_UTC_Z)

    @classmethod
    def from_json(cls, data: bytes | str) -> WordCount:
        return cls.model_validate(orjson.loads(data))
