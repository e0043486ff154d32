"""Words and windows: the counting rules, kept apart from the plumbing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from kafka_streams.windows import ALL_TIME, Windows
from tweetpipe.text import words


class Countable(Protocol):
    """What counting reads of a tweet (a `Tweet`, or the split stage's `TweetFields`)."""

    @property
    def created_at(self) -> datetime: ...

    @property
    def text(self) -> str: ...


def window_start(moment: datetime, window_seconds: int) -> int:
    """Start of the tumbling window holding `moment`, in epoch seconds."""
    seconds = int(moment.timestamp())
    return seconds - seconds % window_seconds


@dataclass
class CountedBatch:
    """One input partition's batch, counted: deltas per word and window, and its stream time."""

    counts: dict[str, dict[int, int]] = field(default_factory=dict)
    stream_time: int = 0
    """Latest tweet time seen in the partition up to the end of this batch (epoch seconds)."""
    late: int = 0
    """Tweets too late for at least one of their windows (still counted in all-time totals)."""


def count_batch(
    tweets: Iterable[Countable],
    windows: Windows,
    stop_words: frozenset[str] = frozenset(),
    stream_time: int = 0,
) -> CountedBatch:
    """Per word: occurrences per open window key, plus the all-time delta under `ALL_TIME`.

    Tweets are taken in offset order, stream time moving with them, so the same range from the
    same starting stream time always gives the same deltas (a replayed range must), words in
    the order they first occur (which decides the repartition chunk each word goes in).

    The hot loop of the word count: tweets of a batch mostly share one set of open windows, so
    words are tallied once per window set (`Counter.update`, in C) and spread over the set's
    keys per distinct word, not per occurrence and key (measured: bench/wordcount.py)."""
    batch = CountedBatch(stream_time=stream_time)
    by_keys: dict[tuple[int, ...], Counter[str]] = {}
    order: dict[str, None] = {}
    at: tuple[int, int] | None = None
    tally: Counter[str] = Counter()
    late = False
    for tweet in tweets:
        moment = int(tweet.created_at.timestamp())
        if moment > batch.stream_time:
            batch.stream_time = moment
        if (moment, batch.stream_time) != at:  # a busy second's tweets share their windows
            at = (moment, batch.stream_time)
            keys, late = windows.keys(moment, batch.stream_time)
            keys.append(ALL_TIME)
            tally = by_keys.setdefault(tuple(keys), Counter())
        batch.late += late
        found = words(tweet.text, stop_words)
        tally.update(found)
        order.update(dict.fromkeys(found))
    counts: dict[str, dict[int, int]] = {}
    for key_set, tally in by_keys.items():
        for word, occurrences in tally.items():
            per_window = counts.get(word)
            if per_window is None:
                counts[word] = dict.fromkeys(key_set, occurrences)
            else:
                for key in key_set:
                    per_window[key] = per_window.get(key, 0) + occurrences
    batch.counts = {word: counts[word] for word in order}
    return batch
