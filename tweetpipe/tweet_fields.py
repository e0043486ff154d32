"""The tweet contract checked without a pydantic model, for the stages' hot paths.

`tweetpipe.model.Tweet` is the contract; building one per record was a quarter of the split
stage's CPU (py-spy) and of the sink's. msgspec checks the same fields against the same rules
into a Struct at a third of the cost (bench/hot_paths.py): the split stage reads only a tweet's
id, time and text (`TweetFields`), the sink indexes the contract's fields (`TweetDocument`).
It is deliberately *narrower* than pydantic: whatever it refuses (a lax value pydantic would
coerce, such as an id sent as "42", or anything wrong) goes to pydantic for the verdict and
the dead-letter reason, so a record is never refused here that `Tweet` admits, nor admitted
that `Tweet` refuses (tests/test_tweet_fields.py compares the two on odd records).

The JSON is parsed by orjson, as `tweetpipe.records` does, so what is malformed JSON stays the
same; timestamps are taken only in the RFC 3339 form (`datetime.fromisoformat` parses them,
microseconds at most, so no rounding can move a tweet into the next second).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
import orjson

from tweetpipe.model import MAX_LIST_ITEMS, Tweet

_Id = Annotated[int, msgspec.Meta(gt=0, le=2**63 - 1)]
_Items = Annotated[list[str], msgspec.Meta(max_length=MAX_LIST_ITEMS)]
_RFC3339 = (  # [0-9], not \d: Python's \d also matches other scripts' digits
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})\Z"
)


class _Wire(msgspec.Struct, frozen=True):
    """`Tweet`'s fields and rules, strict types; unknown fields are ignored (tolerant reader)."""

    id: _Id
    user_id: _Id
    text: Annotated[str, msgspec.Meta(min_length=1)]
    created_at: Annotated[str, msgspec.Meta(pattern=_RFC3339)]
    lang: Annotated[str, msgspec.Meta(pattern=r"\A[a-z]{2}\Z")]
    schema_version: Literal[1] = 1
    hashtags: _Items = []
    mentions: _Items = []
    keywords: _Items = []


class TweetFields(msgspec.Struct, frozen=True):
    """What the word count reads of a valid tweet."""

    id: int
    created_at: datetime
    """Timezone-aware (the offset the producer wrote; `Tweet` converts to UTC, same instant)."""
    text: str

    @classmethod
    def of(cls, tweet: Tweet) -> TweetFields:
        return cls(id=tweet.id, created_at=tweet.created_at, text=tweet.text)


class TweetDocument(msgspec.Struct, frozen=True):
    """What the sink indexes of a valid tweet (a `tweetpipe.search.IndexedTweet`)."""

    schema_version: int
    id: int
    user_id: int
    text: str
    created_at: datetime
    """In UTC, as `Tweet` has it."""
    lang: str
    hashtags: list[str]
    mentions: list[str]
    keywords: list[str]


def checked(value: bytes, max_text_length: int) -> TweetFields | None:
    """The tweet in `value` if it plainly meets the contract; None means "ask pydantic"."""
    found = _plainly_valid(value, max_text_length)
    if found is None:
        return None
    wire, created_at = found
    return TweetFields(id=wire.id, created_at=created_at, text=wire.text)


def checked_document(value: bytes, max_text_length: int) -> TweetDocument | None:
    """As `checked`, with every field of the contract."""
    found = _plainly_valid(value, max_text_length)
    if found is None:
        return None
    wire, created_at = found
    return TweetDocument(
        schema_version=wire.schema_version,
        id=wire.id,
        user_id=wire.user_id,
        text=wire.text,
        created_at=created_at.astimezone(UTC),
        lang=wire.lang,
        hashtags=wire.hashtags,
        mentions=wire.mentions,
        keywords=wire.keywords,
    )


def _plainly_valid(value: bytes, max_text_length: int) -> tuple[_Wire, datetime] | None:
    try:
        wire = msgspec.convert(orjson.loads(value), _Wire)
        created_at = datetime.fromisoformat(wire.created_at)
    except (orjson.JSONDecodeError, msgspec.ValidationError, ValueError):
        return None
    if len(wire.text) > max_text_length:
        return None
    return wire, created_at
