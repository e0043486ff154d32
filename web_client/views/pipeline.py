"""Pipeline page: tweets per second produced, indexed and counted, consumer lag and dead
letters, from each service's Prometheus `/metrics` (its admin port, not the gateway).

Rates need two scrapes: the page keeps the previous one in the session and, on its first
render, takes a second one a second after the first.
"""

from __future__ import annotations

import time

import streamlit as st

from web_client import metrics, session, ui
from web_client.metrics import Snapshot
from web_client.render import count, per_second

REFRESH_S = 3
PREVIOUS = "tp_metrics_previous"
FIRST_GAP_S = 1.0


def render() -> None:
    st.title("Pipeline")
    if session.access_token() is None:
        session.sign_in_prompt("to watch the pipeline")
        return
    ui.refreshing(_figures, REFRESH_S, key="pipeline-auto")


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
