"""The search-store interface shared by the Elasticsearch and tantivy backends.

Services depend on `SearchStore` only; which backend runs is a setting. Both backends pass the
same contract suite (`tests/test_search_contract.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from tweetpipe.model import Tweet, UtcDatetime

MAX_PAGE_SIZE = 100
MAX_QUERY_LENGTH = 512

SortOrder = Literal["relevance", "newest", "oldest"]
TermField = Literal["hashtags", "lang", "user_id"]


class StoreError(Exception):
    """The store failed in a way retrying will not fix (bad query, corrupt index)."""


class StoreUnavailable(StoreError):
    """A transient failure (connection refused, 429, 5xx): retry later, do not drop data."""


class SearchQuery(BaseModel):
    """What to match. Every filter is optional; no filters matches every document."""

    model_config = ConfigDict(frozen=True)

    text: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY_LENGTH)
    user_id: int | None = None
    hashtag: str | None = None
    lang: str | None = None
    since: UtcDatetime | None = None
    """Inclusive lower bound on `created_at`."""
    until: UtcDatetime | None = None
    """Exclusive upper bound on `created_at`."""
    ids: frozenset[int] | None = None
    """Restrict matches to these tweet ids (per-document permissions); empty set matches nothing."""


class PageRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    size: int = Field(default=10, ge=1, le=MAX_PAGE_SIZE)
    sort: SortOrder = "relevance"
    cursor: str | None = None
    """Opaque token from a previous page's `next_cursor`."""
    highlight: bool = True


class Hit(BaseModel):
    tweet: Tweet
    score: float | None = None
    highlights: list[str] = Field(default_factory=list)
    """Fragments of `text` with matches wrapped in `<em>…</em>`."""


class SearchPage(BaseModel):
    hits: list[Hit]
    total: int
    next_cursor: str | None = None
    """None when this is the last page."""


class TermBucket(BaseModel):
    key: str
    count: int


class DateBucket(BaseModel):
    start: datetime
    count: int


class Rejection(BaseModel):
    """A document the store refused as malformed: it goes to the dead-letter topic."""

    tweet_id: int
    reason: str


class BulkResult(BaseModel):
    indexed: int
    rejected: list[Rejection] = Field(default_factory=list)


class IndexedTweet(Protocol):
    """What a store indexes of a tweet: the contract's fields, `created_at` in UTC. A `Tweet`
    is one; so is the sink's `tweetpipe.tweet_fields.TweetDocument`, checked without a model."""

    @property
    def schema_version(self) -> int: ...
    @property
    def id(self) -> int: ...
    @property
    def user_id(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def lang(self) -> str: ...
    @property
    def hashtags(self) -> Sequence[str]: ...
    @property
    def mentions(self) -> Sequence[str]: ...
    @property
    def keywords(self) -> Sequence[str]: ...


def document(tweet: IndexedTweet) -> dict[str, Any]:
    """Plain-JSON form for a store (ISO-8601 UTC timestamp): the contract's fields only, so
    an unknown field can never clash with the index mapping."""
    return {
        "schema_version": tweet.schema_version,
        "id": tweet.id,
        "user_id": tweet.user_id,
        "text": tweet.text,
        "created_at": tweet.created_at.isoformat().replace("+00:00", "Z"),
        "lang": tweet.lang,
        "hashtags": list(tweet.hashtags),
        "mentions": list(tweet.mentions),
        "keywords": list(tweet.keywords),
    }


class SearchStore(Protocol):
    waits_on_network: bool
    """True when calls wait on a remote server (async callers run them in a thread); False
    when they compute in this process (a thread would only add a hop and GIL contention)."""

    def ensure_ready(self) -> None:
        """Create the index (mapping/template or schema) if missing; idempotent."""

    def bulk_upsert(self, tweets: Sequence[IndexedTweet]) -> BulkResult:
        """Index by tweet id (re-delivery overwrites). Durable when it returns.

        Raises `StoreUnavailable` on transient failure; nothing in the batch may then be
        assumed durable.
        """

    def get(self, tweet_id: int) -> Tweet | None: ...

    def search(self, query: SearchQuery, page: PageRequest) -> SearchPage: ...

    def count(self, query: SearchQuery | None = None) -> int: ...

    def terms(
        self, field: TermField, query: SearchQuery | None = None, size: int = 10
    ) -> list[TermBucket]:
        """Most frequent values of `field` among matching documents, most frequent first."""

    def date_histogram(
        self, query: SearchQuery | None = None, interval: timedelta = timedelta(minutes=1)
    ) -> list[DateBucket]:
        """Matching documents per fixed interval of `created_at`, oldest first, no empty edges."""

    def facets(
        self, query: SearchQuery | None, field: TermField, size: int, interval: timedelta
    ) -> tuple[list[TermBucket], list[DateBucket]]:
        """`terms(field, query, size)` and `date_histogram(query, interval)` in one pass."""

    def refresh(self) -> None:
        """Make everything written so far visible to search (from this process)."""

    def ping(self) -> bool:
        """True when the store answers; used by health checks."""

    def close(self) -> None: ...
