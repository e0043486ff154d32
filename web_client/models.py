"""What the web client reads from the APIs behind the gateway: only the fields it shows.

Unknown fields are ignored, so the services may add to their answers without breaking the app.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Document(_Answer):
    id: int
    user_id: int
    text: str
    created_at: datetime
    lang: str = ""
    hashtags: list[str] = []


class Hit(_Answer):
    document: Document
    score: float | None = None
    highlights: list[str] = []
    """Fragments with `<em>` around matches, HTML-escaped otherwise (see `render.highlight`)."""


class TermBucket(_Answer):
    key: str
    count: int


class DateBucket(_Answer):
    start: datetime
    count: int


class Aggregations(_Answer):
    top_hashtags: list[TermBucket] = []
    per_minute: list[DateBucket] = []


class SearchPage(_Answer):
    total: int
    hits: list[Hit]
    next_cursor: str | None = None
    aggregations: Aggregations | None = None


class WordCount(_Answer):
    word: str
    word_count: int


class TopWords(_Answer):
    window_start: datetime | None = None
    window_end: datetime | None = None
    words: list[WordCount] = []


class TrendingTerm(_Answer):
    term: str
    count: int
    baseline: float
    score: float


class Trending(_Answer):
    """Rising now: the latest hopping window's terms well above their own baseline."""

    window_start: datetime | None = None
    window_end: datetime | None = None
    final: bool = False
    trending: list[TrendingTerm] = []


class SeriesPoint(_Answer):
    window_start: datetime
    window_end: datetime
    word_count: int


class WordSeries(_Answer):
    word: str
    points: list[SeriesPoint] = []


class WordTotal(_Answer):
    """The stream stage's all-time count of one word."""

    word: str
    word_count: int
