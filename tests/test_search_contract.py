"""The search-store contract: every backend (tantivy, Elasticsearch) must pass the same tests.

Real engines only: tantivy on a temporary directory, Elasticsearch as a `noida-db` server (an
Elasticsearch-8.15 emulator; keep data small). Each test gets a fresh index. Expected results are
computed in Python from the same small corpus.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tantivy
from elasticsearch import Elasticsearch

from tests.support.elasticsearch import ElasticsearchServer
from tests.support.ports import free_port
from tweetpipe.model import Tweet
from tweetpipe.search import (
    Hit,
    PageRequest,
    SearchQuery,
    SearchStore,
    SortOrder,
    StoreError,
    StoreUnavailable,
    open_store,
)
from tweetpipe.search.tantivy_store import SCHEMA, _text_query
from tweetpipe.settings import SearchSettings

BASE = datetime(2024, 5, 1, 12, 0, 10, tzinfo=UTC)
WORDS = ["kafka", "stream", "search", "python", "rust", "index", "query", "event"]
TAGS = ["ai", "data", "news", "sport", "music"]
LANGS = ["en", "de", "fr"]


def _tweet(i: int) -> Tweet:
    """Tweet number i: ids do not follow time, and every three tweets share a timestamp."""
    words = [WORDS[i % 8], WORDS[(i * 3 + 1) % 8], WORDS[(i * 5 + 2) % 8]]
    if i % 4 == 0:
        words[0] = words[0].capitalize()
    text = " ".join(words) + f" tw{i}" + (" <b>&</b>" if i % 7 == 3 else "")
    return Tweet(
        id=10_000 + (i * 7919) % 1000,
        user_id=1 + i % 4,
        text=text,
        created_at=BASE + timedelta(seconds=25 * (i // 3), microseconds=1234 * (i // 3 % 2)),
        lang=LANGS[i % 3],
        hashtags=[TAGS[i % 5]] + ([TAGS[(i + 2) % 5]] if i % 2 else []),
        mentions=[f"user{i % 4}"],
        keywords=words[1:],
    )


CORPUS = [_tweet(i) for i in range(30)]
BY_ID = {t.id: t for t in CORPUS}


def words_of(tweet: Tweet) -> set[str]:
    return set(re.findall(r"\w+", tweet.text.lower()))


def matching(predicate: Callable[[Tweet], bool]) -> set[int]:
    return {t.id for t in CORPUS if predicate(t)}


def walk(store: SearchStore, query: SearchQuery, sort: SortOrder, size: int) -> list[Hit]:
    """Every hit, following cursors page by page."""
    hits: list[Hit] = []
    cursor: str | None = None
    for _ in range(100):
        page = store.search(query, PageRequest(size=size, sort=sort, cursor=cursor))
        assert len(page.hits) <= size
        hits.extend(page.hits)
        if page.next_cursor is None:
            return hits
        assert len(page.hits) == size
        cursor = page.next_cursor
    raise AssertionError("cursor never ran out")


def ids(hits: list[Hit]) -> list[int]:
    return [h.tweet.id for h in hits]


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def es_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ElasticsearchServer]:
    with ElasticsearchServer(tmp_path_factory.mktemp("noida") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def es_client(es_server: ElasticsearchServer) -> Iterator[Elasticsearch]:
    client = Elasticsearch(es_server.url, request_timeout=10)
    yield client
    client.close()


def _settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> SearchSettings:
    if backend == "elasticsearch":
        server: ElasticsearchServer = request.getfixturevalue("es_server")
        return SearchSettings(
            backend="elasticsearch",
            index=f"tweets-{uuid.uuid4().hex[:12]}",
            elasticsearch_hosts=server.url,
        )
    return SearchSettings(
        backend="tantivy", tantivy_path=tmp_path / "index", tantivy_writer_heap_mb=32
    )


@pytest.fixture(params=["tantivy", "elasticsearch"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> SearchSettings:
    return _settings(request.param, request, tmp_path)


@pytest.fixture
def store(settings: SearchSettings, request: pytest.FixtureRequest) -> Iterator[SearchStore]:
    client: Elasticsearch | None = None
    if settings.backend == "elasticsearch":
        client = request.getfixturevalue("es_client")
    opened = open_store(settings, writer=True)
    opened.ensure_ready()
    yield opened
    opened.close()
    if client is not None:  # keep the emulator small
        client.options(ignore_status=404).indices.delete(index=settings.index)
        client.options(ignore_status=404).indices.delete_index_template(name=settings.index)


@pytest.fixture
def loaded(store: SearchStore) -> SearchStore:
    result = store.bulk_upsert(CORPUS)
    assert result.indexed == len(CORPUS)
    assert result.rejected == []
    store.refresh()
    return store


# --- writing --------------------------------------------------------------------------------


def test_upsert_then_get_returns_the_same_tweet(store: SearchStore) -> None:
    tweet = Tweet(
        id=2**62 + 5,
        user_id=2**40,
        text="Ünïcødé café ☕ — <script>alert(1)</script> & more",
        created_at=datetime(2024, 2, 29, 23, 59, 59, 987654, tzinfo=UTC),
        lang="fr",
        hashtags=["zèbre", "Alpha"],
        mentions=[],
        keywords=["café"],
    )
    assert store.bulk_upsert([tweet]).indexed == 1
    store.refresh()

    got = store.get(tweet.id)

    assert got == tweet
    assert got is not None
    assert got.created_at.utcoffset() == timedelta(0)
    assert store.get(tweet.id + 1) is None


def test_empty_batch_is_a_no_op(store: SearchStore) -> None:
    assert store.bulk_upsert([]).indexed == 0
    store.refresh()
    assert store.count() == 0


def test_upserting_an_id_again_overwrites_it(loaded: SearchStore) -> None:
    old = CORPUS[0]
    first = old.model_copy(update={"text": "first rewrite zebra"})
    latest = old.model_copy(update={"text": "second rewrite giraffe", "lang": "it"})

    loaded.bulk_upsert([first, latest])  # one batch repeating an id: the last one wins
    loaded.bulk_upsert([latest])  # a replay of the same batch
    loaded.refresh()

    assert loaded.count() == len(CORPUS)
    assert loaded.get(old.id) == latest
    assert ids(walk(loaded, SearchQuery(text="giraffe"), "relevance", 10)) == [old.id]
    assert walk(loaded, SearchQuery(text="zebra"), "relevance", 10) == []
    assert walk(loaded, SearchQuery(text="tw0"), "relevance", 10) == []
    assert loaded.count(SearchQuery(lang="it")) == 1


def test_count_matches_the_corpus(loaded: SearchStore) -> None:
    assert loaded.count() == len(CORPUS)
    assert loaded.count(SearchQuery(text="rust")) == len(matching(lambda t: "rust" in words_of(t)))
    assert loaded.count(SearchQuery(user_id=3)) == len(matching(lambda t: t.user_id == 3))


# --- matching -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["rust", "KAFKA", "tw7", "rust kafka", "nothing-matches-this"])
def test_full_text_matches_any_word(loaded: SearchStore, text: str) -> None:
    wanted = set(re.findall(r"\w+", text.lower()))
    expected = matching(lambda t: bool(words_of(t) & wanted))

    page = loaded.search(SearchQuery(text=text), PageRequest(size=100))

    assert set(ids(page.hits)) == expected
    assert page.total == len(expected)


def test_relevance_ranks_documents_with_more_matching_words_first(loaded: SearchStore) -> None:
    both = matching(lambda t: {"python", "kafka"} <= words_of(t))
    assert both, "corpus must have tweets with both words"

    page = loaded.search(SearchQuery(text="python kafka"), PageRequest(size=100))

    assert set(ids(page.hits[: len(both)])) == both
    scores = [h.score for h in page.hits]
    assert all(s is not None for s in scores)
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]


SINCE = CORPUS[6].created_at  # a timestamp three tweets share: all three are in
UNTIL = CORPUS[15].created_at  # ...and these three are out
FILTERS: dict[str, tuple[SearchQuery, Callable[[Tweet], bool]]] = {
    "user": (SearchQuery(user_id=2), lambda t: t.user_id == 2),
    "hashtag": (SearchQuery(hashtag="news"), lambda t: "news" in t.hashtags),
    "lang": (SearchQuery(lang="de"), lambda t: t.lang == "de"),
    "since": (SearchQuery(since=SINCE), lambda t: t.created_at >= SINCE),
    "until": (SearchQuery(until=UNTIL), lambda t: t.created_at < UNTIL),
    "window": (SearchQuery(since=SINCE, until=UNTIL), lambda t: SINCE <= t.created_at < UNTIL),
    "text+lang+hashtag": (
        SearchQuery(text="kafka stream", lang="en", hashtag="ai"),
        lambda t: bool(words_of(t) & {"kafka", "stream"}) and t.lang == "en" and "ai" in t.hashtags,
    ),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_filters_narrow_the_matches(loaded: SearchStore, name: str) -> None:
    query, predicate = FILTERS[name]
    expected = matching(predicate)
    assert 0 < len(expected) < len(CORPUS), "a filter test must exclude something"

    hits = walk(loaded, query, "newest", 7)

    assert sorted(ids(hits)) == sorted(expected)
    assert loaded.count(query) == len(expected)


def test_ids_filter_restricts_inside_the_query(loaded: SearchStore) -> None:
    kafka = matching(lambda t: "kafka" in words_of(t))
    permitted = frozenset(sorted(kafka)[:3] + [t.id for t in CORPUS if t.id not in kafka][:4])
    query = SearchQuery(text="kafka", ids=permitted)
    expected = kafka & permitted

    first = loaded.search(query, PageRequest(size=2))
    hits = walk(loaded, query, "relevance", 2)

    assert first.total == len(expected) == 3
    assert sorted(ids(hits)) == sorted(expected)
    assert loaded.count(query) == len(expected)
    assert sum(b.count for b in loaded.terms("lang", query)) == len(expected)


def test_empty_ids_filter_matches_nothing(loaded: SearchStore) -> None:
    query = SearchQuery(ids=frozenset())

    page = loaded.search(query, PageRequest())

    assert (page.hits, page.total, page.next_cursor) == ([], 0, None)
    assert loaded.count(query) == 0
    assert loaded.terms("hashtags", query) == []


@pytest.mark.parametrize("text", ['"(( AND :', "foo:bar (", '"unbalanced kafka', "!!!", "tw3 OR"])
def test_malformed_query_text_is_just_words(loaded: SearchStore, text: str) -> None:
    wanted = {w for w in re.findall(r"\w+", text.lower()) if w not in {"foo", "bar"}}
    expected = matching(lambda t: bool(words_of(t) & wanted))

    page = loaded.search(SearchQuery(text=text), PageRequest(size=100))

    assert set(ids(page.hits)) == expected
    assert loaded.count(SearchQuery(text=text)) == len(expected)


# --- paging ---------------------------------------------------------------------------------


def _in_order(expected: set[int], sort: SortOrder) -> list[int]:
    """Elasticsearch's documented order: (created_at, id) for time sorts; id when unscored."""
    if sort == "relevance":
        return sorted(expected, reverse=True)
    key = lambda i: (BY_ID[i].created_at, i)  # noqa: E731
    return sorted(expected, key=key, reverse=sort == "newest")


