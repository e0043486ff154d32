"""The query service as deployed: a real process, the real dev issuer, a real store and SQL."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import RSAKey

from query_service import documents
from tests.support.elasticsearch import ElasticsearchServer
from tests.support.issuer import DevIssuer
from tests.support.openapi_contract import assert_contract_holds
from tests.support.ports import free_port
from tests.support.services import ServiceProcess
from tweetpipe.model import Tweet
from tweetpipe.search import open_store
from tweetpipe.settings import SearchSettings
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.settings import GeneratorOptions

V1 = "application/vnd.api.v1+json"
V2 = "application/vnd.api.v2+json"
CORPUS = list(TweetGenerator(GeneratorOptions(seed=11, count=240, users=40)))
BY_ID = {t.id: t for t in CORPUS}


@dataclass
class QueryService:
    url: str
    process: ServiceProcess
    issuer: DevIssuer

    def get(self, path: str, token: str | None, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.get(self.url + path, headers=headers, timeout=30, **kwargs)

    def call(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


def _search_settings(backend: str, tmp: Path, request: pytest.FixtureRequest) -> SearchSettings:
    if backend == "elasticsearch":
        server: ElasticsearchServer = request.getfixturevalue("es_server")
        return SearchSettings(
            backend="elasticsearch",
            index=f"tweets-{uuid.uuid4().hex[:8]}",
            elasticsearch_hosts=server.url,
        )
    return SearchSettings(backend="tantivy", tantivy_path=tmp / "index", tantivy_writer_heap_mb=32)


@pytest.fixture(scope="module")
def es_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ElasticsearchServer]:
    with ElasticsearchServer(tmp_path_factory.mktemp("noida") / "data") as server:
        yield server


def _start(
    backend: str, request: pytest.FixtureRequest, tmp: Path, issuer: DevIssuer
) -> Iterator[QueryService]:
    search = _search_settings(backend, tmp, request)
    store = open_store(search, writer=True)
    store.ensure_ready()
    store.bulk_upsert(CORPUS)
    store.refresh()
    store.close()
    port = free_port()
    env = {
        "ADMIN__PORT": str(port),
        "DATA_DIR": str(tmp),
        "SEARCH__BACKEND": search.backend,
        "SEARCH__INDEX": search.index,
        "SEARCH__TANTIVY_PATH": str(search.tantivy_path),
        "SEARCH__ELASTICSEARCH_HOSTS": search.elasticsearch_hosts,
        "AUTH__ISSUER_URL": issuer.realm_url,
        "DATABASE_URL": f"sqlite:///{tmp / 'permissions.db'}",
        "ENRICHMENT__SOURCE": "analytics",
        "ENRICHMENT__ANALYTICS_URL": f"http://127.0.0.1:{free_port()}",  # nobody there
    }
    process = ServiceProcess("query_service", env, tmp / "query.log").start()
    process.wait_healthy(port)
    yield QueryService(f"http://127.0.0.1:{port}", process, issuer)
    process.terminate()


@pytest.fixture(scope="module")
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, dev_issuer: DevIssuer
) -> Iterator[QueryService]:
    yield from _start("tantivy", request, tmp_path_factory.mktemp("query"), dev_issuer)


@pytest.fixture(scope="module", params=["tantivy", "elasticsearch"])
def any_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, dev_issuer: DevIssuer
) -> Iterator[QueryService]:
    yield from _start(request.param, request, tmp_path_factory.mktemp("query"), dev_issuer)


@pytest.fixture(scope="module")
def super_token(dev_issuer: DevIssuer) -> str:
    return dev_issuer.password_token("app_super_user")


# --- where store calls run -------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["tantivy", "elasticsearch"])
def test_store_calls_leave_the_event_loop_only_when_they_wait_on_the_network(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = open_store(_search_settings(backend, tmp_path, request))
    store.ensure_ready()

    async def where() -> tuple[int, int, int]:
        loop_thread = threading.get_ident()
        call_thread = await documents._run(store, lambda: threading.get_ident())
        return loop_thread, call_thread, await documents._run(store, store.count)

    loop_thread, call_thread, count = asyncio.run(where())
    assert count == 0  # a real call on the real store went through the same path
    if backend == "tantivy":
        assert call_thread == loop_thread  # it computes: a thread hop would only add a wait
    else:
        assert call_thread != loop_thread  # it waits on the network: never on the event loop
    store.close()


# --- the API, end to end on both backends ----------------------------------------------------


def test_search_pages_filters_highlights_and_aggregations(
    any_backend: QueryService, super_token: str
) -> None:
    lang = Counter(t.lang for t in CORPUS).most_common(1)[0][0]
    expected = {t.id for t in CORPUS if t.lang == lang}
    seen: list[int] = []
    params: dict[str, Any] = {"lang": lang, "size": 7, "sort": "newest"}
    first: dict[str, Any] | None = None
    while True:
        reply = any_backend.get("/documents/search", super_token, params=params)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        first = first or body
        seen += [hit["document"]["id"] for hit in body["hits"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert first is not None
    assert len(seen) == len(set(seen))
    assert set(seen) == expected
    assert first["total"] == len(expected)
    times = [BY_ID[i].created_at for i in seen]
    assert times == sorted(times, reverse=True)

    tags = Counter(tag for t in CORPUS if t.lang == lang for tag in t.hashtags)
    top = {b["key"]: b["count"] for b in first["aggregations"]["top_hashtags"]}
    assert all(tags[key] == count for key, count in top.items())
    assert sorted(top.values(), reverse=True) == sorted(tags.values(), reverse=True)[: len(top)]
    assert sum(b["count"] for b in first["aggregations"]["per_minute"]) == len(expected)

    word = "kafka"
    reply = any_backend.get("/documents/search", super_token, params={"q": word, "size": 50})
    hits = reply.json()["hits"]
    assert hits
    assert all(word in h["document"]["text"].lower() for h in hits)
    assert all("<em>" in h["highlights"][0].lower() for h in hits)

    user = Counter(t.user_id for t in CORPUS).most_common(1)[0][0]
    reply = any_backend.get("/documents/search", super_token, params={"user_id": user, "size": 100})
    assert {h["document"]["id"] for h in reply.json()["hits"]} == {
        t.id for t in CORPUS if t.user_id == user
    }


def test_service_account_token_is_accepted(
    any_backend: QueryService, dev_issuer: DevIssuer
) -> None:
    tweet = CORPUS[0]
    reply = any_backend.get(f"/documents/{tweet.id}", dev_issuer.service_token())
    assert reply.status_code == 200
    assert reply.json()["text"] == tweet.text


# --- classic endpoints and versions ----------------------------------------------------------


def test_documents_come_in_two_versions(service: QueryService, super_token: str) -> None:
    tweet: Tweet = CORPUS[3]
    v1 = service.get(f"/documents/{tweet.id}", super_token, headers={"Accept": V1})
    assert v1.status_code == 200
    assert v1.headers["content-type"] == V1
    assert set(v1.json()) == {
        "id", "id_str", "user_id", "user_id_str", "text", "created_at", "links"
    }  # fmt: skip
    assert v1.json()["links"]["self"] == f"/documents/{tweet.id}"

    v2 = service.get(f"/documents/{tweet.id}", super_token, headers={"Accept": V2})
    assert v2.headers["content-type"] == V2
    assert v2.json()["hashtags"] == tweet.hashtags
    assert v2.json()["lang"] == tweet.lang

    plain = service.get(f"/documents/{tweet.id}", super_token, headers={"Accept": "*/*"})
    assert plain.headers["content-type"] == V1
    refused = service.get(f"/documents/{tweet.id}", super_token, headers={"Accept": "text/csv"})
    assert refused.status_code == 406
    assert "detail" in refused.json()
    missing = service.get("/documents/42", super_token)
    assert missing.status_code == 404


def _string_ids_match(document: dict[str, Any]) -> bool:
    return document["id_str"] == str(document["id"]) and document["user_id_str"] == str(
        document["user_id"]
    )


@pytest.mark.parametrize("accept", [V1, V2])
def test_every_document_carries_its_ids_as_strings_too(
    service: QueryService, super_token: str, accept: str
) -> None:
    """JavaScript, jq and browsers round integers above 2**53: `id_str` and `user_id_str`
    carry the exact values, as Twitter's API does."""
    big = max(CORPUS, key=lambda t: t.id)
    assert big.id > 2**53  # snowflake ids: a JavaScript number could not hold this one
    headers = {"Accept": accept}
    one = service.get(f"/documents/{big.id}", super_token, headers=headers).json()
    assert one["id_str"] == str(big.id)
    assert one["user_id_str"] == str(big.user_id)
    listed = service.get("/documents", super_token, params={"size": 20}, headers=headers).json()
    found = service.get("/documents/search", super_token, params={"q": "kafka", "size": 20}).json()
    by_text = service.call(
        "POST", "/documents/get-document-by-text", super_token, json={"text": "kafka"},
        headers=headers,
    ).json()  # fmt: skip
    documents = [
        one,
        *listed["documents"],
        *(hit["document"] for hit in found["hits"]),
        *by_text["documents"],
    ]
    assert len(documents) > 20
    assert all(_string_ids_match(d) for d in documents)


