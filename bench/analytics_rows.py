"""Analytics upsert throughput into PostgreSQL; the last line printed is one JSON object.

    .venv/bin/python bench/analytics_rows.py [--rows 50000] [--batch-size 5000]

- analytics_rows_per_s: WordCount rows upserted per second through `WordCountRepository`, the
  consumer's own code path (de-duplicate, one `INSERT … ON CONFLICT` transaction per batch),
  into a throwaway PostgreSQL started here with durable settings (fsync on). Half the rows
  are new (word, window) pairs and half are later, larger counts for pairs already stored, as
  in a running pipeline. Decoding records from Kafka is not included.

`bench/wordcount.py` calls `measure_analytics_rows(count)` to report the same figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics_service import migrate
from analytics_service.repository import WordCountRepository
from analytics_service.settings import AnalyticsOptions
from analytics_service.tables import SCHEMA
from tests.support.postgres import PostgresServer
from tweetpipe.model import WordCount
from tweetpipe.sql import make_engine

VOCABULARY = 5000
WINDOW = timedelta(minutes=1)
T0 = datetime(2026, 11, 22, tzinfo=UTC)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def count_updates(count: int) -> list[WordCount]:
    """`count` updates: `count // 2` new (word, window) rows, then a larger count for each."""
    pairs = max(1, count // 2)
    first = [
        WordCount(
            word=f"word{i % VOCABULARY}",
            word_count=1 + i % 97,
            window_start=T0 + (i // VOCABULARY) * WINDOW,
            window_end=T0 + (i // VOCABULARY + 1) * WINDOW,
        )
        for i in range(pairs)
    ]
    grown = [u.model_copy(update={"word_count": u.word_count + 5}) for u in first]
    return (first + grown)[:count]


def measure_analytics_rows(count: int, batch_size: int | None = None) -> float:
    """Rows per second upserted into a fresh PostgreSQL, in consumer-sized batches."""
    size = batch_size or AnalyticsOptions().batch_size
    updates = count_updates(count)
    with PostgresServer(fast=False) as postgres:
        engine = make_engine(postgres.create_database("bench"), SCHEMA)
        try:
            migrate.upgrade(engine)
            repository = WordCountRepository(engine)
            say(f"upserting {len(updates)} rows in batches of {size} into PostgreSQL")
            started = time.perf_counter()
            for done in range(0, len(updates), size):
                repository.upsert(updates[done : done + size])
                if (done // size) % 5 == 4:
                    elapsed = time.perf_counter() - started
                    upserted = min(done + size, len(updates))
                    say(f"  {upserted} rows, {upserted / elapsed:,.0f}/s")
            elapsed = time.perf_counter() - started
        finally:
            engine.dispose()
    rate = len(updates) / elapsed
    say(f"analytics_rows_per_s: {rate:,.0f} ({len(updates)} rows in {elapsed:.2f}s)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=AnalyticsOptions().batch_size)
    args = parser.parse_args()
    rate = measure_analytics_rows(args.rows, args.batch_size)
    print(json.dumps({"analytics_rows_per_s": round(rate)}))


if __name__ == "__main__":
    main()
