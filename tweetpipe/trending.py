"""What "rising now" means: a term's count in the latest window against its own recent baseline.

One rule for the stream stage and the analytics service, so both answer the same. The baseline
is the term's mean count over the windows of the same size just before the latest one (back to
back, not overlapping it); the score is how far above that mean the count is, in units of the
spread a steady (Poisson) rate would show: (count - baseline) / sqrt(baseline + 1). A term
needs a minimum count as well, or one mention after none would look like news.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel

from tweetpipe.settings import TrendingOptions
from tweetpipe.text import STOP_WORDS

MAX_TERMS = 100
Terms = Annotated[int, Query(ge=1, le=MAX_TERMS, description="how many terms")]
MinCount = Annotated[
    int | None, Query(ge=1, description="least count in the window; default: configured")
]
MinScore = Annotated[
    float | None, Query(ge=0, le=1000, description="least score; default: configured")
]
"""The query parameters of both "rising now" endpoints (analytics and the stream stage)."""


@dataclass(frozen=True)
class Trend:
    term: str
    count: int
    baseline: float
    score: float


def excluded_terms(options: TrendingOptions) -> frozenset[str]:
    """Terms never reported: the configured ones (lower-cased, each word of a phrase too)
    and, unless turned off, the stop words."""
    terms = {w for phrase in options.excluded_terms for w in phrase.lower().split()}
    return frozenset(terms | STOP_WORDS) if options.exclude_stop_words else frozenset(terms)


def score(count: int, baseline: float) -> float:
    return (count - baseline) / math.sqrt(baseline + 1)


def baseline_starts(latest_start: int, size_s: int, windows: int) -> list[int]:
    """Starts (epoch seconds) of the back-to-back windows before the latest one, newest first."""
    return [latest_start - k * size_s for k in range(1, windows + 1)]


def rising(
    latest: Mapping[str, int],
    earlier: Mapping[str, Iterable[int]],
    baseline_windows: int,
    options: TrendingOptions,
    n: int,
    min_count: int | None = None,
    min_score: float | None = None,
) -> list[Trend]:
    """The `n` highest-scoring terms of `latest` (term → count) whose score and count reach the
    thresholds; `earlier[term]` holds its counts in the `baseline_windows` earlier windows
    that exist (absent windows count 0)."""
    least_count = options.min_count if min_count is None else min_count
    least_score = options.min_score if min_score is None else min_score
    excluded = excluded_terms(options)
    trends = []
    for term, count in latest.items():
        if count < least_count or term in excluded:
            continue
        baseline = sum(earlier.get(term, ())) / baseline_windows if baseline_windows else 0.0
        value = score(count, baseline)
        if value >= least_score:
            trends.append(Trend(term, count, round(baseline, 3), round(value, 3)))
    trends.sort(key=lambda t: (-t.score, -t.count, t.term))
    return trends[:n]


class TrendingTerm(BaseModel):
    term: str
    count: int
    """Occurrences in the latest window."""
    baseline: float
    """Mean occurrences in the windows of the same size just before it."""
    score: float
    """(count - baseline) / sqrt(baseline + 1); highest first."""


class Trending(BaseModel):
    """`GET …/trending`: the latest hopping window's terms well above their own baseline."""

    window_start: datetime | None
    """The latest hopping window; null when there is no data yet."""
    window_end: datetime | None
    final: bool
    """False while the window is still provisional (counts may still grow)."""
    trending: list[TrendingTerm]


def answer(start: datetime, end: datetime, final: bool, trends: Iterable[Trend]) -> Trending:
    return Trending(
        window_start=start,
        window_end=end,
        final=final,
        trending=[TrendingTerm(**vars(t)) for t in trends],
    )