def test_all_documents_page_newest_first(service: QueryService, super_token: str) -> None:
    reply = service.get("/documents", super_token, params={"size": 5}, headers={"Accept": V2})
    body = reply.json()
    newest = sorted(CORPUS, key=lambda t: (t.created_at, t.id), reverse=True)[:5]
    assert [d["id"] for d in body["documents"]] == [t.id for t in newest]
    assert body["links"]["next"].startswith("/documents?")


def test_by_text_falls_back_when_the_word_count_source_is_down(
    service: QueryService, super_token: str
) -> None:
    reply = service.call(
        "POST",
        "/documents/get-document-by-text",
        super_token,
        json={"text": "Kafka streams"},
        headers={"Accept": V2},
    )
    assert reply.status_code == 200
    body = reply.json()
    assert body["documents"]
    assert body["word_counts"] == [
        {"word": "kafka", "word_count": None},
        {"word": "streams", "word_count": None},
    ]
    assert body["word_count_source"] == "analytics"
    v1 = service.call(
        "POST", "/documents/get-document-by-text", super_token, json={"text": "Kafka"}
    )
    assert "word_counts" not in v1.json()


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"size": 1000}, 422),
        ({"q": "x" * 600}, 422),
        ({"lang": "ENG"}, 422),
        ({"from": "2024-01-02T00:00:00Z", "to": "2024-01-01T00:00:00Z"}, 422),
        ({"user_id": -1}, 422),
        ({"cursor": "garbage"}, 400),
        ({"cursor": "not base64!"}, 422),  # outside the alphabet the spec gives
        ({"to": "0.5"}, 422),  # a number is not an ISO-8601 date-time (pydantic takes it as epoch)
        ({"sort": "random"}, 422),
    ],
)
def test_bad_parameters_get_json_errors(
    service: QueryService, super_token: str, params: dict[str, Any], status: int
) -> None:
    reply = service.get("/documents/search", super_token, params=params)
    assert reply.status_code == status
    assert reply.headers["content-type"] == "application/json"
    assert "detail" in reply.json()


