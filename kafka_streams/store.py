"""Word counts for one repartition partition, in a SQLite file that survives restarts.

The state and the offset of the next repartition record to apply change in one SQLite
transaction, so after a crash the store resumes exactly where its state ends. Rows carry two
flags: `dirty` (not yet in the changelog topic) and `emit` (not yet sent to the analytics topic);
both survive a crash, so nothing is skipped on restart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

Row = tuple[str, int, int]
"""(word, window start in epoch seconds or ALL_TIME, count)"""
Position = tuple[int, int]
"""(last input offset, chunk) of a delta's source"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS counts (
    word TEXT NOT NULL,
    window INTEGER NOT NULL,
    count INTEGER NOT NULL,
    dirty INTEGER NOT NULL DEFAULT 1,
    emit INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (word, window)
);
CREATE INDEX IF NOT EXISTS counts_dirty ON counts (dirty) WHERE dirty = 1;
CREATE INDEX IF NOT EXISTS counts_emit ON counts (emit) WHERE emit = 1;
CREATE INDEX IF NOT EXISTS counts_window ON counts (window, count);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    partition INTEGER PRIMARY KEY,
    last INTEGER NOT NULL,
    chunk INTEGER NOT NULL
);
"""


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        conn.executescript(SCHEMA)
    return conn


class PartitionStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect(path)

    @property
    def offset(self) -> int | None:
        """Next repartition offset to apply; None for a store that has never been written."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'offset'").fetchone()
        return None if row is None else int(row[0])

    def apply(self, deltas: Iterable[Row], next_offset: int, sources: dict[int, Position]) -> None:
        """Add `deltas`, move the offset and the applied source positions, atomically."""
        with self._transaction():
            self._set_sources(sources)
            self._db.executemany(
                "INSERT INTO counts (word, window, count) VALUES (?, ?, ?) "
                "ON CONFLICT (word, window) DO UPDATE SET "
                "count = count + excluded.count, dirty = 1, emit = 1",
                deltas,
            )
            self._set_offset(next_offset)

    def restore(
        self,
        rows: Iterable[Row],
        next_offset: int,
        changelog_next: int,
        sources: dict[int, Position],
    ) -> None:
        """Absolute values from the changelog: already there, so neither dirty nor to emit."""
        with self._transaction():
            self._db.executemany(
                "INSERT INTO counts (word, window, count, dirty, emit) VALUES (?, ?, ?, 0, 0) "
                "ON CONFLICT (word, window) DO UPDATE SET count = excluded.count",
                rows,
            )
            self._set_offset(next_offset)
            self._set("changelog_next", changelog_next)
            self._set_sources(sources)

    def rebase(self) -> None:
        """The broker's topics are newer than this store (it restarted empty, or they were
        recreated): keep every count, to be written to the new changelog, and start again at
        the new topics' beginning, where no source has been applied yet."""
        with self._transaction():
            self._db.execute("UPDATE counts SET dirty = 1")
            self._db.execute("DELETE FROM sources")
            self._set_offset(0)
            self._set("changelog_next", 0)

    def sources(self) -> dict[int, Position]:
        """Per input partition, the (last offset, chunk) of the last delta source applied."""
        rows = self._db.execute("SELECT partition, last, chunk FROM sources").fetchall()
        return {int(p): (int(last), int(chunk)) for p, last, chunk in rows}

    def _set_sources(self, sources: dict[int, Position]) -> None:
        self._db.executemany(
            "INSERT INTO sources (partition, last, chunk) VALUES (?, ?, ?) "
            "ON CONFLICT (partition) DO UPDATE SET last = excluded.last, chunk = excluded.chunk",
            [(p, last, chunk) for p, (last, chunk) in sources.items()],
        )

    def dirty(self) -> list[Row]:
        return self._db.execute("SELECT word, window, count FROM counts WHERE dirty = 1").fetchall()

    def mark_clean(self, rows: Iterable[Row], changelog_next: int) -> None:
        """Clear `dirty` where the count is still the one written to the changelog, and
        remember where our writes to the changelog end."""
        with self._transaction():
            self._db.executemany(
                "UPDATE counts SET dirty = 0 WHERE word = ? AND window = ? AND count = ?", rows
            )
            self._set("changelog_next", changelog_next)

    @property
    def changelog_next(self) -> int:
        """Changelog offset after this store's last write (0 if it never wrote)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'changelog_next'").fetchone()
        return 0 if row is None else int(row[0])

    def pending_emits(self, exclude_window: int) -> list[Row]:
        return self._db.execute(
            "SELECT word, window, count FROM counts WHERE emit = 1 AND window != ?",
            (exclude_window,),
        ).fetchall()

    def mark_emitted(self, rows: Iterable[Row]) -> None:
        with self._transaction():
            self._db.executemany(
                "UPDATE counts SET emit = 0 WHERE word = ? AND window = ? AND count = ?", rows
            )

    def size(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM counts").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def _set_offset(self, offset: int) -> None:
        self._set("offset", offset)

    def _set(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def read_count(path: Path, word: str, window: int) -> int | None:
    """A read from another thread (the query API) on its own connection."""
    if not path.exists():
        return None
    conn = connect(path, readonly=True)
    try:
        row = conn.execute(
            "SELECT count FROM counts WHERE word = ? AND window = ?", (word, window)
        ).fetchone()
        return None if row is None else int(row[0])
    finally:
        conn.close()


def read_top(path: Path, window: int, n: int) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    conn = connect(path, readonly=True)
    try:
        rows = conn.execute(
            "SELECT word, count FROM counts WHERE window = ? ORDER BY count DESC, word LIMIT ?",
            (window, n),
        ).fetchall()
        return [(str(w), int(c)) for w, c in rows]
    finally:
        conn.close()
