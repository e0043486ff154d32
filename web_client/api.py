"""Calls to the services behind the gateway, with the signed-in user's token.

Every call answers with an outcome the pages render as they are: `Ok` with the parsed answer,
or what went wrong in the terms a user can act on — signed out (401), no permission (403),
rate limited (429, with when to retry), a service unavailable (the gateway's 503 fallback, a
service's own 503, no answer at all), or a request the service refused (4xx).
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from web_client.models import SearchPage, TopWords, Trending, WordSeries, WordTotal

T = TypeVar("T", bound=BaseModel)

SEARCH_ROUTE = "elastic-query-service"
ANALYTICS_ROUTE = "analytics-service"
STREAMS_ROUTE = "kafka-streams-service"
SERVICE_NAMES = {
    SEARCH_ROUTE: "The search service",
    ANALYTICS_ROUTE: "The analytics service",
    STREAMS_ROUTE: "The word-count service",
}


@dataclass(frozen=True)
class Ok(Generic[T]):
    value: T


@dataclass(frozen=True)
class SignedOut:
    """401: the token was refused (expired, ended session); the user must sign in again."""

    route: str


@dataclass(frozen=True)
class Forbidden:
    """403: signed in, but without a role or permission for this."""

    route: str


@dataclass(frozen=True)
class RateLimited:
    route: str
    retry_after_s: float
    retry_at: datetime


@dataclass(frozen=True)
class Unavailable:
    route: str
    detail: str
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Refused:
    """A 4xx other than 401/403/429, an unexpected status, or an answer that did not parse."""

    route: str
    status: int
    detail: str


Problem = SignedOut | Forbidden | RateLimited | Unavailable | Refused
Outcome = Ok[T] | Problem
Sort = Literal["relevance", "newest", "oldest"]


class SearchQuery(BaseModel):
    """The search page's form, as `GET /documents/search` parameters."""

    model_config = ConfigDict(frozen=True)

    text: str | None = None
    user_id: int | None = Field(default=None, gt=0)
    hashtag: str | None = None
    lang: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: Sort = "relevance"
    size: int = Field(default=10, ge=1, le=100)

    def params(self, cursor: str | None = None) -> dict[str, str]:
        values: dict[str, str | None] = {
            "q": self.text,
            "user_id": str(self.user_id) if self.user_id else None,
            "hashtag": self.hashtag,
            "lang": self.lang,
            "from": _iso(self.since),
            "to": _iso(self.until),
            "sort": self.sort,
            "size": str(self.size),
            "cursor": cursor,
        }
        return {k: v for k, v in values.items() if v}


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


class GatewayClient:
    """One HTTP connection pool to the gateway for the whole app; the token goes per call."""

    def __init__(
        self, base_url: str, timeout_s: float, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def search(
        self, token: str, query: SearchQuery, cursor: str | None = None
    ) -> Outcome[SearchPage]:
        return self._get(token, SEARCH_ROUTE, "/documents/search", query.params(cursor), SearchPage)

    def top_words_now(self, token: str, n: int = 10) -> Outcome[TopWords]:
        """The stream stage's live counts in the current one-minute window."""
        return self._get(token, STREAMS_ROUTE, "/words/top", {"n": str(n)}, TopWords)

    def top_words(self, token: str, window: datetime | None, n: int = 10) -> Outcome[TopWords]:
        """The analytics service's stored counts of one window (`None`: the latest one)."""
        params = {"window": _iso(window) or "latest", "n": str(n)}
        return self._get(token, ANALYTICS_ROUTE, "/analytics/top", params, TopWords)

    def trending(self, token: str, n: int = 5) -> Outcome[Trending]:
        """The analytics service's "rising now": terms well above their own baseline."""
        return self._get(token, ANALYTICS_ROUTE, "/analytics/trending", {"n": str(n)}, Trending)

    def word_series(
        self, token: str, word: str, since: datetime, until: datetime | None = None
    ) -> Outcome[WordSeries]:
        params = {"from": _iso(since) or "", "to": _iso(until) or ""}
        path = f"/analytics/words/{quote(word.lower(), safe='')}/series"
        return self._get(
            token, ANALYTICS_ROUTE, path, {k: v for k, v in params.items() if v}, WordSeries
        )

    def word_total(self, token: str, word: str) -> Outcome[WordTotal]:
        path = f"/get-word-count-by-word/{quote(word.lower(), safe='')}"
        return self._get(token, STREAMS_ROUTE, path, {}, WordTotal)

    def _get(
        self, token: str, route: str, path: str, params: dict[str, str], model: type[T]
    ) -> Outcome[T]:
        try:
            reply = self._http.get(
                f"/{route}{path}", params=params, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.TimeoutException:
            return Unavailable(route, "the gateway did not answer in time")
        except httpx.TransportError as exc:
            return Unavailable(route, f"the gateway at {self.base_url} does not answer ({exc})")
        return _outcome(route, reply, model)


def _outcome(route: str, reply: httpx.Response, model: type[T]) -> Outcome[T]:
    status = reply.status_code
    if status == 200:
        try:
            return Ok(model.model_validate_json(reply.content))
        except ValidationError as exc:
            return Refused(route, status, f"unexpected answer: {exc.errors()[0]['msg']}")
    body = _json(reply)
    if status == 401:
        return SignedOut(route)
    if status == 403:
        return Forbidden(route)
    if status == 429:
        wait = retry_after_s(reply.headers.get("Retry-After"), body.get("retry_after_s"))
        retry_at = datetime.now(UTC) + timedelta(seconds=wait)
        return RateLimited(route, wait, retry_at)
    if status in (502, 503, 504):
        detail = str(body.get("detail") or f"answered {status}")
        wait = retry_after_s(reply.headers.get("Retry-After"), None, default=0)
        return Unavailable(str(body.get("route") or route), detail, wait or None)
    return Refused(route, status, _detail(body) or reply.reason_phrase or f"HTTP {status}")


def _json(reply: httpx.Response) -> dict[str, Any]:
    try:
        body = reply.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _detail(body: dict[str, Any]) -> str:
    """FastAPI's `detail`: a string, or a list of validation errors (`loc`, `msg`)."""
    detail = body.get("detail")
    if isinstance(detail, list):
        parts = []
        for error in detail:
            if isinstance(error, dict):
                where = [str(x) for x in error.get("loc", []) if x not in ("query", "path")]
                parts.append(f"{'.'.join(where)}: {error.get('msg', '')}".strip(": "))
        return "; ".join(parts)
    return str(detail) if detail else ""


def retry_after_s(header: str | None, body_value: object, default: float = 1.0) -> float:
    """`Retry-After` in seconds (delta or HTTP date), else the body's `retry_after_s`."""
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(header)
                return max(0.0, when.timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    if isinstance(body_value, int | float):
        return max(0.0, float(body_value))
    return default
