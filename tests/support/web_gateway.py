"""A real HTTP server in the test process that answers like the gateway does for the web client.

It serves the three routes the web client calls, with bodies built from the services' own
response models (so the shapes are theirs), and the gateway's own answers on demand: 401, 403,
429 with `Retry-After`, the 503 fallback. It records every request (path, query, token), and
serves Prometheus text at `/metrics/{service}` whose counters grow with every scrape.
"""

from __future__ import annotations

import html
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from analytics_service.schemas import SeriesPoint, TopWord, WordSeries
from analytics_service.schemas import TopWords as StoredTopWords
from kafka_streams.api import TopWords as LiveTopWords
from kafka_streams.api import WordCountResponse, WordTotal
from query_service.schemas import (
    Aggregations,
    DocumentV2,
    Links,
    PageLinks,
    SearchHit,
    SearchResponse,
)
from tests.support.ports import free_port
from tweetpipe.search import DateBucket, TermBucket
from tweetpipe.trending import Trend, answer, score

BASE_TIME = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
HASHTAGS = ["Kafka", "DevOps", "Java", "Cloud"]


def tweet(i: int) -> DocumentV2:
    """Tweet `i` of the corpus: every third one mentions Kafka, one has markup in its text."""
    words = ["Streaming", "with", "Kafka"] if i % 3 == 0 else ["Microservices", "in", "Java"]
    text = f"Tweet {i}: " + " ".join(words)
    if i == 6:
        text += " <script>alert(1)</script> & more"
    return DocumentV2(
        id=1_000 + i,
        id_str=str(1_000 + i),
        user_id=500 + i % 4,
        user_id_str=str(500 + i % 4),
        text=text,
        created_at=BASE_TIME + timedelta(seconds=20 * i),
        links=Links(self=f"/documents/{1_000 + i}", author=f"/documents/search?user_id={500 + i}"),
        lang="en" if i % 2 == 0 else "de",
        hashtags=[HASHTAGS[i % len(HASHTAGS)]],
        mentions=[],
        keywords=["kafka"] if i % 3 == 0 else ["java"],
    )


CORPUS = [tweet(i) for i in range(30)]


def _highlight(text: str, query: str | None) -> list[str]:
    escaped = html.escape(text)
    if not query:
        return []
    found = False
    for word in query.split():
        pattern = re.compile(re.escape(html.escape(word)), re.IGNORECASE)
        escaped, n = pattern.subn(lambda m: f"<em>{m.group(0)}</em>", escaped)
        found = found or n > 0
    return [escaped] if found else []


@dataclass
class Canned:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    path: str
    params: dict[str, str]
    authorization: str | None


