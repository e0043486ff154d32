"""The SQL tables: one row per window count, holding the largest count seen for it.

`word_counts` holds the tumbling windows, one per (word, window_start); `hopping_counts` the
hopping windows, which overlap, per (word, window_start, window_end). `final` says the stream
stage has closed the window (its grace period has passed): the count will not change.

The table lives in schema `analytics` (PostgreSQL). SQLite has no schemas; `db.make_engine`
maps `analytics` to SQLite's default schema with `schema_translate_map`, so this one model
serves both backends. The DDL itself is owned by the Alembic migrations in `migrations/`; this
model must match them (a test compares the two on both backends).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Index,
    String,
    false,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from tweetpipe.text import MAX_WORD_LENGTH

SCHEMA = "analytics"


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in and out, on both backends.

    PostgreSQL stores `timestamptz`. SQLite stores text without an offset, so values are
    normalised to UTC before they are written (text order is then time order) and tagged UTC
    when read back.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class WordCountRow(SQLModel, table=True):
    """Primary key (word, window_start) is the unique key that makes replays idempotent."""

    __tablename__ = "word_counts"
    __table_args__ = (
        CheckConstraint("word_count >= 0", name="word_counts_count_not_negative"),
        Index("ix_word_counts_window_start_count", "window_start", "word_count"),
        {"schema": SCHEMA},
    )

    word: str = Field(sa_column=Column(String(MAX_WORD_LENGTH), primary_key=True))
    window_start: datetime = Field(sa_column=Column(UtcDateTime(), primary_key=True))
    window_end: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    word_count: int = Field(sa_column=Column(BigInteger(), nullable=False))
    final: bool = Field(
        default=False, sa_column=Column(Boolean(), nullable=False, server_default=false())
    )
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
    """When the count last grew (a replay that changes nothing leaves it alone)."""


class HoppingCountRow(SQLModel, table=True):
    """Hopping windows overlap, and a change of size must not merge two: the key has both ends."""

    __tablename__ = "hopping_counts"
    __table_args__ = (
        CheckConstraint("word_count >= 0", name="hopping_counts_count_not_negative"),
        Index("ix_hopping_counts_window_start_count", "window_start", "word_count"),
        {"schema": SCHEMA},
    )

    word: str = Field(sa_column=Column(String(MAX_WORD_LENGTH), primary_key=True))
    window_start: datetime = Field(sa_column=Column(UtcDateTime(), primary_key=True))
    window_end: datetime = Field(sa_column=Column(UtcDateTime(), primary_key=True))
    word_count: int = Field(sa_column=Column(BigInteger(), nullable=False))
    final: bool = Field(
        default=False, sa_column=Column(Boolean(), nullable=False, server_default=false())
    )
    updated_at: datetime = Field(sa_column=Column(UtcDateTime(), nullable=False))
