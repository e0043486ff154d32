"""The web client's pages in Streamlit's AppTest, against a real HTTP server standing in for the
gateway (bodies built from the services' own response models) and real dev-issuer tokens."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from devstack.prometheus import PrometheusServer
from tests.support.issuer import DevIssuer
from tests.support.ports import free_port
from tests.support.web_gateway import WebGateway
from web_client import history, metrics, render
from web_client.api import GatewayClient, RateLimited, SearchQuery, Unavailable, retry_after_s
from web_client.oidc import PendingLogin, PendingLogins, Tokens, UserInfo
from web_client.session import TOKENS, USER

TEXT_TYPES = (
    "title", "header", "subheader", "markdown", "caption", "html",
    "error", "warning", "info", "success",
)  # fmt: skip


def app_script(default: str) -> None:
    from web_client.app import main

    main(default=default)


def page_text(at: AppTest) -> str:
    parts = [str(getattr(e, "value", "")) for kind in TEXT_TYPES for e in at.get(kind)]
    parts += [f"{m.label}: {m.value}" for m in at.metric]
    parts += [b.label for b in at.button]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def gateway() -> Iterator[WebGateway]:
    with WebGateway() as running:
        yield running


@pytest.fixture
def web_env(
    gateway: WebGateway, dev_issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[WebGateway]:
    """The app's settings point at the stand-in gateway and the dev issuer."""
    monkeypatch.setenv("GATEWAY_URL", gateway.url)
    monkeypatch.setenv("OIDC__ISSUER_URL", dev_issuer.realm_url)
    monkeypatch.setenv("PUBLIC_URL", "http://127.0.0.1:8501")
    monkeypatch.setenv("CONFIG_REPO_DIR", str(tmp_path / "no-config-repo"))
    monkeypatch.setenv(
        "PIPELINE__METRICS_URLS",
        json.dumps(
            {
                "twitter-to-kafka": f"{gateway.url}/metrics/twitter-to-kafka",
                "kafka-to-elastic": f"{gateway.url}/metrics/kafka-to-elastic",
            }
        ),
    )
    st.cache_resource.clear()  # settings are read once per server process
    gateway.clear()
    gateway.down.clear()
    yield gateway
    st.cache_resource.clear()


def signed_in(dev_issuer: DevIssuer, username: str) -> tuple[Tokens, UserInfo]:
    body = dev_issuer.openid().token(username, "welcome")
    return Tokens.from_response(body), UserInfo(sub="x", preferred_username=username)


def open_app(
    dev_issuer: DevIssuer, page: str = "search", username: str | None = "app_super_user"
) -> AppTest:
    at = AppTest.from_function(app_script, kwargs={"default": page}, default_timeout=20)
    if username is not None:
        tokens, user = signed_in(dev_issuer, username)
        at.session_state[TOKENS] = tokens
        at.session_state[USER] = user
    return at.run()


# --- search ------------------------------------------------------------------------------


