"""The document API: the classic endpoints (`/documents`, `/documents/{id}`, by text) and
the search endpoint with highlights, cursors and aggregations.

Store calls block: the Elasticsearch client waits on the network, so its calls run in the
threadpool; tantivy computes in this process, so its calls run inline (a thread would only add
a hop and queue for the GIL). Every route filters by the caller's read scope inside the store
query.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, ParamSpec, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from query_service.access import Scope
from query_service.enrichment import WordCounts
from query_service.schemas import (
    Aggregations,
    DocumentListV1,
    DocumentListV2,
    DocumentV1,
    DocumentV2,
    ErrorMessage,
    PageLinks,
    SearchHit,
    SearchResponse,
    TextQuery,
)
from query_service.versioning import ApiVersion, versioned, versioned_responses
from tweetpipe.model import Tweet
from tweetpipe.search import (
    MAX_PAGE_SIZE,
    MAX_QUERY_LENGTH,
    PageRequest,
    SearchPage,
    SearchQuery,
    SearchStore,
    SortOrder,
)
from tweetpipe.utc import IsoDateTime, as_utc

MAX_CURSOR_LENGTH = 2048
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"  # what `tweetpipe.search.common.encode_cursor` writes
TOP_HASHTAGS = 10
ERRORS: dict[int | str, dict[str, object]] = {
    400: {
        "model": ErrorMessage,
        "description": "A cursor this API did not issue, or issued for another query or sort",
    },
    401: {"model": ErrorMessage, "description": "Missing or invalid bearer token"},
    403: {"model": ErrorMessage, "description": "Missing role or document permission"},
    503: {"model": ErrorMessage, "description": "The search store is unavailable"},
}
router = APIRouter(prefix="/documents", tags=["documents"], responses=ERRORS)


async def get_store(request: Request) -> SearchStore:
    store: SearchStore = request.app.state.store
    return store


async def get_word_counts(request: Request) -> WordCounts:
    word_counts: WordCounts = request.app.state.word_counts
    return word_counts


async def base_path(request: Request) -> str:
    """Links are relative to where the client reached us (the gateway adds its route prefix)."""
    return request.headers.get("x-forwarded-prefix", "").rstrip("/")


Store = Annotated[SearchStore, Depends(get_store)]
Base = Annotated[str, Depends(base_path)]
Size = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="results per page")]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_CURSOR_LENGTH,
        pattern=CURSOR_PATTERN,
        description="`next_cursor` of the previous page: opaque URL-safe base64, valid only with "
        "the query and sort it was issued for (400 otherwise)",
    ),
]


P = ParamSpec("P")
R = TypeVar("R")


async def _run(store: SearchStore, call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """A store call where it costs least (see the module docstring)."""
    if store.waits_on_network:
        return await run_in_threadpool(call, *args, **kwargs)
    return call(*args, **kwargs)


def _documents(tweets: list[Tweet], version: int, base: str) -> list[DocumentV1]:
    model = DocumentV2 if version == 2 else DocumentV1
    return [model.of(t, base) for t in tweets]


def _next_link(request: Request, base: str, cursor: str | None) -> str | None:
    """The next page's URL, for a GET; a POST's next page is the same body again with
    `?cursor=`, which no link can carry (a GET on it would get 405), so it has none."""
    if cursor is None or request.method != "GET":
        return None
    params = {k: v for k, v in request.query_params.items() if k != "cursor"}
    params["cursor"] = cursor
    return f"{base}{request.url.path}?{urlencode(params)}"


def _list(
    page: SearchPage, version: int, request: Request, base: str
) -> DocumentListV1 | DocumentListV2:
    tweets = [hit.tweet for hit in page.hits]
    links = PageLinks(next=_next_link(request, base, page.next_cursor))
    if version == 2:
        return DocumentListV2(
            documents=[DocumentV2.of(t, base) for t in tweets],
            next_cursor=page.next_cursor,
            links=links,
        )
    return DocumentListV1(
        documents=[DocumentV1.of(t, base) for t in tweets],
        next_cursor=page.next_cursor,
        links=links,
    )


@router.get(
    "",
    response_model=DocumentListV1 | DocumentListV2,
    responses=versioned_responses(DocumentListV1, DocumentListV2),
)
async def all_documents(
    request: Request,
    scope: Scope,
    store: Store,
    version: ApiVersion,
    base: Base,
    size: Size = 20,
    cursor: Cursor = None,
) -> JSONResponse:
    """Every document the caller may read, newest first."""
    query = SearchQuery(ids=await scope.ids())
    page = await _run(
        store, store.search, query, PageRequest(size=size, sort="newest", cursor=cursor)
    )
    return versioned(_list(page, version, request, base), version)


@router.get(
    "/search",
    response_model=SearchResponse,
    responses={422: {"description": "Invalid parameters"}},
)
async def search(
    request: Request,
    scope: Scope,
    store: Store,
    base: Base,
    q: Annotated[
        str | None, Query(min_length=1, max_length=MAX_QUERY_LENGTH, description="words to match")
    ] = None,
    user_id: Annotated[int | None, Query(gt=0, lt=2**63)] = None,
    hashtag: Annotated[str | None, Query(min_length=1, max_length=140)] = None,
    lang: Annotated[str | None, Query(pattern=r"^[a-z]{2}$")] = None,
    since: Annotated[
        IsoDateTime | None,
        Query(alias="from", description="created at or after (ISO-8601; no offset means UTC)"),
    ] = None,
    until: Annotated[
        IsoDateTime | None,
        Query(alias="to", description="created before (ISO-8601; no offset means UTC)"),
    ] = None,
    size: Size = 10,
    cursor: Cursor = None,
    sort: SortOrder = "relevance",
    aggregations: Annotated[
        bool,
        Query(
            description="include top hashtags and the per-minute histogram (first page only: "
            "they describe the whole result, which does not change from page to page)"
        ),
    ] = True,
) -> Response:
    """Full-text search with filters; hits carry highlights, pages chain by `next_cursor`."""
    since = as_utc(since) if since else None
    until = as_utc(until) if until else None
    if since is not None and until is not None and since >= until:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "to"), "msg": "must be after `from`"}]
        )
    query = SearchQuery(
        text=q,
        user_id=user_id,
        hashtag=hashtag,
        lang=lang,
        since=since,
        until=until,
        ids=await scope.ids(),
    )
    page = await _run(store, store.search, query, PageRequest(size=size, sort=sort, cursor=cursor))
    aggs = None
    if aggregations and cursor is None:
        top_hashtags, per_minute = await _run(
            store, store.facets, query, "hashtags", TOP_HASHTAGS, timedelta(minutes=1)
        )
        aggs = Aggregations(top_hashtags=top_hashtags, per_minute=per_minute)
    answer = SearchResponse(
        total=page.total,
        hits=[
            SearchHit(document=DocumentV2.of(h.tweet, base), score=h.score, highlights=h.highlights)
            for h in page.hits
        ],
        next_cursor=page.next_cursor,
        links=PageLinks(next=_next_link(request, base, page.next_cursor)),
        aggregations=aggs,
    )
    # Serialised here: returning the model would have FastAPI validate it all over again.
    return Response(answer.model_dump_json(), media_type="application/json")


@router.api_route(
    "/get-document-by-text",
    methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
async def by_text_takes_only_post() -> None:
    """405 for any method but POST here: without this route `/{document_id}` would take the
    name for an id and answer 422 (declared before it, so it is matched first)."""
    raise HTTPException(405)


@router.get(
    "/{document_id}",
    response_model=DocumentV1 | DocumentV2,
    responses={
        **versioned_responses(DocumentV1, DocumentV2),
        404: {"model": ErrorMessage, "description": "No such document"},
    },
)
async def one_document(
    document_id: Annotated[int, Path(gt=0, lt=2**63)],
    scope: Scope,
    store: Store,
    version: ApiVersion,
    base: Base,
) -> JSONResponse:
    """One document by id; 403 without READ permission on it, whether it exists or not."""
    await scope.require(document_id)
    tweet = await _run(store, store.get, document_id)
    if tweet is None:
        raise HTTPException(404, f"no document with id {document_id}")
    return versioned(_documents([tweet], version, base)[0], version)


@router.post(
    "/get-document-by-text",
    response_model=DocumentListV1 | DocumentListV2,
    responses=versioned_responses(DocumentListV1, DocumentListV2),
)
async def documents_by_text(
    body: TextQuery,
    request: Request,
    scope: Scope,
    store: Store,
    word_counts: Annotated[WordCounts, Depends(get_word_counts)],
    version: ApiVersion,
    base: Base,
    size: Size = 20,
    cursor: Cursor = None,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> JSONResponse:
    """Documents matching the text, best first; v2 adds each word's count when configured."""
    query = SearchQuery(text=body.text, ids=await scope.ids())
    page = await _run(
        store,
        store.search,
        query,
        PageRequest(size=size, sort="relevance", cursor=cursor, highlight=False),
    )
    result = _list(page, version, request, base)
    if isinstance(result, DocumentListV2) and word_counts.enabled:
        result.word_counts = await word_counts.lookup(body.text, authorization)
        result.word_count_source = word_counts.source  # type: ignore[assignment]
    return versioned(result, version)
