"""Word counts for by-text answers, from the stream stage or the analytics service.

Optional by design: each lookup has a short timeout, and a source that is down or slow yields
`word_count: null` for the words it could not answer, never a failed search. The caller's own
token is relayed, so the source applies the same authorisation.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from prometheus_client import Counter

from query_service.schemas import WordCountInfo
from query_service.settings import EnrichmentSettings
from tweetpipe.text import words

MAX_WORDS = 10
LOOKUPS = Counter(
    "tweetpipe_query_word_count_lookups_total",
    "Word-count lookups for by-text answers, by source and outcome",
    ["source", "outcome"],
)
log = logging.getLogger(__name__)


class WordCounts:
    def __init__(self, settings: EnrichmentSettings, client: httpx.AsyncClient) -> None:
        self.source = settings.source
        self._client = client
        self._timeout = settings.timeout_s
        self._base = (
            settings.kafka_streams_url
            if settings.source == "kafka-streams"
            else settings.analytics_url
        ).rstrip("/")

    @property
    def enabled(self) -> bool:
        return self.source != "none"

    async def lookup(self, text: str, authorization: str | None) -> list[WordCountInfo]:
        unique = list(dict.fromkeys(words(text)))[:MAX_WORDS]
        headers = {"Authorization": authorization} if authorization else {}
        counts = await asyncio.gather(*(self._one(word, headers) for word in unique))
        return [WordCountInfo(word=w, word_count=c) for w, c in zip(unique, counts, strict=True)]

    async def _one(self, word: str, headers: dict[str, str]) -> int | None:
        url = f"{self._base}/get-word-count-by-word/{word}"
        try:
            reply = await self._client.get(url, headers=headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            LOOKUPS.labels(self.source, "unavailable").inc()
            log.warning("word count for %r from %s failed: %r", word, self.source, exc)
            return None
        if reply.status_code == 404:  # the analytics service has no window with the word
            LOOKUPS.labels(self.source, "ok").inc()
            return 0
        if reply.status_code != 200:
            LOOKUPS.labels(self.source, f"http_{reply.status_code}").inc()
            log.warning(
                "word count for %r from %s answered %d", word, self.source, reply.status_code
            )
            return None
        LOOKUPS.labels(self.source, "ok").inc()
        count = reply.json().get("word_count")
        return count if isinstance(count, int) else None
