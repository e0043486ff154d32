"""Schema migrations (Alembic), applied programmatically at start-up.

`python -m analytics_service` on an empty database creates everything it needs, so there is
no separate migration step to forget. The scripts live in `migrations/versions/`; to add one,
write `vNNNN_<what>.py` next to the first (same layout, `down_revision` = the previous id),
or generate a draft from the models with `alembic.command.revision(migration_config(conn),
message, autogenerate=True)` and review it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from analytics_service.tables import SCHEMA

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_LOCK_KEY = 0x74776565  # any constant: the advisory lock that serialises migrating instances


def version_table_schema(connection: Connection) -> str | None:
    """Alembic's bookkeeping table sits next to ours (SQLite has no schemas)."""
    return SCHEMA if connection.dialect.name == "postgresql" else None


def migration_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` in one transaction (PostgreSQL DDL is transactional)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Instances starting together migrate one after the other, not concurrently.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        command.upgrade(migration_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table_schema": version_table_schema(connection)}
        )
        return context.get_current_revision()


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()