def test_a_method_a_resource_does_not_take_is_405_naming_every_method_it_does(
    service: QueryService, dev_issuer: DevIssuer
) -> None:
    admin = dev_issuer.password_token("app_admin")
    permission = service.call("OPTIONS", "/admin/permissions/app_user/documents/1", admin)
    assert permission.status_code == 405
    assert permission.headers["allow"] == "DELETE, PUT"  # two routes, one resource
    # Not taken for a document id (that was a 422 for `document_id`).
    by_text = service.call("GET", "/documents/get-document-by-text", admin)
    assert (by_text.status_code, by_text.headers["allow"]) == (405, "POST")
    assert by_text.json() == {"detail": "Method Not Allowed"}
    assert service.call("PUT", "/documents/1", admin).headers["allow"] == "GET, HEAD"
    # The spec's pattern is JSON Schema's: `\w` is ASCII there, so the service keeps to ASCII.
    assert service.call("GET", "/admin/permissions/%C3%AC", admin).status_code == 422


def test_a_post_answer_pages_by_cursor_without_a_get_link(
    service: QueryService, super_token: str
) -> None:
    reply = service.call(
        "POST",
        "/documents/get-document-by-text",
        super_token,
        json={"text": "Kafka"},
        params={"size": 1},
    )
    body = reply.json()
    assert body["next_cursor"] is not None
    assert body["links"]["next"] is None  # a GET on it would be 405


# --- security --------------------------------------------------------------------------------


def test_missing_token_is_401_with_a_challenge(service: QueryService) -> None:
    reply = service.get("/documents/search", None)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == 'Bearer realm="tweetpipe"'
    assert reply.json() == {"detail": "a valid bearer token is required"}
    assert service.get("/health", None).status_code == 200


