"""The service's JSON shapes. Documents come in two API versions, chosen by media type:
v1 is the classic document (id, user, text, time); v2 adds language, hashtags, mentions and
keywords. Every document links to itself and to the author's other tweets."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from tweetpipe.model import Tweet
from tweetpipe.search import MAX_QUERY_LENGTH, DateBucket, TermBucket


class Links(BaseModel):
    self: str
    author: str
    """The author's tweets, newest first."""


class DocumentV1(BaseModel):
    id: int
    id_str: str = Field(
        description="`id` as a decimal string, for clients that round 64-bit integers"
    )
    user_id: int
    user_id_str: str = Field(description="`user_id` as a decimal string, like `id_str`")
    text: str
    created_at: datetime
    links: Links

    @classmethod
    def of(cls, tweet: Tweet, base: str) -> DocumentV1:
        return cls(
            id=tweet.id,
            id_str=str(tweet.id),
            user_id=tweet.user_id,
            user_id_str=str(tweet.user_id),
            text=tweet.text,
            created_at=tweet.created_at,
            links=_links(tweet, base),
        )


class DocumentV2(DocumentV1):
    lang: str
    hashtags: list[str]
    mentions: list[str]
    keywords: list[str]

    @classmethod
    def of(cls, tweet: Tweet, base: str) -> DocumentV2:
        return cls(
            id=tweet.id,
            id_str=str(tweet.id),
            user_id=tweet.user_id,
            user_id_str=str(tweet.user_id),
            text=tweet.text,
            created_at=tweet.created_at,
            links=_links(tweet, base),
            lang=tweet.lang,
            hashtags=tweet.hashtags,
            mentions=tweet.mentions,
            keywords=tweet.keywords,
        )


def _links(tweet: Tweet, base: str) -> Links:
    return Links(
        self=f"{base}/documents/{tweet.id}",
        author=f"{base}/documents/search?user_id={tweet.user_id}&sort=newest",
    )


class PageLinks(BaseModel):
    next: str | None = None
    """The next page's URL on GET answers; POST answers page by `next_cursor` alone."""


class DocumentListV1(BaseModel):
    documents: list[DocumentV1]
    next_cursor: str | None = None
    links: PageLinks = PageLinks()


class WordCountInfo(BaseModel):
    word: str
    word_count: int | None
    """None when the count could not be fetched in time."""


class DocumentListV2(BaseModel):
    documents: list[DocumentV2]
    next_cursor: str | None = None
    links: PageLinks = PageLinks()
    word_counts: list[WordCountInfo] | None = None
    """By-text answers only: each query word's count, from the configured source."""
    word_count_source: Literal["kafka-streams", "analytics"] | None = None


class TextQuery(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_QUERY_LENGTH)


class SearchHit(BaseModel):
    document: DocumentV2
    score: float | None
    highlights: list[str]
    """Fragments of the text with matches wrapped in `<em>…</em>` (HTML-escaped otherwise)."""


class Aggregations(BaseModel):
    top_hashtags: list[TermBucket]
    per_minute: list[DateBucket]


class SearchResponse(BaseModel):
    total: int
    hits: list[SearchHit]
    next_cursor: str | None
    links: PageLinks
    aggregations: Aggregations | None


class Grant(BaseModel):
    username: str
    document_id: int
    permission: Literal["READ"] = "READ"


class UserPermissions(BaseModel):
    username: str
    document_ids: list[int]


class ErrorMessage(BaseModel):
    detail: str
