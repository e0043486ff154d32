"""Search store on an embedded tantivy index (the single-machine `local` profile).

One process writes (open with `writer=True`; tantivy's lock file enforces it); any number of
processes read. `bulk_upsert` commits, which makes the batch durable; every read first checks
whether a commit happened since (one `stat` of `meta.json`) and reloads only then, so readers in
other processes see the latest commit at once, or, where aggregations were asked, once they are
computed on it in the background (`tantivy_snapshots`). Between commits the same searcher serves
every read: its document-store cache stays warm, and aggregations are computed once per commit.

Cursors: `newest`/`oldest` pages use a keyset (created_at, id) position, so documents committed
while a client pages do not shift later pages. `relevance` pages use an offset. Both carry a
fingerprint of the query and sort; a cursor reused with another query raises `StoreError`.
"""

from __future__ import annotations

import html
import os
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import tantivy
from pydantic import ValidationError
from tantivy import FieldType, Occur, Order, Query

from tweetpipe.model import Tweet
from tweetpipe.search.base import (
    BulkResult,
    Hit,
    IndexedTweet,
    PageRequest,
    SearchPage,
    SearchQuery,
    StoreError,
    StoreUnavailable,
)
from tweetpipe.search.common import (
    AggregationsFromJson,
    Position,
    decode_cursor,
    encode_cursor,
    fingerprint,
    offset_of,
)
from tweetpipe.search.tantivy_snapshots import Aggregation, Snapshot, Snapshots
from tweetpipe.settings import SearchSettings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_HEAP_PER_THREAD = 16_000_000
"""tantivy refuses less than ~15 MB of indexing heap per writer thread."""
HIGHLIGHT_MAX_CHARS = 1_000_000
"""A fragment as long as any post: the whole text in one fragment, as Elasticsearch's
`number_of_fragments: 0` gives."""


def _schema() -> tantivy.Schema:
    """Stored fields rebuild the Tweet; fast fields serve sorting and aggregations.

    `created_at` is a date (second precision in the index: aggregations); `created_us` holds
    exact microseconds for range filters and sorting.
    """
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", stored=True, indexed=True, fast=True)
    builder.add_integer_field("user_id", stored=True, indexed=True, fast=True)
    builder.add_text_field("text", stored=True, tokenizer_name="default")
    builder.add_date_field("created_at", stored=True, indexed=True, fast=True)
    builder.add_integer_field("created_us", indexed=True, fast=True)
    for name in ("lang", "hashtags", "mentions", "keywords"):
        builder.add_text_field(
            name, stored=True, fast=True, tokenizer_name="raw", index_option="basic"
        )
    builder.add_integer_field("schema_version", stored=True)
    return builder.build()


SCHEMA = _schema()
# The same analysis as tantivy's "default" tokenizer, used to turn free text into terms.
ANALYZER = (
    tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
    .filter(tantivy.Filter.remove_long(40))
    .filter(tantivy.Filter.lowercase())
    .build()
)