@pytest.mark.parametrize("sort", ["relevance", "newest", "oldest"])
@pytest.mark.parametrize("text", [None, "kafka stream"])
def test_cursor_walks_every_match_exactly_once(
    loaded: SearchStore, sort: SortOrder, text: str | None
) -> None:
    query = SearchQuery(text=text)
    expected = matching(lambda t: text is None or bool(words_of(t) & {"kafka", "stream"}))

    hits = walk(loaded, query, sort, 4)  # pages end inside groups of equal timestamps

    assert len(ids(hits)) == len(set(ids(hits))) == len(expected)
    assert set(ids(hits)) == expected
    if sort != "relevance" or text is None:
        assert ids(hits) == _in_order(expected, sort)
    else:
        scores = [h.score or 0.0 for h in hits]
        assert scores == sorted(scores, reverse=True)


def test_pages_are_stable_while_documents_arrive(loaded: SearchStore) -> None:
    query = SearchQuery()
    first = loaded.search(query, PageRequest(size=5, sort="newest"))
    newer = CORPUS[-1].model_copy(update={"id": 99_999, "created_at": BASE + timedelta(days=1)})
    loaded.bulk_upsert([newer])
    loaded.refresh()

    rest: list[Hit] = []
    cursor = first.next_cursor
    while cursor is not None:
        page = loaded.search(query, PageRequest(size=5, sort="newest", cursor=cursor))
        rest.extend(page.hits)
        cursor = page.next_cursor

    assert ids(first.hits) + ids(rest) == _in_order({t.id for t in CORPUS}, "newest")


