"""Words and windows: the counting rules, kept apart from the plumbing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

from tweetpipe.model import Tweet
from tweetpipe.text import words


def window_start(moment: datetime, window_seconds: int) -> int:
    """Start of the tumbling window holding `moment`, in epoch seconds."""
    seconds = int(moment.timestamp())
    return seconds - seconds % window_seconds


def as_datetime(epoch_seconds: int) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


ALL_TIME = -1
"""The window key under which all-time totals are kept."""


def count_batch(
    tweets: Iterable[Tweet], window_seconds: int, stop_words: frozenset[str] = frozenset()
) -> dict[str, Counter[int]]:
    """Per word: occurrences per window start, plus the all-time delta under `ALL_TIME`."""
    counts: dict[str, Counter[int]] = {}
    for tweet in tweets:
        start = window_start(tweet.created_at, window_seconds)
        for word in words(tweet.text, stop_words):
            per_window = counts.get(word)
            if per_window is None:
                per_window = counts[word] = Counter()
            per_window[start] += 1
            per_window[ALL_TIME] += 1
    return counts