def test_signed_out_the_search_page_offers_the_providers_login(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    at = open_app(dev_issuer, username=None)
    text = page_text(at)
    assert "Sign in to search the indexed tweets" in text
    link = next(m.value for m in at.markdown if 'id="tp-sign-in"' in m.value)
    assert f'href="{dev_issuer.realm_url}/protocol/openid-connect/auth?' in link
    assert "code_challenge_method=S256" in link
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A8501%2F" in link
    assert not web_env.requests, "no API call without a token"


def test_the_first_page_shows_the_newest_tweets_with_the_users_token(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    at = open_app(dev_issuer)
    assert not at.exception
    text = page_text(at)
    assert "30 tweets** indexed · showing 10" in text
    assert "Tweet 29: Microservices in Java" in text  # newest first
    (call,) = web_env.seen("/documents/search")
    assert call.params["sort"] == "newest"
    assert call.authorization == f"Bearer {at.session_state[TOKENS].access_token}"
    assert "#Kafka · 8" in text  # hashtag facets with counts


def test_a_query_shows_highlighted_matches_and_escapes_the_rest(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    at = open_app(dev_issuer)
    at.text_input(key="f_text").input("kafka")
    at.button[0].click()  # the form's Search button submits every filter at once
    at.run()
    text = page_text(at)
    assert "10 tweets** match" in text
    assert "Streaming with <mark>Kafka</mark>" in text
    # tweet 6 carries markup in its text: it is shown, never executed
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in text
    assert "<script>" not in " ".join(h.value for h in at.html)
    assert web_env.seen("/documents/search")[-1].params["q"] == "kafka"


def test_a_hashtag_facet_becomes_a_filter_and_can_be_removed(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    at = open_app(dev_issuer)
    at.button(key="facet-DevOps").click().run()
    assert web_env.seen("/documents/search")[-1].params["hashtag"] == "DevOps"
    assert at.text_input(key="f_hashtag").value == "DevOps"
    text = page_text(at)
    assert "8 tweets** match the filters" in text
    at.button(key="clear-hashtag").click().run()
    assert "hashtag" not in web_env.seen("/documents/search")[-1].params
    assert "30 tweets** indexed" in page_text(at)
    # clicking the active facet again removes it too
    at.button(key="facet-Java").click().run()
    assert at.text_input(key="f_hashtag").value == "Java"
    at.button(key="facet-Java").click().run()
    assert at.text_input(key="f_hashtag").value == ""
    assert "hashtag" not in web_env.seen("/documents/search")[-1].params


def test_more_results_follows_the_cursor_and_appends(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    at = open_app(dev_issuer)
    at.button(key="more").click().run()
    assert web_env.seen("/documents/search")[-1].params["cursor"] == "10"
    text = page_text(at)
    assert "showing 20" in text
    assert "Tweet 29:" in text
    assert "Tweet 10:" in text
    at.button(key="more").click().run()
    assert "showing 30" in page_text(at)
    assert "That is every matching tweet." in page_text(at)
    assert "More results" not in [b.label for b in at.button]


def test_no_results_says_so(web_env: WebGateway, dev_issuer: DevIssuer) -> None:
    at = open_app(dev_issuer)
    at.text_input(key="f_text").input("zeppelin")
    at.button[0].click().run()
    assert "No tweets match “zeppelin”." in page_text(at)


def test_filters_go_to_the_search_api(web_env: WebGateway, dev_issuer: DevIssuer) -> None:
    at = open_app(dev_issuer)
    at.text_input(key="f_user").input("501")
    at.selectbox(key="f_lang").select("de")
    at.selectbox(key="f_sort").select("oldest")
    at.get("date_time_input")[0].set_value(datetime(2026, 11, 22, 10, 1))  # type: ignore[union-attr]
    at.button[0].click().run()
    params = web_env.seen("/documents/search")[-1].params
    assert params["user_id"] == "501"
    assert params["lang"] == "de"
    assert params["sort"] == "oldest"
    assert params["from"] == "2026-11-22T10:01:00Z"
    assert "user 501" in page_text(at)


def test_a_user_id_that_is_not_a_number_is_refused_before_any_call(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    at = open_app(dev_issuer)
    calls = len(web_env.requests)
    at.text_input(key="f_user").input("bob")
    at.button[0].click().run()
    assert "User id must be a number" in page_text(at)
    assert len(web_env.requests) == calls


def test_forbidden_is_the_no_permission_state(web_env: WebGateway, dev_issuer: DevIssuer) -> None:
    web_env.answer("elastic-query-service", 403)
    at = open_app(dev_issuer, username="app_guest")
    assert not at.exception
    text = page_text(at)
    assert "No permission." in text
    assert "signed in as **app_guest**" in text
    assert "Try again" not in text  # retrying cannot help


def test_rate_limited_says_when_to_retry(web_env: WebGateway, dev_issuer: DevIssuer) -> None:
    web_env.answer("elastic-query-service", 429, retry_after=7)
    at = open_app(dev_issuer)
    text = page_text(at)
    assert "Too many requests." in text
    assert "Try again in 7 s (after " in text
    web_env.clear()
    at.button(key="search-retry").click().run()
    assert "30 tweets** indexed" in page_text(at)


def test_service_down_shows_the_gateway_fallback(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    web_env.answer("elastic-query-service", 503)
    at = open_app(dev_issuer)
    text = page_text(at)
    assert "The search service is unavailable right now." in text
    assert "Try again in 5 s." in text
    assert "elastic-query-service is unavailable right now; please retry later" in text


def test_gateway_not_answering_is_a_service_down_state(
    web_env: WebGateway, dev_issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.ports import free_port

    monkeypatch.setenv("GATEWAY_URL", f"http://127.0.0.1:{free_port()}")
    st.cache_resource.clear()
    at = open_app(dev_issuer)
    text = page_text(at)
    assert "The search service is unavailable right now." in text
    assert "does not answer" in text


def test_a_refused_token_ends_the_session(web_env: WebGateway, dev_issuer: DevIssuer) -> None:
    web_env.answer("elastic-query-service", 401)
    at = open_app(dev_issuer)
    assert TOKENS not in at.session_state
    text = page_text(at)
    assert "Your session has ended. Sign in again to continue." in text
    assert any('id="tp-sign-in"' in m.value for m in at.markdown)


def test_an_expiring_token_is_refreshed_before_the_call(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    tokens, user = signed_in(dev_issuer, "app_user")
    at = AppTest.from_function(app_script, kwargs={"default": "search"}, default_timeout=20)
    at.session_state[TOKENS] = tokens.model_copy(update={"expires_at": time.time() + 5})
    at.session_state[USER] = user
    at.run()
    fresh = at.session_state[TOKENS]
    assert fresh.access_token != tokens.access_token
    assert fresh.refresh_token != tokens.refresh_token  # the issuer rotates refresh tokens
    assert web_env.seen("/documents/search")[-1].authorization == f"Bearer {fresh.access_token}"
    info = httpx.get(
        f"{dev_issuer.realm_url}/protocol/openid-connect/userinfo",
        headers={"Authorization": f"Bearer {fresh.access_token}"},
    )
    assert info.json()["preferred_username"] == "app_user"


# --- trends ------------------------------------------------------------------------------


def test_trends_shows_live_and_stored_top_words_and_a_word_series(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    at = open_app(dev_issuer, page="trends")
    assert not at.exception
    live, stored = (frame.value for frame in at.dataframe)
    assert list(live["word"]) == ["kafka", "java", "streaming"]
    assert list(live["count"]) == [42, 30, 12]
    assert list(stored["word"]) == ["microservices", "kafka"]
    text = page_text(at)
    assert "Window 2026-11-22 10:00 to 10:01 UTC" in text
    assert "“kafka” counted since the pipeline started: 1,234" in text  # the live top word
    assert "4 minutes with “kafka”; most in the minute from 10:02 UTC (31)" in text
    assert web_env.seen("/analytics/top")[-1].params["window"] == "latest"
    series = web_env.seen("/analytics/words/kafka/series")[-1]
    assert series.authorization is not None
    assert series.params["from"].endswith("Z")


def test_trends_shows_what_is_rising_with_a_chart_per_term(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    at = open_app(dev_issuer, page="trends")
    assert not at.exception
    text = page_text(at)
    assert "Rising now" in text
    assert "Window 10:00 to 10:05 UTC (still counting)" in text
    assert "40 now, usually 2.0 · score 21.9" in text
    assert "12 now, usually 1.5 · score 6.6" in text
    assert len(at.get("vega_lite_chart")) == 3  # one per term, and the word over time
    assert web_env.seen("/analytics/trending")[-1].params["n"] == "5"


def test_trends_picks_a_minute_and_another_word(web_env: WebGateway, dev_issuer: DevIssuer) -> None:
    at = open_app(dev_issuer, page="trends")
    picker = at.selectbox(key="trends-window")
    assert picker.options[0] == "Latest stored minute"
    assert picker.options[3].count(":") == 1  # past minutes, by their time (HH:MM)
    picker.select_index(3).run()
    assert web_env.seen("/analytics/top")[-1].params["window"].endswith(":00Z")
    at.text_input(key="trends-word").input("java").run()
    text = page_text(at)
    assert "“java” counted since the pipeline started: 987" in text
    assert "“java” was not counted in the last 15 minutes." in text


def test_trends_without_permission_says_so_once(web_env: WebGateway, dev_issuer: DevIssuer) -> None:
    web_env.answer("kafka-streams-service", 403)
    web_env.answer("analytics-service", 403)
    at = open_app(dev_issuer, page="trends", username="app_guest")
    assert [e.value.count("No permission.") for e in at.error] == [1]
    assert "may see word counts" in page_text(at)


def test_trends_with_the_word_count_service_down_still_shows_stored_counts(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    web_env.answer("kafka-streams-service", 503)
    at = open_app(dev_issuer, page="trends")
    text = page_text(at)
    assert "The word-count service is unavailable right now." in text
    (stored,) = (frame.value for frame in at.dataframe)
    assert list(stored["word"]) == ["microservices", "kafka"]


# --- pipeline ----------------------------------------------------------------------------


def test_pipeline_shows_rates_lag_and_dead_letters(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    at = open_app(dev_issuer, page="pipeline")
    assert not at.exception
    figures = {m.label: m.value for m in at.metric}
    assert figures["Tweets produced"].endswith("/s")
    assert figures["Tweets produced"] != "0.0/s"
    assert figures["Tweets indexed"].endswith("/s")
    assert figures["Tweets counted"] == "n/a"  # no such service in this test's list
    assert figures["Records waiting"] == "12"
    assert figures["Records rejected"] == "3"
    lag = at.dataframe[0].value
    assert list(lag["Consumer group"]) == ["kafka-to-elastic"]


def test_pipeline_without_prometheus_says_why_and_shows_the_figures(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    at = open_app(dev_issuer, page="pipeline")
    text = page_text(at)
    assert "**No history charts:** no Prometheus is configured (`PIPELINE__PROMETHEUS_URL`" in text
    assert "The figures below are read from each service's `/metrics` now." in text
    assert {m.label: m.value for m in at.metric}["Records waiting"] == "12"
    assert not at.get("vega_lite_chart")


def test_pipeline_says_when_prometheus_does_not_answer(
    web_env: WebGateway, dev_issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("PIPELINE__PROMETHEUS_URL", nobody)
    at = open_app(dev_issuer, page="pipeline")
    assert f"**No history charts:** Prometheus at {nobody} does not answer (ConnectError)" in (
        page_text(at)
    )
    assert {m.label: m.value for m in at.metric}["Records rejected"] == "3"


def _charts(at: AppTest) -> dict[str, pd.DataFrame]:
    """Each history chart's rows (time, series, value), by its title, as the browser gets them."""
    found = {}
    for element in at.get("vega_lite_chart"):
        title = json.loads(element.proto.spec)["description"]
        found[title] = pa.ipc.open_stream(element.proto.data.data).read_pandas()
    return found


def test_pipeline_history_runs_the_dashboards_queries_on_prometheus(
    web_env: WebGateway,
    dev_issuer: DevIssuer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A real Prometheus scrapes the stand-in services every second; the charts show what the
    dashboards' PromQL answers over the last 15 minutes."""
    address = web_env.url.removeprefix("http://")
    jobs = [
        {
            "job_name": service,
            "metrics_path": f"/metrics/{service}",
            "static_configs": [{"targets": [address]}],
        }
        for service in ("twitter-to-kafka", "kafka-to-elastic")
    ]
    with PrometheusServer(
        free_port(),
        targets=[],
        data_dir=tmp_path / "prometheus",
        scrape_interval_s=1,
        scrape_configs=jobs,
    ) as prometheus:

        def scraped(metric: str, times: int) -> bool:
            query = f"count_over_time({metric}[1m]) >= {times}"
            reply = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": query})
            return bool(reply.json()["data"]["result"])

        # The page's points are a step apart (8 s over 15 minutes) and each rate needs two
        # samples in its window, so every job needs more than a step of scrapes, not just one:
        # the two jobs are scraped out of phase.
        times = int(history.step_s(history.RANGES["15 minutes"], 1)) + 3
        deadline = time.monotonic() + 60  # a guard, not a measurement
        while not all(scraped(m, times) for m in (metrics.PRODUCED, metrics.INDEXED)):
            assert time.monotonic() < deadline, "Prometheus never scraped the stand-ins"
            time.sleep(0.5)
        monkeypatch.setenv("PIPELINE__PROMETHEUS_URL", prometheus.url)
        monkeypatch.setenv("PIPELINE__SCRAPE_INTERVAL_S", "1")
        at = open_app(dev_issuer, page="pipeline")
    assert not at.exception
    text = page_text(at)
    assert "No history charts" not in text
    charts = _charts(at)
    assert set(charts) == {
        "Tweets per second, per stage",
        "Consumer lag per group",
        "Dead letters per second, by stage and error",
    }
    throughput = charts["Tweets per second, per stage"]
    assert set(throughput["series"]) == {"produced", "indexed"}  # the panel's legends
    assert (throughput["value"] > 0).all()
    lag = charts["Consumer lag per group"]
    assert set(lag["series"]) == {"kafka-to-elastic"}
    assert set(lag["value"]) == {12.0}  # partitions 0 and 1: 7 + 5
    dead = charts["Dead letters per second, by stage and error"]
    assert set(dead["series"]) == {"kafka-to-elastic: invalid-json"}
    assert set(dead["value"]) == {0.0}  # 3 in total, none new
    # Nothing exports latency or breaker state here: those charts say so.
    assert text.count("No data in this range yet.") == 2
    for title in ("Request latency p99, per service", "Gateway circuit breakers"):
        assert title in text


def test_pipeline_names_a_service_that_does_not_answer(
    web_env: WebGateway, dev_issuer: DevIssuer
) -> None:
    web_env.down.add("kafka-to-elastic")
    at = open_app(dev_issuer, page="pipeline")
    text = page_text(at)
    assert "kafka-to-elastic** answers HTTP 500 at " in text
    assert "it has stopped, or has not started yet" in text
    assert {m.label: m.value for m in at.metric}["Tweets indexed"] == "n/a"


# --- pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("Streaming with <em>Kafka</em>", "Streaming with <mark>Kafka</mark>"),
        ("a &lt;b&gt; <em>c</em>", "a &lt;b&gt; <mark>c</mark>"),
        ("<script>x</script> <em>k</em>", "&lt;script&gt;x&lt;/script&gt; <mark>k</mark>"),
        ("<em>open", "<mark>open</mark>"),
        ("close</em> &amp; <img src=x onerror=y>", "close &amp; &lt;img src=x onerror=y&gt;"),
        ("<EM>k</EM>", "<mark>k</mark>"),
    ],
)
def test_highlights_keep_only_the_match_marks(fragment: str, expected: str) -> None:
    assert render.highlight(fragment) == expected


def test_retry_after_reads_seconds_dates_and_the_body() -> None:
    assert retry_after_s("7", None) == 7
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 < retry_after_s(later.strftime("%a, %d %b %Y %H:%M:%S GMT"), None) <= 30
    assert retry_after_s(None, 3) == 3
    assert retry_after_s("soon", None) == 1


def test_gateway_client_outcomes_over_http(web_env: WebGateway) -> None:
    client = GatewayClient(web_env.url, timeout_s=5)
    web_env.answer("elastic-query-service", 429, retry_after=2)
    limited = client.search("t", SearchQuery(text="kafka"))
    assert isinstance(limited, RateLimited)
    assert limited.retry_after_s == 2
    web_env.answer("elastic-query-service", 503)
    down = client.search("t", SearchQuery())
    assert isinstance(down, Unavailable)
    assert down.route == "elastic-query-service"
    client.close()


def test_pending_logins_are_single_use_and_expire() -> None:
    pending = PendingLogins(timeout_s=0.2)
    login = PendingLogin(verifier="v", redirect_uri="http://x/", started=time.monotonic())
    pending.add("a", login)
    pending.add("b", login)
    assert pending.take("a") == login
    assert pending.take("a") is None
    time.sleep(0.25)
    assert pending.take("b") is None


def test_rates_come_from_two_scrapes_and_survive_a_restart() -> None:
    def snap(at: float, produced: float) -> metrics.Snapshot:
        sample = metrics.Sample(name=metrics.PRODUCED, labels={}, value=produced)
        scrape = metrics.Scrape(service="twitter-to-kafka", url="u", samples=[sample])
        return metrics.Snapshot(taken_at=at, scrapes=[scrape])

    assert metrics.rate(snap(0, 100), snap(2, 300), metrics.PRODUCED) == 100
    assert metrics.rate(snap(0, 500), snap(2, 40), metrics.PRODUCED) == 20  # restarted at 0
    assert metrics.rate(snap(0, 1), snap(2, 3), metrics.INDEXED) is None


def test_metrics_parse_prometheus_text() -> None:
    text = (
        "# TYPE tweetpipe_tweets_indexed_total counter\n"
        "tweetpipe_tweets_indexed_total 12.0\n"
        "tweetpipe_tweets_indexed_created 1.7e9\n"
        'tweetpipe_consumer_lag{group="g",topic="t",partition="0"} 4\n'
    )
    samples = metrics.parse(text)
    assert metrics.Sample(name="tweetpipe_tweets_indexed_total", labels={}, value=12) in samples
    snap = metrics.Snapshot(
        taken_at=0, scrapes=[metrics.Scrape(service="s", url="u", samples=samples)]
    )
    assert snap.lag() == {"g": 4}


def test_wait_times_read_like_a_person_would_say_them() -> None:
    assert render.seconds(0.2) == "1 s"
    assert render.seconds(7) == "7 s"
    assert render.seconds(65) == "1 min 5 s"
    assert render.seconds(120) == "2 min"


def test_the_public_url_defaults_to_the_port_streamlit_listens_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from web_client.settings import WebClientSettings

    monkeypatch.setenv("CONFIG_REPO_DIR", str(tmp_path))
    monkeypatch.delenv("PUBLIC_URL", raising=False)
    assert WebClientSettings().redirect_uri == "http://127.0.0.1:8501/"
    monkeypatch.setenv("ADMIN__PORT", "9123")
    assert WebClientSettings().redirect_uri == "http://127.0.0.1:9123/"
    monkeypatch.setenv("PUBLIC_URL", "http://localhost:8501/")
    assert WebClientSettings().redirect_uri == "http://localhost:8501/"
