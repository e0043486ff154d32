"""How every page shows a failed call: one clear state per kind of problem, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import streamlit as st

from web_client import session
from web_client.api import (
    SERVICE_NAMES,
    Forbidden,
    Problem,
    RateLimited,
    Refused,
    SignedOut,
    Unavailable,
)
from web_client.render import seconds

LINK_BUTTON_CSS = """
<style>
a.tp-link-button { display: inline-block; padding: .45rem 1.1rem; border-radius: .5rem;
  background: #ff4b4b; color: white !important; text-decoration: none !important;
  font-weight: 500; }
a.tp-link-button:hover { background: #e03e3e; }
</style>
"""

Need = Literal["read tweets", "see word counts"]


def retryable(found: Problem) -> bool:
    """Worth the same request again later (not a missing permission or a bad request)."""
    return isinstance(found, RateLimited | Unavailable)


def denied(found: Problem) -> bool:
    """Every call of the page would fail the same way: show it once, not per section."""
    return isinstance(found, SignedOut | Forbidden)


def problem(found: Problem, need: Need) -> None:
    """Render `found`; a refused token also ends the session (the page then asks to sign in)."""
    service = SERVICE_NAMES.get(found.route, found.route)
    if isinstance(found, SignedOut):
        session.end("Your session has ended. Sign in again to continue.")
        st.rerun()
    elif isinstance(found, Forbidden):
        st.error(
            f"**No permission.** You are signed in as **{session.username()}**, but this "
            f"account has no role that may {need}. Ask an administrator to give it the "
            "`app_user_role` role, or sign in with another account.",
            icon=":material/lock:",
        )
    elif isinstance(found, RateLimited):
        st.warning(
            f"**Too many requests.** The gateway limits how often one user may call "
            f"{service.lower()}. Try again in {seconds(found.retry_after_s)} "
            f"(after {found.retry_at:%H:%M:%S} UTC).",
            icon=":material/hourglass_top:",
        )
    elif isinstance(found, Unavailable):
        wait = f" in {seconds(found.retry_after_s)}" if found.retry_after_s else " shortly"
        st.error(
            f"**{service} is unavailable right now.** Try again{wait}.",
            icon=":material/cloud_off:",
        )
        st.caption(f"Gateway: {found.detail}")
    elif isinstance(found, Refused):
        st.error(
            f"**The request was refused** (HTTP {found.status}): {found.detail}",
            icon=":material/error:",
        )


def refreshing(body: Callable[[], None], every_s: int, key: str) -> None:
    """Run `body` as a fragment that reruns every `every_s` seconds while its toggle is on."""
    auto = st.toggle(f"Auto-refresh every {every_s} s", value=True, key=key)
    st.fragment(body, run_every=every_s if auto else None)()
