"""Search page: query and filters, highlighted results, "more results", hashtag facets as
filters, and a per-minute histogram of the matching tweets.

A search runs when the form is submitted, a facet is clicked, or the page first opens (the
newest tweets); its answer stays in the session, so reruns for other reasons cost no call.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import streamlit as st

from web_client import session, ui
from web_client.api import Ok, Problem, SearchQuery, Sort
from web_client.models import Aggregations, DateBucket, Hit
from web_client.render import CSS, hit_card

LANGUAGES = {
    "": "Any language",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "ja": "Japanese",
    "it": "Italian",
    "nl": "Dutch",
    "pl": "Polish",
    "ru": "Russian",
    "pt": "Portuguese",
}
SORTS: dict[Sort, str] = {"relevance": "Best match", "newest": "Newest first", "oldest": "Oldest"}
RESULTS = "tp_search_results"
RUN = "tp_search_run"


@dataclass
class Results:
    """What the session has fetched for one query."""

    query: SearchQuery
    run: int
    total: int = 0
    hits: list[Hit] = field(default_factory=list)
    next_cursor: str | None = None
    aggregations: Aggregations | None = None
    problem: Problem | None = None
    more_problem: Problem | None = None


def render() -> None:
    st.title("Search tweets")
    token = session.access_token()
    if token is None:
        session.sign_in_prompt("to search the indexed tweets")
        return
    query, error = _form()
    if error:
        st.error(error)
        return
    results = _results(token, query)
    if results.problem is not None:
        ui.problem(results.problem, "read tweets")
        if ui.retryable(results.problem):
            st.button("Try again", key="search-retry", on_click=_next_run)
        return
    _show(results)


def _form() -> tuple[SearchQuery, str | None]:
    state = st.session_state
    with st.form("search-form", border=False):
        st.text_input(
            "Search", key="f_text", placeholder="Words to find, e.g. kafka streams",
            label_visibility="collapsed",
        )  # fmt: skip
        user_col, tag_col, lang_col, sort_col = st.columns(4)
        user_col.text_input("User id", key="f_user", placeholder="any user")
        tag_col.text_input("Hashtag", key="f_hashtag", placeholder="any hashtag, e.g. DevOps")
        lang_col.selectbox(
            "Language", list(LANGUAGES), key="f_lang", format_func=lambda c: LANGUAGES[c]
        )
        sort_col.selectbox("Sort", list(SORTS), key="f_sort", format_func=lambda s: SORTS[s])
        since, until, submit = st.columns([1, 1, 2], vertical_alignment="bottom")
        since.datetime_input("From (UTC)", value=None, key="f_since", step=60)
        until.datetime_input("To (UTC)", value=None, key="f_until", step=60)
        submit.form_submit_button("Search", type="primary", on_click=_next_run)
    text = str(state.get("f_text") or "").strip() or None
    user_text = str(state.get("f_user") or "").strip()
    if user_text and not user_text.isdigit():
        return SearchQuery(), f"User id must be a number (got {user_text!r})."
    since_at, until_at = _utc(state.get("f_since")), _utc(state.get("f_until"))
    if since_at and until_at and since_at >= until_at:
        return SearchQuery(), "“From” must be before “To”."
    sort: Sort = state.get("f_sort") or "relevance"
    if text is None and sort == "relevance":
        sort = "newest"  # nothing to rank by: show the latest tweets
    hashtag = str(state.get("f_hashtag") or "").strip().lstrip("#") or None
    query = SearchQuery(
        text=text,
        user_id=int(user_text) if user_text else None,
        hashtag=hashtag,
        lang=state.get("f_lang") or None,
        since=since_at,
        until=until_at,
        sort=sort,
    )
    return query, None


def _utc(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _next_run() -> None:
    st.session_state[RUN] = int(st.session_state.get(RUN, 0)) + 1


def _results(token: str, query: SearchQuery) -> Results:
    """The session's results for `query`, fetching the first page if they are not there."""
    run = int(st.session_state.get(RUN, 0))
    found = st.session_state.get(RESULTS)
    if isinstance(found, Results) and found.query == query and found.run == run:
        return found
    gateway = session.resources().gateway
    with st.spinner("Searching…"):
        outcome = gateway.search(token, query)
    if isinstance(outcome, Ok):
        page = outcome.value
        results = Results(
            query=query,
            run=run,
            total=page.total,
            hits=list(page.hits),
            next_cursor=page.next_cursor,
            aggregations=page.aggregations,
        )
    else:
        results = Results(query=query, run=run, problem=outcome)
    st.session_state[RESULTS] = results
    return results


