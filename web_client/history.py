"""The Pipeline page's history: Grafana dashboard panels run as range queries on Prometheus.

Each chart names a dashboard panel (and which of its targets); the PromQL comes from the
dashboard file, with its variables replaced as Grafana would for "every job and instance", so
the page and Grafana cannot drift apart. Anything that keeps the history from being shown
(no Prometheus configured, no answer, no dashboard files) comes back as a reason in words.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
from pydantic import BaseModel, ValidationError

from web_client import dashboards
from web_client.settings import PipelineSettings

Unit = Literal["per second", "records", "seconds", "state"]
POINTS = 120
"""About this many points per series, whatever the range."""
RANGES = {"15 minutes": 900, "1 hour": 3600, "6 hours": 6 * 3600, "24 hours": 24 * 3600}


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    dashboard: str
    """The dashboard's uid."""
    panel: str
    ref_ids: tuple[str, ...]
    unit: Unit


CHARTS = (
    Chart("throughput", "Tweets per second, per stage", "tweetpipe-pipeline",
          "Throughput per stage", ("A", "B", "C", "D"), "per second"),
    Chart("lag", "Consumer lag per group", "tweetpipe-pipeline", "Consumer lag per group",
          ("A",), "records"),
    Chart("dead-letters", "Dead letters per second, by stage and error",
          "tweetpipe-dead-letters", "Dead letters by stage and error", ("A",), "per second"),
    Chart("latency", "Request latency p99, per service", "tweetpipe-http",
          "Latency p95 and p99 by service", ("B",), "seconds"),
    Chart("breakers", "Gateway circuit breakers (0 closed, 1 half-open, 2 open)",
          "tweetpipe-http", "Gateway: circuit breakers (0 closed, 1 half-open, 2 open)", ("A",),
          "state"),
)  # fmt: skip


class Point(BaseModel):
    at: datetime
    value: float


class Series(BaseModel):
    name: str
    points: list[Point]


class ChartData(BaseModel):
    key: str
    title: str
    unit: Unit
    series: list[Series]


class _Result(BaseModel):
    metric: dict[str, str]
    values: list[tuple[float, str]]


class _Data(BaseModel):
    result: list[_Result]


class _Answer(BaseModel):
    status: str
    data: _Data | None = None
    error: str | None = None


class NoHistory(BaseModel):
    """Why there is no history to show."""

    reason: str


def step_s(range_s: float, scrape_interval_s: float) -> float:
    """About `POINTS` points over the range, never closer than one scrape."""
    return max(scrape_interval_s, math.ceil(range_s / POINTS))


def fetch(
    settings: PipelineSettings,
    range_s: float,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[ChartData] | NoHistory:
    """Every chart over the last `range_s` seconds, or why not."""
    if not settings.prometheus_url:
        return NoHistory(
            reason="no Prometheus is configured (`PIPELINE__PROMETHEUS_URL`; `./dev up` sets it "
            "when Debian's `prometheus` package is installed)"
        )
    try:
        found = dashboards.load_all(settings.dashboards_dir)
    except (OSError, ValueError) as exc:
        return NoHistory(reason=f"the Grafana dashboard files cannot be read ({exc})")
    missing = {c.dashboard for c in CHARTS} - set(found)
    if missing:
        return NoHistory(
            reason=f"the dashboards {', '.join(sorted(missing))} are not in "
            f"{settings.dashboards_dir}"
        )
    end = now()
    step = step_s(range_s, settings.scrape_interval_s)
    window = dashboards.rate_interval(step, settings.scrape_interval_s)
    base = settings.prometheus_url.rstrip("/")
    with httpx.Client(base_url=base, timeout=settings.timeout_s) as client:
        try:
            client.get("/-/ready").raise_for_status()
        except httpx.HTTPError as exc:
            return NoHistory(reason=f"Prometheus at {base} does not answer ({_why(exc)})")
        with ThreadPoolExecutor(max_workers=len(CHARTS)) as pool:
            charts = list(
                pool.map(
                    lambda c: _chart(client, c, found[c.dashboard], end, range_s, step, window),
                    CHARTS,
                )
            )
    failed = [c for c in charts if isinstance(c, NoHistory)]
    if failed:
        return failed[0]
    return [c for c in charts if isinstance(c, ChartData)]


def _why(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def _chart(
    client: httpx.Client,
    chart: Chart,
    dashboard: dashboards.Dashboard,
    end: datetime,
    range_s: float,
    step: float,
    window: str,
) -> ChartData | NoHistory:
    try:
        panel = dashboard.panel(chart.panel)
        targets = [panel.target(ref_id) for ref_id in chart.ref_ids]
    except KeyError as exc:
        return NoHistory(reason=f"a dashboard has changed: {exc.args[0]}")
    series: list[Series] = []
    start = end - timedelta(seconds=range_s)
    for target in targets:
        expr = dashboards.render(target.expr, rate_interval=window, variables=dashboard.variables)
        params = {
            "query": expr,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step:g}",
        }
        try:
            reply = client.get("/api/v1/query_range", params=params)
            answer = _Answer.model_validate_json(reply.content)
        except (httpx.HTTPError, ValidationError) as exc:
            return NoHistory(reason=f"Prometheus did not answer a query ({type(exc).__name__})")
        if answer.status != "success" or answer.data is None:
            return NoHistory(reason=f"Prometheus refused “{panel.title}”: {answer.error}")
        for result in answer.data.result:
            name = dashboards.legend(target.legend, result.metric, fallback=panel.title)
            points = [
                Point(at=datetime.fromtimestamp(at, UTC), value=float(value))
                for at, value in result.values
                if math.isfinite(float(value))
            ]
            if points:
                series.append(Series(name=name, points=points))
    return ChartData(key=chart.key, title=chart.title, unit=chart.unit, series=series)
