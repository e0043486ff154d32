"""Search store: one interface (`SearchStore`), two backends picked by `SearchSettings.backend`."""

from __future__ import annotations

from tweetpipe.search.base import (
    MAX_PAGE_SIZE,
    MAX_QUERY_LENGTH,
    BulkResult,
    DateBucket,
    Hit,
    IndexedTweet,
    PageRequest,
    Rejection,
    SearchPage,
    SearchQuery,
    SearchStore,
    SortOrder,
    StoreError,
    StoreUnavailable,
    TermBucket,
    TermField,
    document,
)
from tweetpipe.settings import SearchSettings

__all__ = [
    "MAX_PAGE_SIZE",
    "MAX_QUERY_LENGTH",
    "BulkResult",
    "DateBucket",
    "Hit",
    "IndexedTweet",
    "PageRequest",
    "Rejection",
    "SearchPage",
    "SearchQuery",
    "SearchStore",
    "SortOrder",
    "StoreError",
    "StoreUnavailable",
    "TermBucket",
    "TermField",
    "document",
    "open_store",
]


def open_store(settings: SearchSettings, *, writer: bool = False) -> SearchStore:
    """The configured backend, not yet connected (call `ensure_ready()`).

    `writer` matters for tantivy only: exactly one process may write an index directory.
    Backends are imported lazily so a service loads only the client it uses.
    """
    if settings.backend == "elasticsearch":
        from tweetpipe.search.elastic import ElasticsearchStore

        return ElasticsearchStore(settings)
    from tweetpipe.search.tantivy_store import TantivyStore

    return TantivyStore(settings, writer=writer)