class WebGateway:
    """Start with `with WebGateway() as gateway:`; `gateway.url` is the base URL."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[Seen] = []
        self.canned: dict[str, Canned] = {}
        self.total_override: int | None = None
        self.scrapes = 0
        self.down: set[str] = set()
        self._server = uvicorn.Server(
            uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> WebGateway:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the stand-in gateway did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    # --- the gateway's own answers -------------------------------------------------------
    def answer(self, route: str, status: int, retry_after: int | None = None) -> None:
        """From now on `route` answers like the gateway does with `status`."""
        if status == 429:
            self.canned[route] = Canned(
                429,
                {"detail": "too many requests; retry later", "route": route,
                 "retry_after_s": retry_after or 1},
                {"Retry-After": str(retry_after or 1)},
            )  # fmt: skip
        elif status == 503:
            self.canned[route] = Canned(
                503,
                {"detail": f"{route} is unavailable right now; please retry later",
                 "route": route, "cause": "breaker-open"},
                {"Retry-After": "5"},
            )  # fmt: skip
        elif status == 401:
            self.canned[route] = Canned(401, {"detail": "Not authenticated"},
                                        {"WWW-Authenticate": "Bearer"})  # fmt: skip
        else:
            self.canned[route] = Canned(status, {"detail": "Forbidden"})

    def clear(self) -> None:
        self.canned.clear()
        self.requests.clear()
        self.total_override = None

    def seen(self, path_part: str) -> list[Seen]:
        return [r for r in self.requests if path_part in r.path]

    # --- the app -------------------------------------------------------------------------
    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def gateway_like(request: Request, call_next: Any) -> Response:
            if request.url.path.startswith("/metrics/"):
                response: Response = await call_next(request)
                return response
            self.requests.append(
                Seen(
                    request.url.path,
                    dict(request.query_params),
                    request.headers.get("authorization"),
                )
            )
            route = request.url.path.split("/")[1]
            canned = self.canned.get(route)
            if canned is not None:
                return JSONResponse(canned.body, canned.status, headers=canned.headers)
            if not request.headers.get("authorization", "").startswith("Bearer "):
                return JSONResponse({"detail": "Not authenticated"}, 401)
            forwarded: Response = await call_next(request)
            return forwarded

        @app.get("/elastic-query-service/documents/search")
        def search(
            q: str | None = None,
            hashtag: str | None = None,
            lang: str | None = None,
            user_id: int | None = None,
            size: int = 10,
            cursor: str | None = None,
            sort: str = "relevance",
        ) -> dict[str, Any]:
            docs = [
                d
                for d in CORPUS
                if (not q or all(w.lower() in d.text.lower() for w in q.split()))
                and (not hashtag or hashtag.lower() in (h.lower() for h in d.hashtags))
                and (not lang or d.lang == lang)
                and (not user_id or d.user_id == user_id)
            ]
            if sort == "newest":
                docs.sort(key=lambda d: d.created_at, reverse=True)
            start = int(cursor or 0)
            page = docs[start : start + size]
            next_cursor = str(start + size) if start + size < len(docs) else None
            tags: dict[str, int] = {}
            minutes: dict[datetime, int] = {}
            for d in docs:
                for tag in d.hashtags:
                    tags[tag] = tags.get(tag, 0) + 1
                minute = d.created_at.replace(second=0)
                minutes[minute] = minutes.get(minute, 0) + 1
            answer = SearchResponse(
                total=self.total_override if self.total_override is not None else len(docs),
                hits=[
                    SearchHit(document=d, score=1.0, highlights=_highlight(d.text, q)) for d in page
                ],
                next_cursor=next_cursor,
                links=PageLinks(),
                aggregations=Aggregations(
                    top_hashtags=[
                        TermBucket(key=k, count=v)
                        for k, v in sorted(tags.items(), key=lambda kv: -kv[1])
                    ],
                    per_minute=[DateBucket(start=m, count=c) for m, c in sorted(minutes.items())],
                ),
            )
            return answer.model_dump(mode="json")

        @app.get("/kafka-streams-service/words/top")
        def live_top(n: int = 10) -> dict[str, Any]:
            words = [("kafka", 42), ("java", 30), ("streaming", 12)][:n]
            answer = LiveTopWords(
                window_start=BASE_TIME,
                window_end=BASE_TIME + timedelta(minutes=1),
                words=[WordTotal(word=w, word_count=c) for w, c in words],
            )
            return answer.model_dump(mode="json")

        @app.get("/kafka-streams-service/get-word-count-by-word/{word}")
        def word_total(word: str) -> dict[str, Any]:
            count = {"kafka": 1234, "java": 987}.get(word, 0)
            answer = WordCountResponse(word=word, word_count=count, partition=0, answered_by="x")
            return answer.model_dump(mode="json")

        @app.get("/analytics-service/analytics/top")
        def stored_top(window: str = "latest", n: int = 10) -> dict[str, Any]:
            start = BASE_TIME if window == "latest" else datetime.fromisoformat(window)
            answer = StoredTopWords(
                window_start=start,
                window_end=start + timedelta(minutes=1),
                words=[
                    TopWord(word="microservices", word_count=77),
                    TopWord(word="kafka", word_count=40),
                ],
            )
            return answer.model_dump(mode="json")

        @app.get("/analytics-service/analytics/trending")
        def rising_now(n: int = 10) -> dict[str, Any]:
            terms = [("launchday", 40, 2.0), ("release", 12, 1.5)][:n]
            return answer(
                BASE_TIME,
                BASE_TIME + timedelta(minutes=5),
                False,
                (Trend(t, c, b, round(score(c, b), 3)) for t, c, b in terms),
            ).model_dump(mode="json")

        @app.get("/analytics-service/analytics/words/{word}/series")
        def series(word: str) -> dict[str, Any]:
            points = [
                SeriesPoint(
                    window_start=BASE_TIME + timedelta(minutes=m),
                    window_end=BASE_TIME + timedelta(minutes=m + 1),
                    word_count=c,
                )
                for m, c in enumerate([5, 9, 31, 7])
            ]
            return WordSeries(word=word, points=points if word == "kafka" else []).model_dump(
                mode="json", by_alias=True
            )

        @app.get("/metrics/{service}")
        def metrics(service: str) -> Response:
            if service in self.down:
                return PlainTextResponse("down", 500)
            self.scrapes += 1
            return PlainTextResponse(_metrics_text(service, self.scrapes))

        return app


def _metrics_text(service: str, scrape: int) -> str:
    """Each scrape: 100 more tweets produced and indexed; fixed lag and dead letters."""
    topic = 'topic="twitter-topic"'
    lines = {
        "twitter-to-kafka": [
            "# TYPE tweetpipe_tweets_produced_total counter",
            f"tweetpipe_tweets_produced_total {100.0 * scrape}",
        ],
        "kafka-to-elastic": [
            "# TYPE tweetpipe_tweets_indexed_total counter",
            f"tweetpipe_tweets_indexed_total {100.0 * scrape}",
            "# TYPE tweetpipe_consumer_lag gauge",
            f'tweetpipe_consumer_lag{{group="kafka-to-elastic",{topic},partition="0"}} 7',
            f'tweetpipe_consumer_lag{{group="kafka-to-elastic",{topic},partition="1"}} 5',
            "# TYPE tweetpipe_dead_lettered_total counter",
            'tweetpipe_dead_lettered_total{stage="kafka-to-elastic",error="invalid-json"} 3',
        ],
    }
    return "\n".join(lines.get(service, ["# nothing"])) + "\n"
