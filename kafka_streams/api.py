"""Interactive queries over the counts, answered by whichever instance is asked.

A word lives on one repartition partition; an instance that does not own it forwards the
question to the owner (found through the directory). Top-N lists gather every instance's local
top and merge them. Every endpoint needs a bearer token (audience `kafka-streams-service`) with
one of the realm's application roles; a forwarded question carries the caller's token, so the
owner checks it too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Header, HTTPException, Query
from pydantic import BaseModel

from kafka_streams import metrics
from kafka_streams.counter import Counter
from kafka_streams.directory import Directory, partition_for
from kafka_streams.store import read_count, read_earlier, read_times, read_top, read_window
from kafka_streams.tokenize import window_start
from kafka_streams.windows import ALL_TIME, as_datetime, hop_key
from tweetpipe.auth import APP_ROLES, AUTH_RESPONSES, require_roles
from tweetpipe.settings import TrendingOptions
from tweetpipe.trending import (
    MinCount,
    MinScore,
    Terms,
    Trend,
    Trending,
    answer,
    baseline_starts,
    rising,
)
from tweetpipe.utc import IsoDateTime, as_utc

FORWARDED = "X-Tweetpipe-Forwarded"


# Read only to forward the caller's token to a peer. Not a parameter of the spec: the token is
# the bearer security scheme that `require_roles` declares and checks (a request without one
# gets its 401 before this is read).
Authorization = Annotated[str, Header(include_in_schema=False)]


class WordCountResponse(BaseModel):
    word: str
    word_count: int
    partition: int
    answered_by: str


class WordTotal(BaseModel):
    word: str
    word_count: int


class TopWords(BaseModel):
    window_start: datetime
    window_end: datetime
    final: bool = False
    """The window's grace period has passed on every partition asked: counts are final."""
    words: list[WordTotal]


