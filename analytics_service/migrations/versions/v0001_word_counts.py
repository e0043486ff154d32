"""Word counts per (word, window_start) in schema `analytics`.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "analytics"  # spelled out: migrations must not change when application code does


def upgrade() -> None:
    op.create_table(
        "word_counts",
        sa.Column("word", sa.String(100), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("word_count", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("word", "window_start", name="word_counts_pkey"),
        sa.CheckConstraint("word_count >= 0", name="word_counts_count_not_negative"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_word_counts_window_start_count",
        "word_counts",
        ["window_start", "word_count"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_word_counts_window_start_count", "word_counts", schema=SCHEMA)
    op.drop_table("word_counts", schema=SCHEMA)
