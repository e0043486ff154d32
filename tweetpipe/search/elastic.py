"""Search store on Elasticsearch 8.x (the `docker` profile), via the official 8.x client.

Documents are indexed with `_id` = tweet id and op `index`, so re-delivery overwrites. A bulk
acknowledgement is durable (default translog durability); `refresh()` makes it searchable.

Cursors: `newest`/`oldest` pages use `search_after` on (created_at, id), so documents indexed
while a client pages do not shift later pages. `relevance` pages use `from` offsets (capped by
`index.max_result_window`, 10,000 by default): scores change as documents arrive anyway, and the
noida-db emulator mishandles ties on float `_score` values in `search_after` (pages repeat).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from elasticsearch import (
    ApiError,
    ConnectionError,
    ConnectionTimeout,
    Elasticsearch,
    NotFoundError,
    TransportError,
    helpers,
)
from pydantic import ValidationError

from tweetpipe.model import Tweet
from tweetpipe.search.base import (
    BulkResult,
    Hit,
    IndexedTweet,
    PageRequest,
    Rejection,
    SearchPage,
    SearchQuery,
    StoreError,
    StoreUnavailable,
    document,
)
from tweetpipe.search.common import (
    AggregationsFromJson,
    decode_cursor,
    encode_cursor,
    fingerprint,
    offset_of,
)
from tweetpipe.settings import SearchSettings

MAPPINGS: dict[str, Any] = {
    "properties": {
        "id": {"type": "long"},
        "user_id": {"type": "long"},
        "text": {"type": "text", "analyzer": "standard"},
        "created_at": {"type": "date"},
        "lang": {"type": "keyword"},
        "hashtags": {"type": "keyword"},
        "mentions": {"type": "keyword"},
        "keywords": {"type": "keyword"},
        "schema_version": {"type": "integer"},
    }
}
TEMPLATE_PRIORITY = 200
"""Above the built-in templates (priority 100), so an overlapping pattern cannot shadow ours."""
BULK_CHUNK_SIZE = 1000
PING_TIMEOUT_S = 2.0

SORTS: dict[str, list[dict[str, str]]] = {
    "relevance": [{"_score": "desc"}, {"id": "desc"}],
    "newest": [{"created_at": "desc"}, {"id": "desc"}],
    "oldest": [{"created_at": "asc"}, {"id": "asc"}],
}


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Map client exceptions to the store's: transient ones to `StoreUnavailable`."""
    try:
        yield
    except ApiError as exc:
        message = f"elasticsearch {action} failed: {exc}"
        if exc.status_code == 429 or exc.status_code >= 500:
            raise StoreUnavailable(message) from exc
        raise StoreError(message) from exc
    except (ConnectionError, ConnectionTimeout, TransportError) as exc:
        raise StoreUnavailable(f"elasticsearch {action} failed: {exc}") from exc


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _es_query(query: SearchQuery | None) -> dict[str, Any]:
    """A bool query: `match` on text scores; every other condition is a non-scoring filter."""
    if query is None:
        return {"match_all": {}}
    filters: list[dict[str, Any]] = []
    if query.user_id is not None:
        filters.append({"term": {"user_id": query.user_id}})
    if query.hashtag is not None:
        filters.append({"term": {"hashtags": query.hashtag}})
    if query.lang is not None:
        filters.append({"term": {"lang": query.lang}})
    if query.since is not None or query.until is not None:
        bounds: dict[str, str] = {}
        if query.since is not None:
            bounds["gte"] = _iso(query.since)
        if query.until is not None:
            bounds["lt"] = _iso(query.until)
        filters.append({"range": {"created_at": bounds}})
    if query.ids is not None:
        filters.append({"terms": {"id": sorted(query.ids)}} if query.ids else {"match_none": {}})
    must = [{"match": {"text": {"query": query.text}}}] if query.text is not None else []
    return {"bool": {"must": must, "filter": filters}}


def _reason(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}"
    return str(error)


