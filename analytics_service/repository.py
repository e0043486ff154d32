"""Reads and writes of word counts; the only module that speaks SQL.

Writes are batch upserts that keep the larger count: updates for one (word, window) only grow,
so whatever order records arrive in, and however often they are replayed, the row ends at the
largest count, which is the right one. `final` only ever turns on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Executable, Table, and_, func, not_, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from analytics_service.tables import HoppingCountRow, WordCountRow
from tweetpipe.model import WordCount

TABLE: Table = WordCountRow.__table__  # type: ignore[attr-defined]
HOPPING_TABLE: Table = HoppingCountRow.__table__  # type: ignore[attr-defined]


def keep_largest(counts: Iterable[WordCount], hopping: bool = False) -> list[WordCount]:
    """One update per row key ((word, window_start), and window_end for hopping windows), the
    largest, final if any of them said so.

    One statement may not touch a row twice (PostgreSQL refuses), and only the largest
    matters anyway.
    """
    largest: dict[tuple[str, datetime, datetime | None], WordCount] = {}
    for count in counts:
        key = (count.word, count.window_start, count.window_end if hopping else None)
        kept = largest.get(key)
        if kept is None or count.word_count > kept.word_count:
            if kept is not None and kept.final and not count.final:
                count = count.model_copy(update={"final": True})
            largest[key] = count
        elif count.final and not kept.final:
            largest[key] = kept.model_copy(update={"final": True})
    return list(largest.values())


def _upsert_statement(dialect: str, table: Table) -> Executable:
    """`INSERT … ON CONFLICT (word, window_start) DO UPDATE` keeping the larger count.

    The `WHERE` skips rows whose count would not grow: a replay writes nothing at all (no new
    row versions on PostgreSQL, `updated_at` untouched), while GREATEST (PostgreSQL) / two-
    argument MAX (SQLite) states the rule in the update itself. `RETURNING` reports the rows
    that changed, and is also what lets SQLAlchemy send an executemany of this statement as
    multi-row VALUES pages (it will not for an ON CONFLICT insert without RETURNING): about 4x
    faster on PostgreSQL than a round trip per row.
    """
    insert: Any
    larger: Callable[..., Any]
    if dialect == "postgresql":
        insert, larger = postgresql.insert, func.greatest
    elif dialect == "sqlite":
        insert, larger = sqlite.insert, func.max
    else:
        raise ValueError(f"unsupported database {dialect!r}: use PostgreSQL or SQLite")
    statement = insert(table)
    excluded = statement.excluded
    key = [c for c in table.primary_key.columns]
    changes: dict[str, Any] = {
        "word_count": larger(table.c.word_count, excluded.word_count),
        "final": or_(table.c.final, excluded.final),
        "updated_at": excluded.updated_at,
    }
    if table.c.window_end not in key:
        changes["window_end"] = excluded.window_end
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=key,
        set_=changes,
        where=or_(
            excluded.word_count > table.c.word_count, and_(excluded.final, not_(table.c.final))
        ),
    ).returning(table.c.word)
    return upsert


@dataclass(frozen=True)
class UpsertResult:
    rows: int
    """Rows sent, after de-duplication within the batch."""
    changed: int
    """Rows inserted or whose count grew (0 for a pure replay)."""


def _rows(counts: list[WordCount], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "word": count.word,
            "window_start": count.window_start,
            "window_end": count.window_end,
            "word_count": count.word_count,
            "final": count.final,
            "updated_at": now,
        }
        for count in counts
    ]


class WordCountRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._upsert = _upsert_statement(engine.dialect.name, TABLE)
        self._upsert_hopping = _upsert_statement(engine.dialect.name, HOPPING_TABLE)

    def upsert(
        self,
        counts: Sequence[WordCount],
        now: datetime | None = None,
        hopping: Sequence[WordCount] = (),
    ) -> UpsertResult:
        """Store a batch (tumbling-window `counts`, `hopping`-window ones) in ONE
        transaction: every row is stored or none is, so the caller can commit the batch's
        offsets once this returns."""
        moment = now or datetime.now(UTC)
        statements = [
            (statement, _rows(keep_largest(batch, is_hopping), moment))
            for statement, batch, is_hopping in (
                (self._upsert, counts, False),
                (self._upsert_hopping, hopping, True),
            )
        ]
        sent = sum(len(rows) for _, rows in statements)
        if not sent:
            return UpsertResult(rows=0, changed=0)
        changed = 0
        with self.engine.begin() as connection:
            for statement, rows in statements:
                if rows:
                    changed += len(connection.execute(statement, rows).all())
        return UpsertResult(rows=sent, changed=changed)

    def latest(self, word: str) -> WordCountRow | None:
        """The word's row in its most recent window."""
        query = (
            select(WordCountRow)
            .where(WordCountRow.word == word)
            .order_by(col(WordCountRow.window_start).desc())
            .limit(1)
        )
        with Session(self.engine) as session:
            return session.exec(query).first()

    def series(
        self, word: str, start: datetime | None, end: datetime | None, limit: int
    ) -> list[WordCountRow]:
        """The word's windows starting in [start, end] (either bound optional), oldest first."""
        query = select(WordCountRow).where(WordCountRow.word == word)
        if start is not None:
            query = query.where(WordCountRow.window_start >= start)
        if end is not None:
            query = query.where(WordCountRow.window_start <= end)
        query = query.order_by(col(WordCountRow.window_start)).limit(limit)
        with Session(self.engine) as session:
            return list(session.exec(query).all())

    def latest_window(self) -> datetime | None:
        with Session(self.engine) as session:
            latest: datetime | None = session.exec(
                select(func.max(WordCountRow.window_start))
            ).one()
            return latest

    def top(self, window_start: datetime, n: int) -> list[WordCountRow]:
        """The window's `n` largest counts, ties broken alphabetically."""
        query = (
            select(WordCountRow)
            .where(WordCountRow.window_start == window_start)
            .order_by(col(WordCountRow.word_count).desc(), col(WordCountRow.word))
            .limit(n)
        )
        with Session(self.engine) as session:
            return list(session.exec(query).all())

    def latest_hopping_window(self) -> tuple[datetime, datetime] | None:
        """The hopping window that ends soonest after the newest counts: the last `size`
        seconds up to now (provisional until final). The newest window holds only the latest
        advance step; this one is the earliest still containing it."""
        with Session(self.engine) as session:
            newest = session.exec(
                select(HoppingCountRow).order_by(col(HoppingCountRow.window_start).desc()).limit(1)
            ).first()
            if newest is None:
                return None
            size = newest.window_end - newest.window_start
            start: datetime = session.exec(
                select(func.min(HoppingCountRow.window_start)).where(
                    HoppingCountRow.window_start > newest.window_start - size
                )
            ).one()
            return start, start + size

    def hopping_counts(
        self, start: datetime, end: datetime, min_count: int = 0
    ) -> list[HoppingCountRow]:
        """Every term's count in one hopping window, at least `min_count`."""
        query = select(HoppingCountRow).where(
            HoppingCountRow.window_start == start,
            HoppingCountRow.window_end == end,
            HoppingCountRow.word_count >= min_count,
        )
        with Session(self.engine) as session:
            return list(session.exec(query).all())

    def earlier_counts(
        self, words: Sequence[str], starts: Sequence[datetime], size: timedelta
    ) -> tuple[int, dict[str, list[int]]]:
        """How many of the windows starting at `starts` (of `size`) exist at all, and the
        counts of `words` in them."""
        if not starts:
            return 0, {}
        same_size = [
            and_(
                col(HoppingCountRow.window_start) == s, col(HoppingCountRow.window_end) == s + size
            )
            for s in starts
        ]
        with Session(self.engine) as session:
            present = session.exec(
                select(HoppingCountRow.window_start).where(or_(*same_size)).distinct()
            ).all()
            counts: dict[str, list[int]] = {}
            for chunk in range(0, len(words), 500):
                rows = session.exec(
                    select(HoppingCountRow.word, HoppingCountRow.word_count).where(
                        col(HoppingCountRow.word).in_(words[chunk : chunk + 500]), or_(*same_size)
                    )
                ).all()
                for word, count in rows:
                    counts.setdefault(word, []).append(count)
        return len(present), counts

    def hopping_window_final(self, start: datetime, end: datetime) -> bool:
        """Whether the window has counts and every one of them is final."""
        window = and_(
            col(HoppingCountRow.window_start) == start, col(HoppingCountRow.window_end) == end
        )
        with Session(self.engine) as session:
            rows = session.exec(select(func.count()).where(window)).one()
            open_rows = session.exec(
                select(func.count()).where(window, not_(col(HoppingCountRow.final)))
            ).one()
            return bool(rows) and not open_rows
