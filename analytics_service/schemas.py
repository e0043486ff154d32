"""Response bodies of the REST API (timestamps are ISO-8601 UTC, e.g. `2026-11-22T10:00:00Z`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class WordCountOut(BaseModel):
    """A word's count in one window (the classic `get-word-count-by-word` answer)."""

    model_config = ConfigDict(from_attributes=True)

    word: str
    word_count: int
    window_start: datetime
    window_end: datetime
    final: bool = False
    """The window's grace period has passed: this count will not change."""


class SeriesPoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    window_start: datetime
    window_end: datetime
    word_count: int
    final: bool = False


class WordSeries(BaseModel):
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    word: str
    start: datetime | None = Field(default=None, alias="from")
    end: datetime | None = Field(default=None, alias="to")
    points: list[SeriesPoint]
    """Oldest first."""


class TopWord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    word: str
    word_count: int


class TopWords(BaseModel):
    window_start: datetime | None
    """The window asked for (or the latest one); null when there is no data yet."""
    window_end: datetime | None
    final: bool = False
    """Every count listed is final (false when there are none)."""
    words: list[TopWord]
    """Largest count first; ties alphabetically."""


class ErrorMessage(BaseModel):
    detail: str