def _more() -> None:
    """The "more results" button: the next page by cursor, appended to the hits shown."""
    results = st.session_state.get(RESULTS)
    token = session.access_token()
    if not isinstance(results, Results) or results.next_cursor is None or token is None:
        return
    outcome = session.resources().gateway.search(token, results.query, results.next_cursor)
    if isinstance(outcome, Ok):
        page = outcome.value
        st.session_state[RESULTS] = replace(
            results,
            hits=[*results.hits, *page.hits],
            next_cursor=page.next_cursor,
            more_problem=None,
        )
    else:
        st.session_state[RESULTS] = replace(results, more_problem=outcome)


def _filter_by_hashtag(tag: str | None) -> None:
    st.session_state["f_hashtag"] = tag or ""
    _next_run()


def _show(results: Results) -> None:
    query = results.query
    if query.hashtag:
        st.button(
            f"#{query.hashtag}  ✕",
            key="clear-hashtag",
            help="Remove the hashtag filter",
            on_click=_filter_by_hashtag,
            args=(None,),
        )
    if results.total == 0:
        what = f"“{query.text}”" if query.text else "these filters"
        st.info(
            f"**No tweets match {what}.** Try other words, fewer words, or remove a filter.",
            icon=":material/search_off:",
        )
        return
    shown = len(results.hits)
    heading = "match" if query.text else "indexed" if _unfiltered(query) else "match the filters"
    st.markdown(f"**{results.total:,} tweets** {heading} · showing {shown:,}")
    aggregations = results.aggregations
    if aggregations is not None and aggregations.per_minute:
        _histogram(aggregations.per_minute)
    main, side = st.columns([3, 1], gap="large")
    with main:
        st.html(CSS + "".join(hit_card(hit) for hit in results.hits))
        if results.more_problem is not None:
            ui.problem(results.more_problem, "read tweets")
        if results.next_cursor is not None:
            st.button("More results", key="more", on_click=_more)
        else:
            st.caption("That is every matching tweet.")
    with side:
        if aggregations is not None and aggregations.top_hashtags:
            st.markdown("**Top hashtags**")
            st.caption("Click one to filter by it, again to remove the filter.")
            for bucket in aggregations.top_hashtags:
                active = query.hashtag is not None and bucket.key.lower() == query.hashtag.lower()
                st.button(
                    f"#{bucket.key} · {bucket.count:,}",
                    key=f"facet-{bucket.key}",
                    help="Remove this filter" if active else f"Only tweets tagged #{bucket.key}",
                    type="primary" if active else "secondary",
                    on_click=_filter_by_hashtag,
                    args=(None if active else bucket.key,),
                    width="stretch",
                )


def _unfiltered(query: SearchQuery) -> bool:
    return not (query.user_id or query.hashtag or query.lang or query.since or query.until)


def _histogram(buckets: list[DateBucket]) -> None:
    """Matching tweets per minute, on a UTC time axis (one bar per minute with tweets)."""
    if len(buckets) < 2:
        minute = buckets[0].start.astimezone(UTC)
        st.caption(f"All matching tweets were posted in the minute from {minute:%H:%M} UTC.")
        return
    values = [{"minute": b.start.astimezone(UTC).isoformat(), "tweets": b.count} for b in buckets]
    spec = {
        "mark": {"type": "bar", "tooltip": True},
        "height": 140,
        "encoding": {
            "x": {
                "field": "minute",
                "type": "temporal",
                "timeUnit": "utcyearmonthdatehoursminutes",
                "title": "Matching tweets per minute (UTC)",
                "axis": {"labelAngle": 0, "format": "%H:%M"},
                "scale": {"type": "utc"},
            },
            "y": {"field": "tweets", "type": "quantitative", "title": None},
        },
    }
    st.vega_lite_chart(values, spec, width="stretch")
