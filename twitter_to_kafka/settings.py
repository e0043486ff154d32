from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from tweetpipe.settings import DEFAULT_FILTER_KEYWORDS, AdminSettings, ServiceSettings

DEFAULT_KEYWORDS = DEFAULT_FILTER_KEYWORDS
MAX_TRACK_PHRASES = 400
"""The filter stream's limit; it also keeps a tweet's `keywords` within the contract's."""


class Burst(BaseModel):
    """A term that suddenly spikes, as news does: from `after_s` seconds after the generator
    starts, for `duration_s`, a `share` of the tweets carry it (again every `every_s` if set)."""

    term: str = Field(default="#LaunchDay", min_length=1, max_length=60)
    """A hashtag (leading `#`, added to the tweet's hashtags too) or a phrase."""
    after_s: float = Field(default=60.0, ge=0)
    duration_s: float = Field(default=240.0, gt=0)
    share: float = Field(default=0.2, gt=0, le=1)
    every_s: float | None = Field(default=None, gt=0)
    """Repeat period; None: once."""


class GeneratorOptions(BaseModel):
    keywords: list[str] = Field(
        default_factory=lambda: list(DEFAULT_KEYWORDS), min_length=1, max_length=MAX_TRACK_PHRASES
    )
    """Filter-stream `track` phrases: space = AND, separate entries = OR, case-insensitive."""
    rate: float = Field(default=20.0, ge=0)
    """Tweets per second; 0 means as fast as the broker takes them."""
    count: int | None = Field(default=None, ge=0)
    """Stop after this many tweets; None runs until stopped."""
    seed: int | None = None
    """Same seed, same users, texts and order (ids and timestamps still follow the clock)."""
    users: int = Field(default=5000, ge=1)
    user_skew: float = Field(default=1.2, gt=0)
    """Zipf exponent of user activity: a few users tweet a lot, most rarely."""
    sentence_pool: int = Field(default=3000, ge=10)
    progress_interval_s: float = Field(default=5.0, gt=0)
    bursts: list[Burst] = Field(default_factory=list)
    """Terms that spike for a while (none by default; `tweetpipe up` turns on a mild one)."""
    worker_id: int | None = Field(default=None, ge=0, lt=1024)
    """Part of every tweet id, so two generators never mint the same id; random if unset."""


class GeneratorSettings(ServiceSettings):
    application: ClassVar[str] = "twitter-to-kafka"

    generator: GeneratorOptions = GeneratorOptions()
    admin: AdminSettings = AdminSettings(port=8081)