def _hs256(issuer: DevIssuer, secret: bytes) -> str:
    """The classic key-confusion forgery: HMAC-signed with the public key as the secret."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    signing_input = (
        f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': issuer.key.kid})}.{part(issuer.claims())}"
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _rejected_tokens(issuer: DevIssuer) -> dict[str, str]:
    now = int(time.time())
    other_key = RSAKey.generate_key(2048, private=True)
    unsigned = issuer.forge().rsplit(".", 1)[0]
    header_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"  # {"alg":"none","typ":"JWT"}
    public_pem = issuer.key.as_pem(private=False)
    return {
        "expired": issuer.forge(exp=now - 120, iat=now - 600),
        "not yet valid": issuer.forge(nbf=now + 600),
        "wrong issuer": issuer.forge(iss="http://127.0.0.1:1/realms/microservices-realm"),
        "wrong audience": issuer.forge(aud="some-other-service"),
        "no audience": issuer.forge(aud=None),
        "bad signature": unsigned + "." + "A" * 342,
        "alg none": header_none + "." + unsigned.split(".")[1] + ".",
        "hs256 with the public key": _hs256(issuer, public_pem),
        "another key, same kid": issuer.forge(key=other_key),
        "unknown kid": issuer.forge(key=other_key, kid="rotated-away"),
        "garbage": "not.a.token",
        "id token": issuer.forge(typ="ID"),
    }


def test_every_kind_of_bad_token_is_refused(service: QueryService, dev_issuer: DevIssuer) -> None:
    assert service.get("/documents/search", dev_issuer.forge()).status_code == 200  # the control
    for name, token in _rejected_tokens(dev_issuer).items():
        reply = service.get("/documents/search", token)
        assert reply.status_code == 401, name
        assert 'error="invalid_token"' in reply.headers["www-authenticate"], name
        assert reply.json() == {"detail": "a valid bearer token is required"}, name


def test_roles_and_per_document_permissions(service: QueryService, dev_issuer: DevIssuer) -> None:
    guest = dev_issuer.password_token("app_guest")
    assert service.get("/documents/search", guest).status_code == 403

    user = dev_issuer.password_token("app_user")
    admin = dev_issuer.password_token("app_admin")
    granted = [CORPUS[5], CORPUS[6], CORPUS[7]]
    hidden = CORPUS[8]
    assert service.get("/documents/search", user).json()["total"] == 0
    assert service.get(f"/documents/{hidden.id}", user).status_code == 403

    assert service.call("PUT", "/admin/permissions/app_user/documents/1", user).status_code == 403
    for tweet in granted:
        path = f"/admin/permissions/app_user/documents/{tweet.id}"
        assert service.call("PUT", path, admin).status_code == 201
        assert service.call("PUT", path, admin).status_code == 200  # idempotent
    listed = service.call("GET", "/admin/permissions/app_user", admin).json()
    assert listed["document_ids"] == sorted(t.id for t in granted)

    body = service.get("/documents/search", user, params={"size": 2}).json()
    assert body["total"] == 3  # filtered in the store query: the total is right, pages full
    assert len(body["hits"]) == 2
    every = service.get("/documents", user, params={"size": 100}).json()["documents"]
    assert {d["id"] for d in every} == {t.id for t in granted}
    assert service.get(f"/documents/{granted[0].id}", user).status_code == 200
    forbidden = service.get(f"/documents/{hidden.id}", user)
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "you do not have permission to read this document"}

    path = f"/admin/permissions/app_user/documents/{granted[0].id}"
    assert service.call("DELETE", path, admin).status_code == 204
    assert service.call("DELETE", path, admin).status_code == 404
    assert service.get(f"/documents/{granted[0].id}", user).status_code == 403
    assert service.get("/documents/search", user).json()["total"] == 2


# --- a property-based run over the OpenAPI spec ----------------------------------------------


@pytest.mark.parametrize(
    ("user", "paths"), [("app_super_user", "^/documents"), ("app_admin", "^/admin")]
)
def test_the_openapi_spec_is_the_contract(
    service: QueryService, dev_issuer: DevIssuer, tmp_path: Path, user: str, paths: str
) -> None:
    """schemathesis, every check and phase, with a real token: the spec and the service agree."""
    assert_contract_holds(
        service.url, dev_issuer.password_token(user), tmp_path, include_path_regex=paths
    )
