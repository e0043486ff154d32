"""Word counts for one repartition partition, in a SQLite file that survives restarts.

The state and the offset of the next repartition record to apply change in one SQLite
transaction, so after a crash the store resumes exactly where its state ends. Rows carry two
flags: `dirty` (not yet in the changelog topic) and `emit` (not yet sent to the analytics topic);
both survive a crash, so nothing is skipped on restart. Beside the counts: per input partition,
the last delta source applied and the stream time it reported (their minimum is the store's
watermark, which says which windows are final), and how far final windows have been published.
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
CREATE TABLE IF NOT EXISTS stream_times (
    partition INTEGER PRIMARY KEY,
    time INTEGER NOT NULL
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

    def apply(
        self,
        deltas: Iterable[Row],
        next_offset: int,
        sources: dict[int, Position],
        times: dict[int, int] | None = None,
    ) -> None:
        """Add `deltas`, move the offset, the applied source positions and the input
        partitions' stream times, atomically."""
        with self._transaction():
            self._set_sources(sources)
            self._set_times(times or {})
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
        times: dict[int, int] | None = None,
    ) -> None:
        """Absolute values from the changelog: already there, so neither dirty nor to emit
        (final windows are published again: how far that went is not in the changelog)."""
        with self._transaction():
            self._db.executemany(
                "INSERT INTO counts (word, window, count, dirty, emit) VALUES (?, ?, ?, 0, 0) "
                "ON CONFLICT (word, window) DO UPDATE SET count = excluded.count",
                rows,
            )
            self._set_offset(next_offset)
            self._set("changelog_next", changelog_next)
            self._set_sources(sources)
            self._set_times(times or {})

    def rebase(self) -> None:
        """The broker's topics are newer than this store (it restarted empty, or they were
        recreated): keep every count, to be written to the new changelog, and start again at
        the new topics' beginning, where no source has been applied yet."""
        with self._transaction():
            self._db.execute("UPDATE counts SET dirty = 1")
            self._db.execute("DELETE FROM sources")
            self._db.execute("DELETE FROM stream_times")
            self._set("finalised_through", 0)
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

    def stream_times(self) -> dict[int, int]:
        """Per input partition, its stream time as of the last delta applied from it."""
        rows = self._db.execute("SELECT partition, time FROM stream_times").fetchall()
        return {int(p): int(t) for p, t in rows}

    @property
    def watermark(self) -> int:
        """The earliest input partition's stream time: no open window ends before it."""
        row = self._db.execute("SELECT min(time) FROM stream_times").fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    def _set_times(self, times: dict[int, int]) -> None:
        self._db.executemany(
            "INSERT INTO stream_times (partition, time) VALUES (?, ?) "
            "ON CONFLICT (partition) DO UPDATE SET time = max(time, excluded.time)",
            list(times.items()),
        )

    @property
    def finalised_through(self) -> int:
        """The watermark up to which final windows have been published."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'finalised_through'").fetchone()
        return 0 if row is None else int(row[0])

    def set_finalised_through(self, watermark: int) -> None:
        self._set("finalised_through", watermark)

    def windows_between(self, low: int, high: int) -> list[Row]:
        """Every count whose window key is in [low, high]."""
        return self._db.execute(
            "SELECT word, window, count FROM counts WHERE window BETWEEN ? AND ?", (low, high)
        ).fetchall()

    def window_counts(self, window: int) -> list[tuple[str, int]]:
        """Every word's count in one window."""
        return self._db.execute(
            "SELECT word, count FROM counts WHERE window = ?", (window,)
        ).fetchall()

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

    def pending_emit_count(self, exclude_window: int) -> int:
        """How many rows `pending_emits` would return (from the partial index: cheap)."""
        row = self._db.execute(
            "SELECT count(*) FROM counts WHERE emit = 1 AND window != ?", (exclude_window,)
        ).fetchone()
        return int(row[0])

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


def read_times(path: Path) -> tuple[int, int]:
    """(latest, earliest) input-partition stream time of a store: how far its newest tweets
    reach, and its watermark."""
    if not path.exists():
        return 0, 0
    conn = connect(path, readonly=True)
    try:
        latest, earliest = conn.execute("SELECT max(time), min(time) FROM stream_times").fetchone()
        return int(latest or 0), int(earliest or 0)
    except sqlite3.OperationalError:  # a store from before event time: no such table yet
        return 0, 0
    finally:
        conn.close()


def read_window(path: Path, window: int, min_count: int) -> dict[str, int]:
    """Every word's count in one window, at least `min_count`."""
    if not path.exists():
        return {}
    conn = connect(path, readonly=True)
    try:
        rows = conn.execute(
            "SELECT word, count FROM counts WHERE window = ? AND count >= ?", (window, min_count)
        ).fetchall()
        return {str(w): int(c) for w, c in rows}
    finally:
        conn.close()


def read_earlier(
    path: Path, words: list[str], windows: list[int]
) -> tuple[set[int], dict[str, list[int]]]:
    """Which of `windows` hold any count here, and the counts of `words` in them."""
    if not path.exists() or not windows:
        return set(), {}
    conn = connect(path, readonly=True)
    try:
        marks = ",".join("?" * len(windows))
        present = {
            int(w)
            for (w,) in conn.execute(
                f"SELECT DISTINCT window FROM counts WHERE window IN ({marks})", windows
            )
        }
        counts: dict[str, list[int]] = {}
        for start in range(0, len(words), 500):
            chunk = words[start : start + 500]
            rows = conn.execute(
                f"SELECT word, count FROM counts WHERE window IN ({marks}) "
                f"AND word IN ({','.join('?' * len(chunk))})",
                [*windows, *chunk],
            )
            for word, count in rows:
                counts.setdefault(str(word), []).append(int(count))
        return present, counts
    finally:
        conn.close()
