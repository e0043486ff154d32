"""Final flags on tumbling windows; a table for the hopping windows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "analytics"  # spelled out: migrations must not change when application code does


def _altered_schema() -> str | None:
    """ALTER TABLE is not schema-translated: SQLite's table has no schema."""
    return SCHEMA if op.get_bind().dialect.name == "postgresql" else None


def upgrade() -> None:
    op.add_column(
        "word_counts",
        sa.Column("final", sa.Boolean(), nullable=False, server_default=sa.false()),
        schema=_altered_schema(),
    )
    op.create_table(
        "hopping_counts",
        sa.Column("word", sa.String(100), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("word_count", sa.BigInteger(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("word", "window_start", "window_end", name="hopping_counts_pkey"),
        sa.CheckConstraint("word_count >= 0", name="hopping_counts_count_not_negative"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_hopping_counts_window_start_count",
        "hopping_counts",
        ["window_start", "word_count"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_hopping_counts_window_start_count", "hopping_counts", schema=SCHEMA)
    op.drop_table("hopping_counts", schema=SCHEMA)
    with op.batch_alter_table("word_counts", schema=_altered_schema()) as batch:
        batch.drop_column("final")