class ElasticsearchStore(AggregationsFromJson):
    """`SearchStore` over one Elasticsearch index (created from a composable index template)."""

    waits_on_network = True

    def __init__(self, settings: SearchSettings, client: Elasticsearch | None = None) -> None:
        self._index = settings.index
        if client is None:
            password = settings.elasticsearch_password
            auth = (
                (settings.elasticsearch_username, password.get_secret_value() if password else "")
                if settings.elasticsearch_username
                else None
            )
            client = Elasticsearch(
                settings.hosts,
                basic_auth=auth,
                request_timeout=settings.request_timeout_s,
                max_retries=1,
                retry_on_timeout=False,
            )
        self._client = client

    @property
    def client(self) -> Elasticsearch:
        return self._client

    def ensure_ready(self) -> None:
        with _translated("ensure_ready"):
            self._client.indices.put_index_template(
                name=self._index,
                index_patterns=[f"{self._index}*"],
                priority=TEMPLATE_PRIORITY,
                template={"mappings": MAPPINGS},
            )
            if self._client.indices.exists(index=self._index):
                return
            try:
                self._client.indices.create(index=self._index)
            except ApiError as exc:
                if exc.error != "resource_already_exists_exception":  # lost a creation race
                    raise

    def bulk_upsert(self, tweets: Sequence[IndexedTweet]) -> BulkResult:
        actions = (
            {
                "_op_type": "index",
                "_index": self._index,
                "_id": str(t.id),
                "_source": document(t),
            }
            for t in tweets
        )
        indexed = 0
        rejected: list[Rejection] = []
        transient: list[str] = []
        with _translated("bulk"):
            for ok, item in helpers.streaming_bulk(
                self._client,
                actions,
                chunk_size=BULK_CHUNK_SIZE,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=0,
            ):
                if ok:
                    indexed += 1
                    continue
                result = next(iter(item.values()))
                status = int(result.get("status", 0))
                reason = _reason(result.get("error"))
                if status == 429 or status >= 500:
                    transient.append(f"{status} {reason}")
                else:
                    rejected.append(Rejection(tweet_id=int(result["_id"]), reason=reason))
        if transient:
            raise StoreUnavailable(
                f"elasticsearch refused {len(transient)} bulk item(s), e.g. {transient[0]}"
            )
        return BulkResult(indexed=indexed, rejected=rejected)

    def get(self, tweet_id: int) -> Tweet | None:
        with _translated("get"):
            try:
                response = self._client.get(index=self._index, id=str(tweet_id))
            except NotFoundError as exc:
                if isinstance(exc.body, dict) and exc.body.get("found") is False:
                    return None
                raise
        return _tweet(response["_source"])

    def search(self, query: SearchQuery, page: PageRequest) -> SearchPage:
        fp = fingerprint(query, page.sort)
        body: dict[str, Any] = {
            "query": _es_query(query),
            "sort": SORTS[page.sort],
            "size": page.size + 1,  # one extra tells whether another page exists
            "track_total_hits": True,
        }
        position = decode_cursor(page.cursor, fp) if page.cursor is not None else None
        offset = 0
        if page.sort == "relevance":
            offset = offset_of(position) if position is not None else 0
            body["from"] = offset
        elif position is not None:
            body["search_after"] = position
        if page.highlight and query.text is not None:
            body["highlight"] = {
                "fields": {"text": {"number_of_fragments": 0}},
                "pre_tags": ["<em>"],
                "post_tags": ["</em>"],
                "encoder": "html",
            }
        with _translated("search"):
            response = self._client.search(index=self._index, **body)
        raw_hits = response["hits"]["hits"]
        hits = [
            Hit(
                tweet=_tweet(h["_source"]),
                score=h.get("_score") if query.text is not None else None,
                highlights=h.get("highlight", {}).get("text", []),
            )
            for h in raw_hits[: page.size]
        ]
        next_cursor = None
        if len(raw_hits) > page.size:
            last = (
                [offset + page.size]
                if page.sort == "relevance"
                else raw_hits[page.size - 1]["sort"]
            )
            next_cursor = encode_cursor(fp, last)
        total = int(response["hits"]["total"]["value"])
        return SearchPage(hits=hits, total=total, next_cursor=next_cursor)

    def count(self, query: SearchQuery | None = None) -> int:
        with _translated("count"):
            response = self._client.count(index=self._index, query=_es_query(query))
        return int(response["count"])

    def _aggregate(
        self, query: SearchQuery | None, aggs: dict[str, dict[str, Any]]
    ) -> dict[str, list[dict[str, Any]]]:
        with _translated("aggregation"):
            response = self._client.search(
                index=self._index, query=_es_query(query), size=0, aggs=aggs
            )
        return {name: response["aggregations"][name]["buckets"] for name in aggs}

    def refresh(self) -> None:
        with _translated("refresh"):
            self._client.indices.refresh(index=self._index)

    def ping(self) -> bool:
        try:
            return bool(self._client.options(request_timeout=PING_TIMEOUT_S).ping())
        except Exception:  # a health check reports, it never raises
            return False

    def close(self) -> None:
        self._client.close()


def _tweet(source: dict[str, Any]) -> Tweet:
    try:
        return Tweet.model_validate(source)
    except ValidationError as exc:
        raise StoreError(f"stored document is not a valid tweet: {exc}") from exc
