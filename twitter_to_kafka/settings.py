from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from tweetpipe.settings import AdminSettings, ServiceSettings

DEFAULT_KEYWORDS = ["Java", "Microservices", "Kafka", "Elasticsearch"]


class GeneratorOptions(BaseModel):
    keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_KEYWORDS), min_length=1)
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
    worker_id: int | None = Field(default=None, ge=0, lt=1024)
    """Part of every tweet id, so two generators never mint the same id; random if unset."""


class GeneratorSettings(ServiceSettings):
    application: ClassVar[str] = "twitter-to-kafka"

    generator: GeneratorOptions = GeneratorOptions()
    admin: AdminSettings = AdminSettings(port=8081)