def query_router(
    *,
    counter: Counter,
    directory: Directory,
    partitions: int,
    window_seconds: int,
    timeout_s: float,
    trending: TrendingOptions | None = None,
) -> APIRouter:
    windows = counter.windows
    trending_options = trending or TrendingOptions()

    def ask_peers(path: str, params: dict[str, Any], authorization: str) -> list[Any]:
        """Every other instance's local answer (503 if one does not answer)."""
        answers = []
        for url in directory.peer_urls():
            if url == directory.url:
                continue
            try:
                reply = httpx.get(
                    f"{url}{path}",
                    params={**params, "local": True},
                    headers={"Authorization": authorization},
                    timeout=timeout_s,
                )
                reply.raise_for_status()
            except httpx.HTTPError as exc:
                raise HTTPException(503, "an instance did not answer; retry shortly") from exc
            answers.append(reply.json())
        return answers

    def watermark() -> int:
        """The earliest stream time over the owned partitions: what is final here."""
        marks = [read_times(counter.store_path(p))[1] for p in directory.owned]
        return min(marks, default=0)

    router = APIRouter(
        tags=["word counts"],
        dependencies=[Depends(require_roles(*APP_ROLES))],
        responses={**AUTH_RESPONSES},
    )

    @router.get("/get-word-count-by-word/{word}", response_model=WordCountResponse)
    def word_count(
        word: str,
        authorization: Authorization,
        forwarded: Annotated[str | None, Header(alias=FORWARDED, include_in_schema=False)] = None,
    ) -> WordCountResponse:
        """All-time count of `word` (0 if never seen), from the instance that owns it."""
        word = word.lower()
        partition = partition_for(word, partitions)
        if partition in directory.owned:
            count = read_count(counter.store_path(partition), word, ALL_TIME) or 0
            return WordCountResponse(
                word=word, word_count=count, partition=partition, answered_by=directory.instance_id
            )
        owner = directory.owner_url(partition)
        if owner is None or forwarded:
            raise HTTPException(
                503, f"no live instance owns partition {partition} yet; retry shortly"
            )
        try:
            reply = httpx.get(
                f"{owner}/get-word-count-by-word/{word}",
                headers={FORWARDED: directory.instance_id, "Authorization": authorization},
                timeout=timeout_s,
            )
        except httpx.HTTPError as exc:
            raise HTTPException(503, f"owner of partition {partition} unreachable") from exc
        if reply.status_code != 200:
            raise HTTPException(503, f"owner of partition {partition} answered {reply.status_code}")
        return WordCountResponse.model_validate(reply.json())

    @router.get("/words/top", response_model=TopWords)
    def top_words(
        authorization: Authorization,
        window: Annotated[
            IsoDateTime | None,
            Query(description="any moment in the window (ISO-8601); default: now"),
        ] = None,
        n: Annotated[int, Query(ge=1, le=100)] = 10,
        local: bool = False,
    ) -> TopWords:
        """The `n` most frequent words in a tumbling window, across every instance."""
        moment = as_utc(window) if window else datetime.now(UTC)
        start = window_start(moment, window_seconds)
        totals: dict[str, int] = {}
        for partition in directory.owned:
            for word, count in read_top(counter.store_path(partition), start, n):
                totals[word] = count
        if not local:
            for url in directory.peer_urls():
                if url == directory.url:
                    continue
                try:
                    reply = httpx.get(
                        f"{url}/words/top",
                        params={"window": as_datetime(start).isoformat(), "n": n, "local": True},
                        headers={"Authorization": authorization},
                        timeout=timeout_s,
                    )
                    reply.raise_for_status()
                except httpx.HTTPError as exc:
                    raise HTTPException(503, "an instance did not answer; retry shortly") from exc
                for item in reply.json()["words"]:
                    totals[item["word"]] = item["word_count"]
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        return TopWords(
            window_start=as_datetime(start),
            window_end=as_datetime(start + window_seconds),
            final=windows.is_final(start, watermark()),
            words=[WordTotal(word=w, word_count=c) for w, c in ranked],
        )

    @router.get("/words/trending", response_model=Trending)
    def rising_now(
        authorization: Annotated[str, Header()],
        n: Terms = 10,
        min_count: MinCount = None,
        min_score: MinScore = None,
        window: Annotated[
            IsoDateTime | None,
            Query(description="start of the hopping window (ISO-8601); default: the live one"),
        ] = None,
        local: bool = False,
    ) -> Trending:
        """Rising now in the live hopping window (the one ending soonest after the newest
        tweet), scored as the analytics service scores it, across every instance."""
        if window is not None:
            start = int(as_utc(window).timestamp())
        else:
            newest = max((read_times(counter.store_path(p))[0] for p in directory.owned), default=0)
            if not local:
                for peer in ask_peers("/words/stream-time", {}, authorization):
                    newest = max(newest, int(peer["stream_time"]))
            if newest == 0:
                return Trending(window_start=None, window_end=None, final=False, trending=[])
            start = newest - newest % windows.advance_s + windows.advance_s - windows.hop_s
        end = start + windows.hop_s
        least = trending_options.min_count if min_count is None else min_count
        earlier_keys = [
            hop_key(s, windows.hop_s)
            for s in baseline_starts(start, windows.hop_s, trending_options.baseline_windows)
            if s >= 0
        ]
        trends: list[Trend] = []
        for partition in directory.owned:
            path = counter.store_path(partition)
            latest = read_window(path, hop_key(start, windows.hop_s), least)
            present, earlier = read_earlier(path, sorted(latest), earlier_keys)
            trends += rising(latest, earlier, len(present), trending_options, n, least, min_score)
        final = windows.is_final(hop_key(start, windows.hop_s), watermark())
        if not local:
            params = {"n": n, "min_count": least, "window": as_datetime(start).isoformat()}
            if min_score is not None:
                params["min_score"] = min_score
            for peer in ask_peers("/words/trending", params, authorization):
                other = Trending.model_validate(peer)
                final = final and other.final
                trends += [Trend(**t.model_dump()) for t in other.trending]
        trends.sort(key=lambda t: (-t.score, -t.count, t.term))
        metrics.TRENDING.set(len(trends[:n]))
        return answer(as_datetime(start), as_datetime(end), final, trends[:n])

    @router.get("/words/stream-time", include_in_schema=False)
    def stream_time() -> dict[str, int]:
        """This instance's newest tweet time (for the live window across instances)."""
        newest = max((read_times(counter.store_path(p))[0] for p in directory.owned), default=0)
        return {"stream_time": newest}

    return router
