"""The web client in a real browser (Debian's headless Chromium, driven by Playwright) against
the whole local stack that `tweetpipe up` runs: sign in through the dev issuer's login page,
search, trends, the pipeline page, sign out; a user without a role sees the 403 state.

Screenshots go to `test-output/web_client/` (not committed): look at them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from kafka import KafkaProducer
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.support.ports import free_port
from tweetpipe.model import Tweet
from tweetpipe.settings import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = REPO_ROOT / "test-output" / "web_client"
PORT_NAMES = (
    "BROKER", "REGISTRY", "CONFIG_SERVER", "ISSUER", "GATEWAY", "QUERY_SERVICE", "WEB_CLIENT",
    "TWITTER_TO_KAFKA", "KAFKA_TO_ELASTIC", "KAFKA_STREAMS", "ANALYTICS_SERVICE", "PROMETHEUS",
)  # fmt: skip
TWEETS = 400
EARLIER = {minutes_ago: 4 * minutes_ago for minutes_ago in range(2, 7)}
"""Tweets about Kafka posted in earlier minutes (minutes ago → how many), published next to
the generator's, so the per-minute chart has several bars of different heights."""

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium package is not installed"
)


@dataclass
class Stack:
    ports: dict[str, int]
    log: Path

    def url(self, name: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    @property
    def web(self) -> str:
        return self.url("WEB_CLIENT")

    def auth(self, username: str = "app_super_user") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def token(self, username: str = "app_super_user") -> str:
        reply = httpx.post(
            self.url("ISSUER", "/realms/microservices-realm/protocol/openid-connect/token"),
            data={
                "grant_type": "password",
                "username": username,
                "password": "welcome",
                "client_id": "elastic-query-web-client",
                "client_secret": "elastic-query-web-client-secret",
            },
        )
        return str(reply.json()["access_token"])


def _publish_earlier_tweets(bootstrap: str) -> int:
    """Publish the `EARLIER` tweets to the stack's broker; returns how many."""
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    tweets = [
        Tweet(
            id=1_000_000 + minutes_ago * 100 + n,
            user_id=4242,
            text=f"Earlier tweet {n} about Kafka streams",
            created_at=minute - timedelta(minutes=minutes_ago, seconds=-n),
            lang="en",
            keywords=["Kafka"],
        )
        for minutes_ago, how_many in EARLIER.items()
        for n in range(how_many)
    ]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for tweet in tweets:
            producer.send("twitter-topic", key=tweet.key, value=tweet.to_json())
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)
    return len(tweets)