def test_a_cursor_only_works_for_its_own_query(loaded: SearchStore) -> None:
    page = loaded.search(SearchQuery(text="kafka"), PageRequest(size=2, sort="newest"))
    assert page.next_cursor is not None

    with pytest.raises(StoreError, match="different query"):
        loaded.search(SearchQuery(text="rust"), PageRequest(size=2, cursor=page.next_cursor))
    with pytest.raises(StoreError, match="different query"):
        loaded.search(
            SearchQuery(text="kafka"),
            PageRequest(size=2, sort="oldest", cursor=page.next_cursor),
        )
    with pytest.raises(StoreError, match="invalid cursor"):
        loaded.search(SearchQuery(text="kafka"), PageRequest(cursor="not a cursor!"))


# --- highlighting ---------------------------------------------------------------------------


def test_highlights_wrap_matches_in_em_and_escape_the_rest(loaded: SearchStore) -> None:
    page = loaded.search(SearchQuery(text="kafka"), PageRequest(size=100))

    assert page.hits
    for hit in page.hits:
        assert len(hit.highlights) == 1
        fragment = hit.highlights[0]
        assert "<em>kafka</em>" in fragment.lower()
        assert re.sub(r"</?em>", "", fragment).count("<") == 0  # the tweet's own markup is escaped
        if "<b>" in hit.tweet.text:
            assert "&lt;b&gt;" in fragment


