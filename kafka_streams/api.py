"""Interactive queries over the counts, answered by whichever instance is asked.

A word lives on one repartition partition; an instance that does not own it forwards the
question to the owner (found through the directory). Top-N lists gather every instance's local
top and merge them. Every endpoint needs a bearer token (audience `kafka-streams-service`) with
one of the realm's application roles; a forwarded question carries the caller's token, so the
owner checks it too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Header, HTTPException, Query
from pydantic import BaseModel

from kafka_streams.counter import Counter
from kafka_streams.directory import Directory, partition_for
from kafka_streams.store import read_count, read_top
from kafka_streams.tokenize import window_start
from kafka_streams.windows import ALL_TIME, as_datetime
from tweetpipe.auth import APP_ROLES, AUTH_RESPONSES, require_roles
from tweetpipe.utc import as_utc

FORWARDED = "X-Tweetpipe-Forwarded"


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
    words: list[WordTotal]


def query_router(
    *,
    counter: Counter,
    directory: Directory,
    partitions: int,
    window_seconds: int,
    timeout_s: float,
) -> APIRouter:
    router = APIRouter(
        tags=["word counts"],
        dependencies=[Depends(require_roles(*APP_ROLES))],
        responses={**AUTH_RESPONSES},
    )

    @router.get("/get-word-count-by-word/{word}", response_model=WordCountResponse)
    def word_count(
        word: str,
        authorization: Annotated[str, Header()],
        forwarded: Annotated[str | None, Header(alias=FORWARDED)] = None,
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
        authorization: Annotated[str, Header()],
        window: Annotated[
            datetime | None, Query(description="any moment in the window; default: now")
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
            words=[WordTotal(word=w, word_count=c) for w, c in ranked],
        )

    return router
