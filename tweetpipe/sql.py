"""Engines for either SQL backend, shared by every service that keeps data in SQL.

Services name their PostgreSQL schema; on SQLite (no schemas) it is translated away.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import make_url
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from tweetpipe.telemetry import instrument_engine

log = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    exc.OperationalError,  # connection refused or lost, server shutting down, SQLite busy
    exc.InterfaceError,  # the driver's connection object is already closed
    exc.TimeoutError,  # no pooled connection became free in time
)
"""Errors worth retrying: the database is unavailable, not the data wrong."""


def make_engine(url: str, schema: str | None = None, connect_timeout_s: int = 5) -> Engine:
    """An engine for `url` (`postgresql+psycopg2://…` or `sqlite:///path`).

    SQLite: `schema` is translated to the default schema (SQLite has none), the
    file's directory is created, and WAL mode lets the API read while the consumer writes.
    PostgreSQL: pooled connections are pinged before use, so a database restart costs one
    retried batch instead of a stream of errors from dead connections.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            execution_options={"schema_translate_map": {schema: None}} if schema else {},
            connect_args={"timeout": 30},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return instrument_engine(engine)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args["connect_timeout"] = connect_timeout_s
    engine = create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    return instrument_engine(engine)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    # WAL: readers do not block the writer. `synchronous` stays FULL (the default), so a
    # committed batch survives power loss too: offsets are committed right after it.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def ping(engine: Engine) -> bool:
    """Health check: the database answers a trivial query."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return True


def display_url(engine: Engine) -> str:
    """The URL without its password, for logs."""
    return engine.url.render_as_string(hide_password=True)


class DatabaseUnavailable(RuntimeError):
    """The database did not answer within the start-up timeout."""


def wait_for_database(engine: Engine, timeout_s: float) -> None:
    """Block until the database answers, logging each attempt (it may start after us)."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "waiting for database at %s (attempt %d): %s",
            display_url(engine),
            state.attempt_number,
            str(error).strip().splitlines()[0] if error else "",
            extra={"retry.attempt": state.attempt_number},
        )

    try:
        for attempt in Retrying(
            stop=stop_after_delay(timeout_s),
            wait=wait_exponential(multiplier=0.25, max=5),
            retry=retry_if_exception_type(TRANSIENT_ERRORS),
            before_sleep=before_sleep,
            reraise=True,
        ):
            with attempt:
                ping(engine)
    except TRANSIENT_ERRORS as error:
        raise DatabaseUnavailable(
            f"no database at {display_url(engine)} after {timeout_s:.0f}s: {error}"
        ) from error