def test_no_highlights_unless_asked_for_with_text(loaded: SearchStore) -> None:
    plain = loaded.search(SearchQuery(text="kafka"), PageRequest(highlight=False))
    unscored = loaded.search(SearchQuery(lang="en"), PageRequest())

    assert plain.hits
    assert all(h.highlights == [] for h in plain.hits)
    assert unscored.hits
    assert all(h.highlights == [] for h in unscored.hits)
    assert all(h.score is None for h in unscored.hits)  # no text, nothing to score


# --- aggregations ---------------------------------------------------------------------------


def _python_terms(field: str, tweets: list[Tweet]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for tweet in tweets:
        if field == "hashtags":
            counts.update(set(tweet.hashtags))
        else:
            counts[str(getattr(tweet, field))] += 1
    return counts


@pytest.mark.parametrize("field", ["hashtags", "lang", "user_id"])
@pytest.mark.parametrize("text", [None, "kafka"])
def test_terms_counts_equal_python_counts(
    loaded: SearchStore, field: str, text: str | None
) -> None:
    tweets = [t for t in CORPUS if text is None or text in words_of(t)]
    expected = _python_terms(field, tweets)
    query = SearchQuery(text=text) if text else None

    buckets = loaded.terms(field, query, size=50)  # type: ignore[arg-type]
    top = loaded.terms(field, query, size=1)  # type: ignore[arg-type]

    assert {b.key: b.count for b in buckets} == dict(expected)
    assert [b.count for b in buckets] == sorted(expected.values(), reverse=True)
    assert len(top) == 1
    assert top[0].count == max(expected.values())


@pytest.mark.parametrize("seconds", [60, 30])
@pytest.mark.parametrize("lang", [None, "en"])
def test_date_histogram_equals_python_buckets(
    loaded: SearchStore, seconds: int, lang: str | None
) -> None:
    def bucket_start(t: Tweet) -> datetime:
        epoch = int(t.created_at.timestamp())
        return datetime.fromtimestamp(epoch - epoch % seconds, UTC)

    expected = Counter(bucket_start(t) for t in CORPUS if lang in (None, t.lang))
    query = SearchQuery(lang=lang) if lang else None

    buckets = loaded.date_histogram(query, timedelta(seconds=seconds))

    assert [(b.start, b.count) for b in buckets] == sorted(expected.items())
    assert all(b.start.utcoffset() == timedelta(0) for b in buckets)


@pytest.mark.parametrize("text", [None, "kafka"])
def test_facets_are_terms_and_histogram_in_one_pass(loaded: SearchStore, text: str | None) -> None:
    query = SearchQuery(text=text) if text else None
    minute = timedelta(minutes=1)

    top, histogram = loaded.facets(query, "hashtags", 5, minute)

    assert top == loaded.terms("hashtags", query, size=5)
    assert histogram == loaded.date_histogram(query, minute)
    matching = [t for t in CORPUS if text is None or text in words_of(t)]
    assert sum(b.count for b in histogram) == len(matching)


def test_aggregations_follow_new_writes(store: SearchStore) -> None:
    """Repeated aggregations may be cached, but never past a write made visible."""
    minute = timedelta(minutes=1)
    store.bulk_upsert(CORPUS[:20])
    store.refresh()
    _, before = store.facets(None, "hashtags", 5, minute)
    assert store.facets(None, "hashtags", 5, minute)[1] == before  # asked again: same answer
    store.bulk_upsert(CORPUS[20:])
    store.refresh()
    top, after = store.facets(None, "hashtags", 5, minute)
    assert sum(b.count for b in before) == 20
    assert sum(b.count for b in after) == len(CORPUS)
    assert top == store.terms("hashtags", None, size=5)


# --- backend-specific guarantees ------------------------------------------------------------


READER = textwrap.dedent(
    """
    import sys
    from tweetpipe.search import open_store
    from tweetpipe.settings import SearchSettings

    store = open_store(SearchSettings(backend="tantivy", tantivy_path=sys.argv[1]))
    for line in sys.stdin:
        print(store.count(), store.get(int(line)) is not None, flush=True)
    """
)


def test_tantivy_reader_in_another_process_sees_new_commits(tmp_path: Path) -> None:
    settings = SearchSettings(backend="tantivy", tantivy_path=tmp_path / "index")
    writer = open_store(settings, writer=True)
    writer.bulk_upsert(CORPUS[:10])
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(settings.tantivy_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdin is not None
    assert reader.stdout is not None
    try:

        def ask(tweet_id: int) -> str:
            assert reader.stdin is not None
            assert reader.stdout is not None
            reader.stdin.write(f"{tweet_id}\n")
            reader.stdin.flush()
            return reader.stdout.readline().strip()

        assert ask(CORPUS[20].id) == "10 False"
        writer.bulk_upsert(CORPUS[10:])  # committed: durable and visible, no refresh needed
        assert ask(CORPUS[20].id) == f"{len(CORPUS)} True"
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
        writer.close()
    assert reader.returncode == 0


def test_tantivy_allows_one_writer_and_read_only_stores_refuse_writes(tmp_path: Path) -> None:
    settings = SearchSettings(backend="tantivy", tantivy_path=tmp_path / "index")
    writer = open_store(settings, writer=True)
    writer.ensure_ready()
    try:
        with pytest.raises(StoreError, match="locked by another writer"):
            open_store(settings, writer=True).ensure_ready()
        with pytest.raises(StoreError, match="read-only"):
            open_store(settings).bulk_upsert(CORPUS[:1])
    finally:
        writer.close()
    second = open_store(settings, writer=True)  # the lock went with the first writer
    second.bulk_upsert(CORPUS[:2])
    second.close()
    reopened = open_store(settings)
    assert reopened.get(CORPUS[1].id) == CORPUS[1]


def test_elasticsearch_down_is_unavailable_not_an_error() -> None:
    settings = SearchSettings(
        backend="elasticsearch",
        elasticsearch_hosts=f"http://127.0.0.1:{free_port()}",
        request_timeout_s=2,
    )
    store = open_store(settings)

    assert store.ping() is False
    with pytest.raises(StoreUnavailable):
        store.bulk_upsert(CORPUS[:3])
    with pytest.raises(StoreUnavailable):
        store.search(SearchQuery(text="kafka"), PageRequest())
    store.close()


def test_elasticsearch_rejects_a_document_its_mapping_cannot_take(
    es_server: ElasticsearchServer, es_client: Elasticsearch
) -> None:
    settings = SearchSettings(
        backend="elasticsearch",
        index=f"conflict-{uuid.uuid4().hex[:8]}",
        elasticsearch_hosts=es_server.url,
    )
    # Someone created the index by hand with hashtags as numbers: ensure_ready keeps it.
    es_client.indices.create(
        index=settings.index, mappings={"properties": {"hashtags": {"type": "long"}}}
    )
    store = open_store(settings)
    store.ensure_ready()
    numeric = CORPUS[0].model_copy(update={"hashtags": ["2024"]})
    wordy = CORPUS[1]

    result = store.bulk_upsert([numeric, wordy])
    store.refresh()

    assert result.indexed == 1
    assert [r.tweet_id for r in result.rejected] == [wordy.id]
    assert "hashtags" in result.rejected[0].reason
    assert store.get(numeric.id) == numeric
    assert store.get(wordy.id) is None
    assert store.ping() is True
    store.close()


def test_elasticsearch_acknowledged_writes_survive_a_server_restart(tmp_path: Path) -> None:
    with ElasticsearchServer(tmp_path / "data") as server:
        settings = SearchSettings(
            backend="elasticsearch", index="restart", elasticsearch_hosts=server.url
        )
        store = open_store(settings)
        store.ensure_ready()
        store.bulk_upsert(CORPUS[:5])

        server.restart()

        assert store.get(CORPUS[4].id) == CORPUS[4]
        store.refresh()
        assert store.count() == 5
        store.close()


def test_tantivy_one_word_searches_score_as_a_one_clause_match_query(tmp_path: Path) -> None:
    """A one-word text is searched as a bare term query (cheaper): same hits, same scores."""
    settings = SearchSettings(backend="tantivy", tantivy_path=tmp_path / "index")
    writer = open_store(settings, writer=True)
    writer.bulk_upsert(CORPUS)
    try:
        word = Counter(w for t in CORPUS for w in words_of(t)).most_common(1)[0][0]
        searcher = tantivy.Index.open(str(settings.tantivy_path)).searcher()
        clause = tantivy.Query.term_query(SCHEMA, "text", word)
        boolean = tantivy.Query.boolean_query([(tantivy.Occur.Should, clause)])
        expected = searcher.search(boolean, len(CORPUS), count=True)
        actual = searcher.search(_text_query(word.upper()), len(CORPUS), count=True)
        assert expected.count == actual.count > 1  # type: ignore[attr-defined]
        assert actual.hits == expected.hits
    finally:
        writer.close()