def _wait(what: str, ready: object, stack: Stack, deadline: float) -> None:
    while not ready():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}:\n{stack.log.read_text()[-4000:]}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`tweetpipe up` with 400 tweets as fast as possible, on free ports, until they are
    searchable and counted."""
    tmp = tmp_path_factory.mktemp("stack")
    running = Stack({name: free_port() for name in PORT_NAMES}, tmp / "up.log")
    env = {
        **os.environ,
        "DATA_DIR": str(tmp / "data"),
        "SEARCH__TANTIVY_PATH": str(tmp / "index"),
        "MONITORING": "true",  # Debian's Prometheus: the Pipeline page's history charts
        **{f"PORTS__{name}": str(port) for name, port in running.ports.items()},
    }
    with running.log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tweetpipe.cli", "up", "--count", str(TWEETS), "--rate", "0"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180  # a guard, not a measurement: CI machines are shared
        _wait("tweetpipe up", lambda: "tweetpipe is running" in running.log.read_text(),
              running, deadline)  # fmt: skip
        assert f"web client        {running.web}" in running.log.read_text()
        expected = TWEETS + _publish_earlier_tweets(f"127.0.0.1:{running.ports['BROKER']}")
        auth = running.auth()

        def indexed() -> bool:
            reply = httpx.get(
                running.url("GATEWAY", "/elastic-query-service/documents/search"),
                params={"size": 1},
                headers=auth,
                timeout=10,
            )
            return reply.status_code == 200 and reply.json()["total"] >= expected

        def counted() -> bool:
            reply = httpx.get(
                running.url("GATEWAY", "/analytics-service/analytics/top"),
                headers=auth,
                timeout=10,
            )
            return reply.status_code == 200 and bool(reply.json()["words"])

        _wait("every tweet indexed", indexed, running, deadline)
        _wait("word counts stored", counted, running, deadline)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


def shot(page: Page, name: str) -> None:
    page.wait_for_timeout(400)  # let charts finish drawing
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, username: str) -> None:
    page.locator("#tp-sign-in").click()
    expect(page.locator("#kc-login")).to_be_visible()
    page.fill("#username", username)
    page.fill("#password", "welcome")
    page.locator("#kc-login").click()
    # exact: the 403 state also says "You are signed in as …"
    expect(page.get_by_text("Signed in as", exact=True)).to_be_visible(timeout=20_000)


def no_traceback(page: Page) -> None:
    body = page.locator("body").inner_text()
    assert "Traceback" not in body
    assert page.locator('[data-testid="stException"]').count() == 0


def drawn_bars(chart: Locator) -> dict[str, int]:
    """What a Vega-Lite bar chart drew: each bar's x label → its value, read from the SVG
    marks Vega rendered (their ARIA labels), after checking every bar has a visible height."""
    bars = chart.locator('[aria-roledescription="bar"]')
    expect(bars.first).to_be_attached(timeout=20_000)
    drawn: dict[str, int] = {}
    for bar in bars.all():
        box = bar.bounding_box()
        assert box is not None
        assert box["height"] > 0
        assert box["width"] > 0
        label = str(bar.get_attribute("aria-label"))
        match = re.fullmatch(r".*: (\d\d:\d\d); tweets: ([\d,]+)", label)
        assert match, label
        drawn[match[1]] = int(match[2].replace(",", ""))
    return drawn


def drawn_lines(chart: Locator) -> set[str]:
    """The series a Vega-Lite line chart drew as lines (at least two points), by the names in
    their ARIA labels."""
    lines = chart.locator('g.mark-line [aria-roledescription="line mark"]')
    return {
        str(line.get_attribute("aria-label")).rsplit(": ", 1)[-1]
        for line in lines.all()
        if "L" in str(line.get_attribute("d"))
    }


def lines_drawn(chart: Locator, wanted: set[str], at_least: int = 1) -> set[str]:
    """`drawn_lines` once it includes `wanted` (and `at_least` lines): the page redraws its
    history every 15 s, and a young Prometheus has only a few points."""
    deadline = time.monotonic() + 90  # a guard, not a measurement
    while True:
        drawn = drawn_lines(chart)
        if wanted <= drawn and len(drawn) >= at_least:
            return drawn
        assert time.monotonic() < deadline, f"lines drawn: {drawn}, wanted {wanted}"
        chart.page.wait_for_timeout(1000)


def rising_terms(page: Page, stack: Stack) -> list[str]:
    """The terms "Rising now" draws, each with a chart whose two bars (usual, now) are drawn;
    `tweetpipe up` starts the generator with a burst, so there is at least one."""
    trending = stack.url("GATEWAY", "/analytics-service/analytics/trending")
    deadline = time.monotonic() + 90  # a guard, not a measurement

    def answered() -> list[str]:
        reply = httpx.get(trending, params={"n": 20}, headers=stack.auth(), timeout=10)
        if reply.status_code == 429:  # the page, refreshing, shares this user's rate limit
            return []
        assert reply.status_code == 200, reply.text
        return [t["term"] for t in reply.json()["trending"]]

    while "launchday" not in answered():  # the burst's hashtag, through the gateway
        assert time.monotonic() < deadline, answered()
        time.sleep(1)
    expect(page.get_by_text("Rising now")).to_be_visible()
    charts = page.locator('[class*="st-key-rising-"]')
    expect(charts.first).to_be_attached(timeout=30_000)
    terms = []
    for chart in charts.all():
        term = str(chart.get_attribute("class")).split("st-key-rising-", 1)[1].split()[0]
        expect(page.get_by_text(term, exact=True).first).to_be_visible()
        bars = chart.locator('[aria-roledescription="bar"]')
        expect(bars.first).to_be_attached(timeout=20_000)
        labels = [str(b.get_attribute("aria-label")) for b in bars.all()]
        assert len(labels) == 2, labels
        assert any("now" in label for label in labels), labels
        terms.append(term)
    return terms


def test_sign_in_search_trends_pipeline_and_sign_out(stack: Stack, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 2000})
    page.goto(stack.web + "/trends")
    expect(page.get_by_text("Sign in to see which words are trending")).to_be_visible(
        timeout=30_000
    )
    shot(page, "01-signed-out")

    sign_in(page, "app_super_user")
    assert page.url == stack.web + "/trends"  # back where the sign-in started
    live = page.locator('[data-testid="stDataFrame"]').first
    expect(live).to_be_visible(timeout=20_000)
    expect(page.get_by_text("counted since the pipeline started")).to_be_visible()
    rising = rising_terms(page, stack)
    assert rising, "Rising now shows no term"
    no_traceback(page)
    shot(page, "02-trends")

    page.get_by_role("link", name="Search").click()
    expect(page.get_by_text(re.compile(r"[\d,]+ tweets indexed"))).to_be_visible(timeout=20_000)
    box = page.get_by_placeholder("Words to find")
    box.fill("kafka")
    box.press("Enter")
    expect(page.get_by_text(re.compile(r"[\d,]+ tweets match"))).to_be_visible(timeout=20_000)
    marks = page.locator(".tp-hit mark")
    expect(marks.first).to_be_visible()
    assert {m.lower() for m in marks.all_inner_texts()} == {"kafka"}
    assert page.locator(".tp-hit").count() == 10
    # The per-minute chart draws one bar per minute the API reports, at its count.
    reply = httpx.get(
        stack.url("GATEWAY", "/elastic-query-service/documents/search"),
        params={"q": "kafka", "size": 1},
        headers=stack.auth(),
    )
    buckets = reply.json()["aggregations"]["per_minute"]
    expected = {
        datetime.fromisoformat(b["start"]).astimezone(UTC).strftime("%H:%M"): b["count"]
        for b in buckets
    }
    assert len(expected) >= len(EARLIER)
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    assert drawn_bars(chart) == expected
    assert "0.000000" not in chart.inner_text()
    no_traceback(page)
    shot(page, "03-search-kafka")

    page.get_by_role("button", name="More results").click()
    expect(page.locator(".tp-hit")).to_have_count(20, timeout=20_000)
    facet = page.locator('[class*="st-key-facet-"] button').first
    tag = facet.inner_text().split(" · ")[0]
    facet.click()
    expect(page.get_by_text(re.compile(r"[\d,]+ tweets match"))).to_be_visible(timeout=20_000)
    expect(page.get_by_role("button", name=f"{tag}  ✕")).to_be_visible()
    shot(page, "04-search-hashtag-filter")

    page.get_by_role("link", name="Pipeline").click()
    expect(page.get_by_text("Tweets indexed")).to_be_visible(timeout=20_000)
    indexed = page.locator('[data-testid="stColumn"]').filter(has_text="Tweets indexed")
    every = TWEETS + sum(EARLIER.values())
    expect(indexed).to_contain_text(f"{every} in total", timeout=20_000)
    # History from the stack's Prometheus, drawn with the dashboards' PromQL.
    expect(page.get_by_text("No history charts")).to_have_count(0)

    def history(key: str) -> Locator:
        return page.locator(f".st-key-history-{key}")

    # (The generator stopped after its tweets, before Prometheus started: no "produced" line.)
    lines_drawn(history("throughput"), {"indexed", "counted", "analytics records stored"})
    groups = {"kafka-to-elastic", "kafka-streams", "kafka-streams-counter", "analytics-service"}
    lines_drawn(history("lag"), groups)
    lines_drawn(history("breakers"), {"elastic-query-service"})  # by route
    lines_drawn(history("latency"), set(), at_least=1)  # p99 per service that was called
    expect(history("dead-letters")).to_contain_text("Dead letters per second, by stage and error")
    no_traceback(page)
    shot(page, "05-pipeline")

    page.get_by_role("button", name="Sign out").click()
    # The dev issuer ends its session and sends the browser back to the app (a registered
    # loopback redirect URI, on whatever port the app has).
    expect(page.locator("#tp-sign-in")).to_be_visible(timeout=20_000)
    assert page.url.startswith(stack.web)
    shot(page, "06-signed-out")
    page.locator("#tp-sign-in").click()
    expect(page.locator("#kc-login")).to_be_visible()  # the provider asks again
    page.close()


def test_a_user_without_a_role_sees_the_no_permission_state(stack: Stack, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(stack.web)
    expect(page.locator("#tp-sign-in")).to_be_visible(timeout=30_000)
    sign_in(page, "app_guest")
    expect(page.get_by_text("No permission.")).to_be_visible(timeout=20_000)
    expect(page.get_by_text("signed in as app_guest")).to_be_visible()
    no_traceback(page)
    shot(page, "07-guest-search-403")
    page.get_by_role("link", name="Trends").click()
    expect(page.get_by_text("No permission.")).to_have_count(1, timeout=20_000)
    no_traceback(page)
    shot(page, "08-guest-trends-403")
    page.close()
