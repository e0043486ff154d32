"""The tweet record on `twitter-topic`: the one contract every producer and consumer shares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from tweetpipe.text import MAX_WORD_LENGTH

SCHEMA_VERSION = 1
CLASSIC_TEXT_LENGTH = 280
"""The classic tweet's limit: what the generator writes. Readers admit far longer posts."""
MAX_LIST_ITEMS = 1000


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]


class Tweet(BaseModel):
    """A tweet as published by the generator (schema version 1).

    Tolerant reader: fields this model does not know (a newer producer's) are accepted and kept
    in `model_extra`, so `to_json()` forwards them; the search document holds only the fields
    below. The text limit is the reader's, at the topic boundary: `tweetpipe.records` passes
    `context={"max_text_length": n}` (the `tweets.max_text_length` setting) to `model_validate`;
    without it (the generator, documents read back from a store) no limit applies.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    schema_version: Literal[1] = 1
    id: int = Field(gt=0, lt=2**63)
    user_id: int = Field(gt=0, lt=2**63)
    text: str = Field(min_length=1)
    created_at: UtcDatetime
    lang: str = Field(pattern=r"^[a-z]{2}$")
    hashtags: list[str] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    mentions: list[str] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    keywords: list[str] = Field(default_factory=list, max_length=MAX_LIST_ITEMS)

    @field_validator("text")
    @classmethod
    def _text_fits(cls, text: str, info: ValidationInfo) -> str:
        limit = info.context.get("max_text_length") if isinstance(info.context, dict) else None
        if limit is not None and len(text) > limit:
            raise ValueError(f"String should have at most {limit} characters")
        return text

    @property
    def key(self) -> bytes:
        """Kafka record key: the user id, so one user's tweets stay in order on one partition."""
        return str(self.user_id).encode()

    def to_json(self) -> bytes:
        """What `model_dump` gives (fields in order, then unknown ones), serialised straight
        from the validated field values: a flat model needs no dump, and every tweet the
        generator sends passes here (half the cost, measured in bench/ingest.py's figures)."""
        extra = self.model_extra
        return orjson.dumps(
            {**self.__dict__, **extra} if extra else self.__dict__, option=orjson.OPT_UTC_Z
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> Tweet:
        """Parse and validate; raises `orjson.JSONDecodeError` or `pydantic.ValidationError`."""
        return cls.model_validate(orjson.loads(data))

    @property
    def unknown_fields(self) -> dict[str, Any]:
        """What a newer producer sent that this version does not know."""
        return dict(self.model_extra or {})


class WordCount(BaseModel):
    """A count update on `twitter-analytics-topic` (key = word): the word's total in a window.

    Updates for one (word, window) only grow; a consumer keeps the largest it has seen, so
    replays and re-deliveries are harmless. Unknown fields are ignored (tolerant reader).
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    word: str = Field(min_length=1, max_length=MAX_WORD_LENGTH)
    word_count: int = Field(ge=0)
    window_start: UtcDatetime
    window_end: UtcDatetime
    final: bool = False
    """True once stream time has passed window end + grace: this count will not change.
    Older producers do not send it (read as False)."""

    @property
    def key(self) -> bytes:
        return self.word.encode()

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(), option=orjson.OPT_UTC_Z)

    @classmethod
    def from_json(cls, data: bytes | str) -> WordCount:
        return cls.model_validate(orjson.loads(data))