def _micros(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _to_json(tweet: IndexedTweet) -> str:
    """The document as JSON: tantivy parses it in Rust, faster than building a `Document`."""
    doc = {
        "id": tweet.id,
        "user_id": tweet.user_id,
        "text": tweet.text,
        "created_at": tweet.created_at,
        "created_us": _micros(tweet.created_at),
        "lang": tweet.lang,
        "hashtags": tweet.hashtags,
        "mentions": tweet.mentions,
        "keywords": tweet.keywords,
        "schema_version": tweet.schema_version,
    }
    return orjson.dumps(doc, option=orjson.OPT_UTC_Z).decode()


def _to_tweet(doc: tantivy.Document) -> Tweet:
    fields = doc.to_dict()
    try:
        return Tweet(
            id=fields["id"][0],
            user_id=fields["user_id"][0],
            text=fields["text"][0],
            created_at=fields["created_at"][0],
            lang=fields["lang"][0],
            hashtags=fields.get("hashtags", []),
            mentions=fields.get("mentions", []),
            keywords=fields.get("keywords", []),
            schema_version=fields["schema_version"][0],
        )
    except (KeyError, IndexError, ValidationError) as exc:
        raise StoreError(f"stored document is not a valid tweet: {exc}") from exc


def _text_query(text: str) -> Query:
    """Like Elasticsearch `match`: any analysed word matches; no query syntax, so no errors."""
    words = list(dict.fromkeys(ANALYZER.analyze(text)))
    if not words:
        return Query.empty_query()
    if len(words) == 1:  # the same scores as a one-clause boolean query, at ~70 % of its cost
        return Query.term_query(SCHEMA, "text", words[0])
    return Query.boolean_query(
        [(Occur.Should, Query.term_query(SCHEMA, "text", word)) for word in words]
    )


def _int_range(field: str, lower: int | None, upper: int | None) -> Query:
    """`lower <= field < upper`; either bound may be open."""
    return Query.range_query(
        SCHEMA, field, FieldType.Integer, lower, upper, include_upper=upper is None
    )


def _filters(query: SearchQuery) -> list[Query]:
    filters: list[Query] = []
    if query.user_id is not None:
        filters.append(Query.term_query(SCHEMA, "user_id", query.user_id))
    if query.hashtag is not None:
        filters.append(Query.term_query(SCHEMA, "hashtags", query.hashtag))
    if query.lang is not None:
        filters.append(Query.term_query(SCHEMA, "lang", query.lang))
    if query.since is not None or query.until is not None:
        since = _micros(query.since) if query.since is not None else None
        until = _micros(query.until) if query.until is not None else None
        filters.append(_int_range("created_us", since, until))
    if query.ids is not None:
        filters.append(Query.term_set_query(SCHEMA, "id", sorted(query.ids)))
    return filters


def _all_of(queries: Sequence[Query]) -> Query:
    if not queries:
        return Query.all_query()
    if len(queries) == 1:
        return queries[0]
    return Query.boolean_query([(Occur.Must, q) for q in queries])


def _to_query(query: SearchQuery | None, *extra: Query) -> Query:
    """Text scores; filters (and `extra`) only restrict, with zero score like ES filters."""
    if query is None:
        return _all_of(extra)
    filters = [*_filters(query), *extra]
    if query.text is None:
        return _all_of(filters)
    parts = [_text_query(query.text)]
    if filters:
        parts.append(Query.const_score_query(_all_of(filters), 0.0))
    return _all_of(parts)


def _after(position: Position, descending: bool) -> Query:
    """Documents strictly after the keyset position (created_us, id) in the sort order."""
    created_us, tweet_id = _keyset(position)
    if descending:
        earlier = _int_range("created_us", None, created_us)
        same_time = _int_range("id", None, tweet_id)
    else:
        earlier = _int_range("created_us", created_us + 1, None)
        same_time = _int_range("id", tweet_id + 1, None)
    tie = _all_of([Query.term_query(SCHEMA, "created_us", created_us), same_time])
    return Query.boolean_query([(Occur.Should, earlier), (Occur.Should, tie)])


def _keyset(position: Position) -> tuple[int, int]:
    if len(position) != 2 or not all(isinstance(v, int) for v in position):
        raise StoreError("invalid cursor")
    return int(position[0]), int(position[1])


def _highlight(snippet: tantivy.Snippet) -> list[str]:
    """The snippet with matches in `<em>…</em>` and everything else HTML-escaped."""
    ranges = sorted((r.start, r.end) for r in snippet.highlighted())
    if not ranges:
        return []
    raw = snippet.fragment().encode()  # highlight ranges are byte offsets
    out: list[str] = []
    pos = 0
    for start, end in ranges:
        out.append(html.escape(raw[pos:start].decode()))
        out.append(f"<em>{html.escape(raw[start:end].decode())}</em>")
        pos = end
    out.append(html.escape(raw[pos:].decode()))
    return ["".join(out)]


def _total(result: tantivy.SearchResult) -> int:
    """The hit count of a search made with `count=True`."""
    return int(result.count)  # type: ignore[attr-defined]  # missing from tantivy's stubs


def _count(searcher: tantivy.Searcher, query: Query) -> int:
    return _total(searcher.search(query, 1, count=True))  # a limit of 0 panics in tantivy


def _writer_threads(heap_bytes: int) -> int:
    return max(1, min(os.cpu_count() or 1, 8, heap_bytes // MIN_HEAP_PER_THREAD))


class TantivyStore(AggregationsFromJson):
    """`SearchStore` over a tantivy index directory; see the module docstring for the rules."""

    waits_on_network = False

    def __init__(self, settings: SearchSettings, *, writer: bool = False) -> None:
        self._path = Path(settings.tantivy_path)
        self._heap_bytes = settings.tantivy_writer_heap_mb * 1_000_000
        self._wants_writer = writer
        self._index: tantivy.Index | None = None
        self._writer: tantivy.IndexWriter | None = None
        self._lock = threading.Lock()
        self._snapshots = Snapshots(self._path, warm_interval_s=settings.tantivy_warm_interval_s)

    def ensure_ready(self) -> None:
        with self._lock:
            self._open()

    def _open(self) -> tantivy.Index:
        if self._index is None:
            try:
                self._path.mkdir(parents=True, exist_ok=True)
                index = tantivy.Index(SCHEMA, path=str(self._path), reuse=True)
            except (OSError, ValueError) as exc:
                if "schema does not match" in str(exc):
                    raise StoreError(
                        f"index at {self._path} has a different schema: reindex into a new path"
                    ) from exc
                raise StoreError(f"cannot open index at {self._path}: {exc}") from exc
            if self._wants_writer:
                self._writer = self._open_writer(index)
            self._index = index
        return self._index

    def _open_writer(self, index: tantivy.Index) -> tantivy.IndexWriter:
        try:
            return index.writer(self._heap_bytes, _writer_threads(self._heap_bytes))
        except ValueError as exc:
            if "LockBusy" in str(exc):
                raise StoreError(f"index at {self._path} is locked by another writer") from exc
            raise StoreError(f"cannot open a writer on {self._path}: {exc}") from exc

    def _searcher(self) -> tantivy.Searcher:
        return self._latest().searcher

    def _latest(self) -> Snapshot:
        return self._snapshots.latest(self._opened())

    def _opened(self) -> tantivy.Index:
        index = self._index
        if index is None:
            with self._lock:
                index = self._open()
        return index

    def bulk_upsert(self, tweets: Sequence[IndexedTweet]) -> BulkResult:
        """Every tweet fits the schema (the contract's checks guarantee it), so nothing is
        rejected."""
        latest = {t.id: _to_json(t) for t in tweets}  # a repeated id: the last one wins
        with self._lock:
            self._open()
            writer = self._writer
            if writer is None:
                raise StoreError(f"store on {self._path} was opened read-only")
            if latest:
                self._write(writer, latest)
        return BulkResult(indexed=len(tweets))

    def _write(self, writer: tantivy.IndexWriter, docs: dict[int, str]) -> None:
        """Delete then add, then commit: deletes apply only to documents added before them."""
        try:
            writer.delete_documents_by_query(Query.term_set_query(SCHEMA, "id", list(docs)))
            for doc in docs.values():
                writer.add_json(doc)
        except ValueError as exc:
            writer.rollback()
            raise StoreError(f"indexing into {self._path} failed: {exc}") from exc
        try:
            writer.commit()
        except ValueError as exc:  # e.g. disk full: the batch is not durable, retry later
            writer.rollback()
            raise StoreUnavailable(f"commit to {self._path} failed: {exc}") from exc

    def get(self, tweet_id: int) -> Tweet | None:
        searcher = self._searcher()
        hits = searcher.search(Query.term_query(SCHEMA, "id", tweet_id), 1).hits
        return _to_tweet(searcher.doc(hits[0][1])) if hits else None

    def search(self, query: SearchQuery, page: PageRequest) -> SearchPage:
        fp = fingerprint(query, page.sort)
        position = decode_cursor(page.cursor, fp) if page.cursor is not None else None
        searcher = self._searcher()
        if page.sort == "relevance":
            scored, total, next_position = self._by_relevance(searcher, query, page, position)
        else:
            scored, total, next_position = self._by_time(searcher, query, page, position)
        snippets = None
        if page.highlight and query.text is not None:
            snippets = tantivy.SnippetGenerator.create(
                searcher, _text_query(query.text), SCHEMA, "text"
            )
            snippets.set_max_num_chars(HIGHLIGHT_MAX_CHARS)
        hits = []
        for score, address in scored:
            doc = searcher.doc(address)
            highlights = _highlight(snippets.snippet_from_doc(doc)) if snippets else []
            hits.append(Hit(tweet=_to_tweet(doc), score=score, highlights=highlights))
        next_cursor = encode_cursor(fp, next_position) if next_position is not None else None
        return SearchPage(hits=hits, total=total, next_cursor=next_cursor)

    def _by_relevance(
        self,
        searcher: tantivy.Searcher,
        query: SearchQuery,
        page: PageRequest,
        position: Position | None,
    ) -> tuple[list[tuple[float | None, tantivy.DocAddress]], int, Position | None]:
        """Score order (id order without text, like Elasticsearch's constant scores)."""
        offset = offset_of(position) if position is not None else 0
        q = _to_query(query)
        scored: list[tuple[float | None, tantivy.DocAddress]]
        if query.text is not None:
            result = searcher.search(q, page.size + 1, count=True, offset=offset)
            scored = [(float(score), address) for score, address in result.hits]
        else:
            result = searcher.search(
                q, page.size + 1, count=True, order_by_field="id", offset=offset
            )
            scored = [(None, address) for _, address in result.hits]
        more = len(scored) > page.size
        return scored[: page.size], _total(result), [offset + page.size] if more else None

    def _by_time(
        self,
        searcher: tantivy.Searcher,
        query: SearchQuery,
        page: PageRequest,
        position: Position | None,
    ) -> tuple[list[tuple[float | None, tantivy.DocAddress]], int, Position | None]:
        """Keyset pages in (created_at, id) order; tantivy sorts by one field, ties fixed here."""
        descending = page.sort == "newest"
        order = Order.Desc if descending else Order.Asc
        extra = [_after(position, descending)] if position is not None else []
        q = _to_query(query, *extra)
        result = searcher.search(
            q, page.size + 1, count=True, order_by_field="created_us", order=order
        )
        rows = self._rows(searcher, result.hits)
        more = len(rows) > page.size
        if more and rows[page.size - 1][0] == rows[page.size][0]:
            # The page ends inside a group of equal timestamps: take that group's members
            # in id order, which tantivy's single-field sort does not guarantee.
            boundary = rows[page.size][0]
            kept = [r for r in rows[: page.size] if r[0] != boundary]
            group_query = _to_query(query, *extra, Query.term_query(SCHEMA, "created_us", boundary))
            group_size = _count(searcher, group_query)
            grouped = searcher.search(group_query, group_size, order_by_field="created_us")
            group = self._rows(searcher, grouped.hits)
            group.sort(key=lambda r: r[1], reverse=descending)
            rows = kept + group[: page.size - len(kept)]
        else:
            rows = rows[: page.size]
        rows.sort(key=lambda r: (r[0], r[1]), reverse=descending)
        total = _total(result) if position is None else _count(searcher, _to_query(query))
        next_position: Position | None = [rows[-1][0], rows[-1][1]] if more else None
        return [(None, r[2]) for r in rows], total, next_position

    @staticmethod
    def _rows(
        searcher: tantivy.Searcher, hits: list[tuple[Any, tantivy.DocAddress]]
    ) -> list[tuple[int, int, tantivy.DocAddress]]:
        """(created_us, id, address) for hits sorted by `created_us`."""
        addresses = [address for _, address in hits]
        ids = searcher.fast_field_values("id", addresses)
        return [(int(h[0]), int(i or 0), a) for h, i, a in zip(hits, ids, addresses, strict=True)]

    def count(self, query: SearchQuery | None = None) -> int:
        searcher = self._searcher()
        if query is None:
            return searcher.num_docs
        return _count(searcher, _to_query(query))

    def _aggregate(
        self, query: SearchQuery | None, aggs: dict[str, dict[str, Any]]
    ) -> dict[str, list[dict[str, Any]]]:
        """Answered from the cache while the index is at the generation it was computed at:
        aggregations read every matching document, the same again until the next commit."""
        snapshot = self._latest()
        asked = fingerprint(query or SearchQuery(), "relevance")  # ids sorted: a stable key
        key = asked + orjson.dumps(aggs, option=orjson.OPT_SORT_KEYS).decode()
        result = snapshot.cached(key)
        if result is None:
            tantivy_query = _to_query(query)
            try:
                result = snapshot.searcher.aggregate(tantivy_query, aggs)
            except ValueError as exc:
                raise StoreError(f"aggregation failed: {exc}") from exc
            snapshot.remember(key, Aggregation(tantivy_query, aggs, result))
        return {name: result[name]["buckets"] for name in aggs}

    def refresh(self) -> None:
        self._snapshots.reload(self._opened())

    def ping(self) -> bool:
        try:
            self._searcher()
        except Exception:  # a health check reports, it never raises
            return False
        return True

    def close(self) -> None:
        """Release the writer (and its lock file) after in-flight merges finish."""
        with self._lock:
            writer, self._writer, self._index = self._writer, None, None
            self._snapshots.clear()
            if writer is not None:
                writer.wait_merging_threads()
