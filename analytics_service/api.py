"""REST API over the stored word counts.

Words are matched lower-case (the stream stage emits them lower-case). Date-time parameters are
ISO-8601; one without an offset is taken as UTC. Invalid parameters get FastAPI's 422 body
(`{"detail": [{"loc": …, "msg": …}]}`), including the checks FastAPI cannot express itself
(`from` after `to`, a `window` that is neither `latest` nor a date-time).

Every endpoint needs a bearer token (audience `analytics-service`) with one of the realm's
application roles: word counts are not per-document, so no finer permission applies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from analytics_service.repository import WordCountRepository
from analytics_service.schemas import (
    ErrorMessage,
    SeriesPoint,
    TopWord,
    TopWords,
    WordCountOut,
    WordSeries,
)
from tweetpipe.auth import APP_ROLES, AUTH_RESPONSES, require_roles
from tweetpipe.settings import TrendingOptions
from tweetpipe.text import MAX_WORD_LENGTH
from tweetpipe.trending import MinCount, MinScore, Terms, Trending, answer, rising
from tweetpipe.utc import IsoDateTime, as_utc

router = APIRouter(
    tags=["analytics"],
    dependencies=[Depends(require_roles(*APP_ROLES))],
    responses={
        **AUTH_RESPONSES,
        503: {"model": ErrorMessage, "description": "The database is unavailable"},
    },
)

MAX_TOP = 100
MAX_POINTS = 10_000
_DATETIME: TypeAdapter[datetime] = TypeAdapter(IsoDateTime)


def get_repository(request: Request) -> WordCountRepository:
    """The repository the app was built with (`app.create_app`), injected per request."""
    repository: WordCountRepository = request.app.state.repository
    return repository


Repository = Annotated[WordCountRepository, Depends(get_repository)]
Word = Annotated[str, Path(min_length=1, max_length=MAX_WORD_LENGTH)]


def _invalid(parameter: str, message: str, value: Any) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", parameter), "msg": message, "input": value}]
    )


@router.get(
    "/get-word-count-by-word/{word}",
    responses={404: {"model": ErrorMessage, "description": "No counts for the word"}},
)
def word_count(word: Word, repository: Repository) -> WordCountOut:
    """The word's count in the most recent window it appears in."""
    word = word.lower()
    row = repository.latest(word)
    if row is None:
        raise HTTPException(404, f"no counts for word {word!r}")
    return WordCountOut.model_validate(row)


@router.get("/analytics/words/{word}/series")
def word_series(
    word: Word,
    repository: Repository,
    start: Annotated[
        IsoDateTime | None,
        Query(alias="from", description="earliest window start (inclusive)"),
    ] = None,
    end: Annotated[
        IsoDateTime | None,
        Query(alias="to", description="latest window start (inclusive)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_POINTS, description="most points")] = 1000,
) -> WordSeries:
    """The word's count per window whose start lies in [from, to], oldest first."""
    word = word.lower()
    start = as_utc(start) if start else None
    end = as_utc(end) if end else None
    if start is not None and end is not None and start > end:
        raise _invalid("from", "'from' must not be after 'to'", start.isoformat())
    rows = repository.series(word, start, end, limit)
    return WordSeries(
        word=word, start=start, end=end, points=[SeriesPoint.model_validate(r) for r in rows]
    )


@router.get("/analytics/top")
def top_words(
    repository: Repository,
    window: Annotated[
        str,
        Query(
            description="window start (ISO-8601; no offset means UTC) or `latest`",
            max_length=64,
            # What the check below accepts, so the schema promises no more than the service.
            json_schema_extra={"anyOf": [{"const": "latest"}, {"format": "date-time"}]},
        ),
    ] = "latest",
    n: Annotated[int, Query(ge=1, le=MAX_TOP, description="how many words")] = 10,
) -> TopWords:
    """The `n` most counted words of one window (trending)."""
    if window == "latest":
        window_start = repository.latest_window()
    else:
        try:
            window_start = as_utc(_DATETIME.validate_python(window))
        except ValidationError:
            raise _invalid(
                "window",
                "'window' must be 'latest' or an ISO-8601 date-time such as 2026-11-22T10:00:00Z",
                window,
            ) from None
    if window_start is None:
        return TopWords(window_start=None, window_end=None, final=False, words=[])
    rows = repository.top(window_start, n)
    return TopWords(
        window_start=window_start,
        window_end=rows[0].window_end if rows else None,
        final=bool(rows) and all(r.final for r in rows),
        words=[TopWord.model_validate(r) for r in rows],
    )


def get_trending_options(request: Request) -> TrendingOptions:
    options: TrendingOptions = request.app.state.trending
    return options


@router.get("/analytics/trending")
def trending(
    repository: Repository,
    options: Annotated[TrendingOptions, Depends(get_trending_options)],
    n: Terms = 10,
    min_count: MinCount = None,
    min_score: MinScore = None,
) -> Trending:
    """Rising now: the terms of the latest hopping window (provisional or final) whose count
    is well above their own baseline, the mean of the windows of the same size before it.
    Stop words and the configured filter keywords are left out."""
    window = repository.latest_hopping_window()
    if window is None:
        return Trending(window_start=None, window_end=None, final=False, trending=[])
    start, end = window
    size = end - start
    least = options.min_count if min_count is None else min_count
    rows = repository.hopping_counts(start, end, least)
    latest = {r.word: r.word_count for r in rows}
    starts = [start - k * size for k in range(1, options.baseline_windows + 1)]
    present, earlier = repository.earlier_counts(sorted(latest), starts, size)
    terms = rising(latest, earlier, present, options, n, min_count=least, min_score=min_score)
    return answer(start, end, repository.hopping_window_final(start, end), terms)
