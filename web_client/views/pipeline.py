"""Pipeline page: history charts from Prometheus (tweets/s per stage, consumer lag per group,
dead letters, request p99 per service, breaker state) over a chosen range, then tweets per
second produced, indexed and counted, consumer lag and dead letters right now, from each
service's Prometheus `/metrics` (its admin port, not the gateway).

The charts run the Grafana dashboards' own PromQL (`web_client.history`). Without Prometheus the
page says why and shows the current figures only.

Rates need two scrapes: the page keeps the previous one in the session and, on its first
render, takes a second one a second after the first.
"""

from __future__ import annotations

import time

import streamlit as st

from web_client import history, metrics, session, ui
from web_client.history import ChartData, NoHistory
from web_client.metrics import Snapshot
from web_client.render import count, per_second

REFRESH_S = 3
HISTORY_REFRESH_S = 15
PREVIOUS = "tp_metrics_previous"
FIRST_GAP_S = 1.0


def render() -> None:
    st.title("Pipeline")
    if session.access_token() is None:
        session.sign_in_prompt("to watch the pipeline")
        return
    st.fragment(_history, run_every=HISTORY_REFRESH_S)()
    st.subheader("Now")
    ui.refreshing(_figures, REFRESH_S, key="pipeline-auto")


def _history() -> None:
    settings = session.resources().settings.pipeline
    heading, picker = st.columns([3, 1], vertical_alignment="bottom")
    heading.subheader("History")
    label = picker.selectbox("Over the last", list(history.RANGES), key="pipeline-range")
    found = history.fetch(settings, history.RANGES[label or "15 minutes"])
    if isinstance(found, NoHistory):
        st.info(
            f"**No history charts:** {found.reason}. The figures below are read from each "
            "service's `/metrics` now.",
            icon=":material/monitoring:",
        )
        return
    left, right = st.columns(2, gap="large")
    for index, chart in enumerate(found):
        with left if index % 2 == 0 else right:
            _chart(chart)


def _chart(chart: ChartData) -> None:
    with st.container(key=f"history-{chart.key}"):
        st.markdown(f"**{chart.title}**")
        if chart.series:
            _lines(chart)
        else:
            st.caption("No data in this range yet.")


def _lines(chart: ChartData) -> None:
    rows = [
        {"time": point.at.isoformat(), "series": series.name, "value": point.value}
        for series in chart.series
        for point in series.points
    ]
    # A flat zero line would get a [0, 0] axis labelled 0.000000: keep some room above zero.
    room = {"seconds": 0.01, "state": 2}.get(chart.unit, 1)
    y: dict[str, object] = {
        "field": "value",
        "type": "quantitative",
        "title": chart.unit,
        "scale": {"domain": {"unionWith": [0, room]}},
    }
    if chart.unit == "state":
        y["scale"] = {"domain": [0, 2]}
        y["axis"] = {"values": [0, 1, 2], "format": "d"}
    spec = {
        "description": chart.title,
        "mark": {"type": "line", "interpolate": "step-after" if chart.unit == "state" else "linear",
                 "tooltip": True},
        "height": 200,
        "encoding": {
            "x": {"field": "time", "type": "temporal", "title": None,
                  "scale": {"type": "utc"},
                  "axis": {"format": "%H:%M", "tickMinStep": 60_000}},
            "y": y,
            "color": {"field": "series", "type": "nominal", "title": None,
                      "legend": {"orient": "bottom", "columns": 2, "labelLimit": 260}},
        },
    }  # fmt: skip
    st.vega_lite_chart(rows, spec, width="stretch")


def _take() -> tuple[Snapshot, Snapshot]:
    pipeline = session.resources().settings.pipeline
    previous = st.session_state.get(PREVIOUS)
    if not isinstance(previous, Snapshot):
        previous = metrics.snapshot(pipeline.metrics_urls, pipeline.timeout_s)
        time.sleep(FIRST_GAP_S)
    current = metrics.snapshot(pipeline.metrics_urls, pipeline.timeout_s)
    st.session_state[PREVIOUS] = current
    return previous, current


def _figures() -> None:
    before, now = _take()
    if len(now.down) == len(now.scrapes):
        st.error(
            "**No pipeline service answers.** Is the pipeline running? "
            "(`./dev up` starts it on this machine.)",
            icon=":material/cloud_off:",
        )
        _down(now)
        return
    st.subheader("Throughput")
    columns = st.columns(len(metrics.THROUGHPUT))
    for column, (label, name) in zip(columns, metrics.THROUGHPUT.items(), strict=True):
        with column:
            st.metric(label, per_second(metrics.rate(before, now, name)))
            total = now.total(name)
            st.caption("no figures" if total is None else f"{count(total)} in total")
    lag, dead = st.columns(2, gap="large")
    with lag:
        st.subheader("Consumer lag")
        lags = now.lag()
        if lags:
            st.metric("Records waiting", count(sum(lags.values())))
            _table(lags, "Consumer group", "Records behind")
        else:
            st.caption("No consumer reports lag yet.")
    with dead:
        st.subheader("Dead letters")
        letters = now.dead_letters()
        total = sum(letters.values())
        st.metric("Records rejected", count(total))
        if total:
            _table(letters, "Rejected by", "Records")
        else:
            st.caption("Nothing has been dead-lettered.")
    _down(now)


def _table(values: dict[str, float], key: str, value: str) -> None:
    frame = {key: list(values), value: [int(v) for v in values.values()]}
    st.dataframe(frame, hide_index=True, width="stretch")


def _down(now: Snapshot) -> None:
    for service, error in now.down.items():
        url = next(s.url for s in now.scrapes if s.service == service)
        st.warning(
            f"**{service}** {error} at {url}: it has stopped, or has not started yet. "
            "Its figures show as n/a.",
            icon=":material/power_off:",
        )
