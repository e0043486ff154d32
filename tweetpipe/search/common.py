"""What both search backends share: opaque page cursors and Elasticsearch-style aggregations.

A cursor carries the backend's position (search_after values, an offset, a keyset) plus a
fingerprint of the query and sort it was issued for. Reusing it with a different query or sort
would silently skip or repeat documents, so that is rejected with `StoreError` instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tweetpipe.search.base import (
    DateBucket,
    SearchQuery,
    SortOrder,
    StoreError,
    TermBucket,
    TermField,
)

Position = list[int | float | str]


def fingerprint(query: SearchQuery, sort: SortOrder) -> str:
    """A short stable digest of what a page was asked for (the page size may change)."""
    fields = query.model_dump(mode="json")
    if fields["ids"] is not None:
        fields["ids"] = sorted(fields["ids"])  # set iteration order is not stable
    payload = orjson.dumps([fields, sort], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()[:16]


def encode_cursor(fp: str, position: Position) -> str:
    raw = orjson.dumps({"f": fp, "p": position})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, fp: str) -> Position:
    """The position stored in `token`; `StoreError` if it is garbage or for another query."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise StoreError("invalid cursor") from exc
    if not isinstance(data, dict) or not isinstance(data.get("p"), list):
        raise StoreError("invalid cursor")
    if data.get("f") != fp:
        raise StoreError("cursor belongs to a different query or sort order")
    position: Position = data["p"]
    if not all(isinstance(v, int | float | str) for v in position):
        raise StoreError("invalid cursor")
    return position


def offset_of(position: Position) -> int:
    """The offset stored by an offset-paged (relevance) cursor."""
    if len(position) != 1 or not isinstance(position[0], int) or position[0] < 0:
        raise StoreError("invalid cursor")
    return position[0]


def fixed_interval(interval: timedelta) -> str:
    """An Elasticsearch-style `fixed_interval` ("60s", "1500ms"); both engines accept it."""
    millis = interval // timedelta(milliseconds=1)
    if millis < 1:
        raise StoreError(f"histogram interval must be at least 1 ms, got {interval}")
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


class AggregationsFromJson(ABC):
    """`terms`, `date_histogram` and `facets` for a backend that answers Elasticsearch
    aggregation JSON (Elasticsearch itself, and tantivy's searcher); the backend supplies
    `_aggregate`."""

    @abstractmethod
    def _aggregate(
        self, query: SearchQuery | None, aggs: dict[str, dict[str, Any]]
    ) -> dict[str, list[dict[str, Any]]]:
        """The buckets of each named aggregation over the documents matching `query`, computed
        in one pass over them."""

    def terms(
        self, field: TermField, query: SearchQuery | None = None, size: int = 10
    ) -> list[TermBucket]:
        return _term_buckets(self._aggregate(query, {"a": _terms(field, size)})["a"])

    def date_histogram(
        self, query: SearchQuery | None = None, interval: timedelta = timedelta(minutes=1)
    ) -> list[DateBucket]:
        return _date_buckets(self._aggregate(query, {"a": _histogram(interval)})["a"])

    def facets(
        self, query: SearchQuery | None, field: TermField, size: int, interval: timedelta
    ) -> tuple[list[TermBucket], list[DateBucket]]:
        result = self._aggregate(
            query, {"terms": _terms(field, size), "dates": _histogram(interval)}
        )
        return _term_buckets(result["terms"]), _date_buckets(result["dates"])


def _terms(field: TermField, size: int) -> dict[str, Any]:
    return {"terms": {"field": field, "size": size}}


def _histogram(interval: timedelta) -> dict[str, Any]:
    return {
        "date_histogram": {
            "field": "created_at",
            "fixed_interval": fixed_interval(interval),
            "min_doc_count": 1,
        }
    }


def _term_buckets(buckets: list[dict[str, Any]]) -> list[TermBucket]:
    result = [TermBucket(key=str(b["key"]), count=b["doc_count"]) for b in buckets]
    return sorted(result, key=lambda b: -b.count)


def _date_buckets(buckets: list[dict[str, Any]]) -> list[DateBucket]:
    return [
        DateBucket(start=datetime.fromtimestamp(b["key"] / 1000, UTC), count=b["doc_count"])
        for b in buckets
    ]
