"""Alembic environment: migrates over the connection `analytics_service.migrate` hands in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.schema import CreateSchema
from sqlmodel import SQLModel

from analytics_service import tables
from analytics_service.migrate import version_table_schema


def run_migrations(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # A precondition rather than a migration: Alembic's version table lives in it.
        connection.execute(CreateSchema(tables.SCHEMA, if_not_exists=True))
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        version_table_schema=version_table_schema(connection),
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("run migrations through analytics_service.migrate (needs a connection)")
run_migrations(_connection)
