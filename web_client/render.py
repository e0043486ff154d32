"""HTML and text the pages show, built from API answers without trusting them.

Search highlights arrive as text fragments with `<em>` around matches and everything else
HTML-escaped. `highlight` keeps exactly those `<em>` marks (as `<mark>`) and escapes the rest
again, so a fragment that is not escaped as promised still cannot inject markup.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from web_client.models import Hit

_EM = re.compile(r"(</?em>)", re.IGNORECASE)

CSS = """
<style>
.tp-hit { padding: .7rem .9rem; margin: 0 0 .6rem; border: 1px solid rgba(49,51,63,.15);
          border-radius: .5rem; background: rgba(250,250,252,.6); }
.tp-meta { color: #5f6368; font-size: .82rem; margin-bottom: .3rem; }
.tp-meta .tp-user { font-weight: 600; color: #31333f; }
.tp-text { font-size: 1rem; line-height: 1.45; overflow-wrap: anywhere; }
.tp-text mark { background: #fde68a; color: inherit; padding: 0 .1rem; border-radius: .15rem; }
.tp-tags { margin-top: .35rem; }
.tp-tag { display: inline-block; font-size: .78rem; color: #1d4ed8; background: #e0e7ff;
          border-radius: .8rem; padding: .05rem .5rem; margin: 0 .3rem .2rem 0; }
</style>
"""


def highlight(fragment: str) -> str:
    """Safe HTML for one highlight fragment: `<mark>` where the service put `<em>`."""
    out: list[str] = []
    open_mark = False
    for part in _EM.split(fragment):
        lowered = part.lower()
        if lowered == "<em>":
            if not open_mark:
                out.append("<mark>")
                open_mark = True
        elif lowered == "</em>":
            if open_mark:
                out.append("</mark>")
                open_mark = False
        elif part:
            out.append(html.escape(html.unescape(part)))
    if open_mark:
        out.append("</mark>")
    return "".join(out)


def utc_time(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def hit_card(hit: Hit) -> str:
    """One search result: author, time, language, the text with matches marked, hashtags."""
    doc = hit.document
    if hit.highlights:
        text = " … ".join(highlight(f) for f in hit.highlights)
    else:
        text = html.escape(doc.text)
    tags = "".join(f'<span class="tp-tag">#{html.escape(tag)}</span>' for tag in doc.hashtags)
    lang = f" · {html.escape(doc.lang)}" if doc.lang else ""
    return (
        f'<div class="tp-hit" data-tweet-id="{doc.id}">'
        f'<div class="tp-meta"><span class="tp-user">user {doc.user_id}</span>'
        f" · {utc_time(doc.created_at)}{lang}</div>"
        f'<div class="tp-text">{text}</div>'
        + (f'<div class="tp-tags">{tags}</div>' if tags else "")
        + "</div>"
    )


def seconds(value: float) -> str:
    """`2 s`, `1 min 5 s`: how long to wait, rounded up to whole seconds."""
    whole = max(1, int(-(-value // 1)))
    minutes, rest = divmod(whole, 60)
    if minutes:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    return f"{rest} s"


def count(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}"


def per_second(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.1f}/s" if value < 100 else f"{value:,.0f}/s"
