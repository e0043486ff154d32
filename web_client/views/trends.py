"""Trends page: what is rising now (terms well above their own recent baseline, from the
analytics service's hopping windows), the top words right now (the stream stage's live
one-minute window), the top words of a chosen minute (stored by the analytics service), and
one word over time.

With auto-refresh on, the figures (not the whole page) reload every `REFRESH_S` seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import streamlit as st

from web_client import session, ui
from web_client.api import Ok
from web_client.models import TopWords, Trending, TrendingTerm, WordCount
from web_client.render import utc_time

REFRESH_S = 10
TOP_N = 10
RISING_N = 5
RANGES = {"Last 15 minutes": 15, "Last hour": 60, "Last 6 hours": 360, "Last 24 hours": 1440}
WINDOW_CHOICES = 60
"""How many past minutes the window picker offers."""


def render() -> None:
    st.title("Trends")
    if session.access_token() is None:
        session.sign_in_prompt("to see which words are trending")
        return
    ui.refreshing(_figures, REFRESH_S, key="trends-auto")


def _figures() -> None:
    token = session.access_token()
    if token is None:
        st.rerun()
        return
    gateway = session.resources().gateway
    now = gateway.top_words_now(token, TOP_N)
    if not isinstance(now, Ok) and ui.denied(now):
        ui.problem(now, "see word counts")  # the same answer for every figure here
        return
    rising = gateway.trending(token, RISING_N)
    st.subheader("Rising now")
    if isinstance(rising, Ok):
        _rising(rising.value)
    else:
        ui.problem(rising, "see word counts")
    st.divider()
    now_col, window_col = st.columns(2, gap="large")
    top_word: str | None = None
    with now_col:
        st.subheader("Right now")
        if isinstance(now, Ok):
            top_word = now.value.words[0].word if now.value.words else None
            _top_table(
                now.value,
                "No words counted in the current minute yet: no tweets arrived since it began.",
                "now",
            )
        else:
            ui.problem(now, "see word counts")
    with window_col:
        st.subheader("In a chosen minute")
        window = st.selectbox(
            "Minute (UTC)",
            _window_choices(datetime.now(UTC)),
            key="trends-window",
            format_func=lambda w: "Latest stored minute" if w is None else f"{w:%H:%M}",
        )
        stored = gateway.top_words(token, window, TOP_N)
        if isinstance(stored, Ok):
            top_word = top_word or (stored.value.words[0].word if stored.value.words else None)
            _top_table(stored.value, "No counts were stored for that minute.", "window")
        else:
            ui.problem(stored, "see word counts")
    st.divider()
    _word_over_time(token, top_word)
    st.caption(f"Updated {utc_time(datetime.now(UTC))}")


def _rising(trending: Trending) -> None:
    """One small chart per rising term: its count now beside its usual count."""
    if trending.window_start is not None and trending.window_end is not None:
        state = "final" if trending.final else "still counting"
        st.caption(
            f"Window {trending.window_start:%H:%M} to {trending.window_end:%H:%M} UTC ({state}), "
            "against the same term's count in the windows before it"
        )
    if not trending.trending:
        st.info(
            "Nothing is rising: every term is near its usual count.",
            icon=":material/trending_flat:",
        )
        return
    for column, term in zip(st.columns(len(trending.trending)), trending.trending, strict=True):
        with column, st.container(key=f"rising-{term.term}"):
            _rising_term(term)


def _rising_term(term: TrendingTerm) -> None:
    st.markdown(f"**{term.term}**")
    values = [
        {"window": "usual", "count": term.baseline},
        {"window": "now", "count": term.count},
    ]
    spec = {
        "mark": {"type": "bar", "tooltip": True},
        "height": 110,
        "encoding": {
            "x": {
                "field": "window",
                "type": "nominal",
                "sort": ["usual", "now"],
                "title": None,
                "axis": {"labelAngle": 0},
            },
            "y": {"field": "count", "type": "quantitative", "title": None},
            "color": {
                "field": "window",
                "type": "nominal",
                "legend": None,
                "scale": {"domain": ["usual", "now"], "range": ["#9aa5b1", "#e4572e"]},
            },
        },
    }
    st.vega_lite_chart(values, spec, width="stretch")
    st.caption(f"{term.count:,} now, usually {term.baseline:,.1f} · score {term.score:,.1f}")


def _window_choices(now: datetime) -> list[datetime | None]:
    current = now.replace(second=0, microsecond=0)
    return [None, *(current - timedelta(minutes=m) for m in range(WINDOW_CHOICES))]


def _top_table(top: TopWords, empty: str, key: str) -> None:
    if top.window_start is not None:
        end = f" to {top.window_end:%H:%M}" if top.window_end else ""
        st.caption(f"Window {top.window_start:%Y-%m-%d %H:%M}{end} UTC")
    if not top.words:
        st.info(empty, icon=":material/hourglass_empty:")
        return
    st.dataframe(
        _frame(top.words),
        key=f"top-{key}",
        hide_index=True,
        width="stretch",
        column_config={
            "word": st.column_config.TextColumn("Word"),
            "count": st.column_config.ProgressColumn(
                "Count", format="%d", min_value=0, max_value=max(w.word_count for w in top.words)
            ),
        },
    )


def _frame(words: list[WordCount]) -> dict[str, list[object]]:
    return {"word": [w.word for w in words], "count": [w.word_count for w in words]}


def _word_over_time(token: str, suggested: str | None) -> None:
    st.subheader("A word over time")
    if "trends-word" not in st.session_state:
        st.session_state["trends-word"] = suggested or "kafka"
    word_col, range_col = st.columns([2, 1])
    word = word_col.text_input("Word", key="trends-word").strip().lower()
    span = range_col.selectbox("Range", list(RANGES), key="trends-range")
    if not word:
        return
    gateway = session.resources().gateway
    total = gateway.word_total(token, word)
    if isinstance(total, Ok):
        st.metric(f"“{word}” counted since the pipeline started", f"{total.value.word_count:,}")
    else:
        ui.problem(total, "see word counts")
        return
    since = datetime.now(UTC) - timedelta(minutes=RANGES[span])
    series = gateway.word_series(token, word, since)
    if not isinstance(series, Ok):
        ui.problem(series, "see word counts")
        return
    points = series.value.points
    if not points:
        st.info(f"“{word}” was not counted in the {span.lower()}.", icon=":material/show_chart:")
        return
    peak = max(points, key=lambda p: p.word_count)
    minutes = "1 minute" if len(points) == 1 else f"{len(points)} minutes"
    st.caption(
        f"{minutes} with “{word}”; most in the minute from "
        f"{peak.window_start:%H:%M} UTC ({peak.word_count:,})"
    )
    frame = {
        "minute (UTC)": [p.window_start.astimezone(UTC).replace(tzinfo=None) for p in points],
        "count": [p.word_count for p in points],
    }
    st.line_chart(frame, x="minute (UTC)", y="count", height=220)
