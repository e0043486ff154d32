"""The Pipeline page's figures, read from each service's Prometheus `/metrics`.

A scrape is parsed with prometheus_client's own parser; rates come from two scrapes (the
counter's increase over the time between them, a restarted service's counter counted from 0).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict

PRODUCED = "tweetpipe_tweets_produced_total"
INDEXED = "tweetpipe_tweets_indexed_total"
COUNTED = "tweetpipe_streams_tweets_processed_total"
ANALYTICS_RECORDS = "tweetpipe_analytics_records_total"
CONSUMER_LAG = "tweetpipe_consumer_lag"
DEAD_LETTERED = "tweetpipe_dead_lettered_total"
ANALYTICS_DEAD_LETTERS = "tweetpipe_analytics_dead_letters_total"

THROUGHPUT = {
    "Tweets produced": PRODUCED,
    "Tweets indexed": INDEXED,
    "Tweets counted": COUNTED,
    "Word counts stored": ANALYTICS_RECORDS,
}
"""Label → the counter whose rate is that stage's throughput."""


class Sample(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    labels: dict[str, str]
    value: float


class Scrape(BaseModel):
    service: str
    url: str
    samples: list[Sample] = []
    error: str | None = None

    def values(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name]


class Snapshot(BaseModel):
    """Every service's scrape at one moment."""

    taken_at: float
    """`time.monotonic()` when the scrapes finished."""
    scrapes: list[Scrape]

    def total(self, name: str) -> float | None:
        """Sum over every service exporting `name`; None when none of them does."""
        found = [s.value for scrape in self.scrapes for s in scrape.values(name)]
        return sum(found) if found else None

    @property
    def down(self) -> dict[str, str]:
        return {s.service: s.error for s in self.scrapes if s.error is not None}

    def lag(self) -> dict[str, float]:
        """Records not yet processed, by consumer group."""
        lag: dict[str, float] = defaultdict(float)
        for scrape in self.scrapes:
            for s in scrape.values(CONSUMER_LAG):
                lag[s.labels.get("group", scrape.service)] += s.value
        return dict(lag)

    def dead_letters(self) -> dict[str, float]:
        """Records sent to the dead-letter topic, by the stage that rejected them."""
        counts: dict[str, float] = defaultdict(float)
        for scrape in self.scrapes:
            for s in scrape.values(DEAD_LETTERED):
                counts[s.labels.get("stage", scrape.service)] += s.value
            for s in scrape.values(ANALYTICS_DEAD_LETTERS):
                counts[scrape.service] += s.value
        return dict(counts)


def parse(text: str) -> list[Sample]:
    return [
        Sample(name=s.name, labels=dict(s.labels), value=float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def scrape(service: str, url: str, timeout_s: float) -> Scrape:
    try:
        reply = httpx.get(url, timeout=timeout_s)
        reply.raise_for_status()
        return Scrape(service=service, url=url, samples=parse(reply.text))
    except httpx.HTTPStatusError as exc:
        return Scrape(service=service, url=url, error=f"answers HTTP {exc.response.status_code}")
    except httpx.HTTPError:
        return Scrape(service=service, url=url, error="does not answer")
    except ValueError as exc:
        return Scrape(service=service, url=url, error=f"unreadable metrics ({exc})")


def snapshot(
    urls: Mapping[str, str],
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> Snapshot:
    """Scrape every service at once (a service that does not answer costs one timeout)."""
    items = list(urls.items())
    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        scrapes = list(pool.map(lambda item: scrape(item[0], item[1], timeout_s), items))
    return Snapshot(taken_at=clock(), scrapes=scrapes)


def rate(before: Snapshot, after: Snapshot, name: str) -> float | None:
    """Per-second increase of counter `name` between two snapshots, summed over services;
    None when no service exports it in `after` or no time passed."""
    elapsed = after.taken_at - before.taken_at
    if elapsed <= 0:
        return None
    previous = {s.service: s for s in before.scrapes}
    increase = 0.0
    seen = False
    for scrape in after.scrapes:
        now = _sum(scrape.values(name))
        if now is None:
            continue
        seen = True
        old = previous.get(scrape.service)
        then = _sum(old.values(name)) if old is not None else None
        if then is None:
            continue  # no earlier value (the service just came up): no rate yet
        increase += now - then if now >= then else now  # a restart resets the counter
    return increase / elapsed if seen else None


def _sum(samples: Iterable[Sample]) -> float | None:
    values = [s.value for s in samples]
    return sum(values) if values else None
