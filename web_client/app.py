"""The Streamlit script (`python -m web_client` serves it): navigation, sign-in, pages.

- `session.py`: the signed-in user (OpenID login via `oidc.py`, tokens, sign-out);
- `api.py`: calls through the gateway and their outcomes; `ui.py` renders the failed ones;
- `views/`: the Search, Trends and Pipeline pages; `metrics.py` feeds the Pipeline page.
"""

from __future__ import annotations

import streamlit as st

from web_client import session
from web_client.ui import LINK_BUTTON_CSS
from web_client.views import pipeline, search, trends

PAGES = {
    "search": (search.render, "Search", ":material/search:"),
    "trends": (trends.render, "Trends", ":material/trending_up:"),
    "pipeline": (pipeline.render, "Pipeline", ":material/monitoring:"),
}


def main(default: str = "search") -> None:
    """`default` is the page at `/` (tests open other pages that way)."""
    st.set_page_config(page_title="tweetpipe", page_icon=":material/forum:", layout="wide")
    st.html(LINK_BUTTON_CSS)
    session.handle_return()
    if session.redirect_if_signing_out():
        return
    pages = [
        st.Page(render, title=title, icon=icon, url_path=name, default=name == default)
        for name, (render, title, icon) in PAGES.items()
    ]
    page = st.navigation(pages)
    session.set_page_path("" if page.url_path == "" else page.url_path)
    session.account_box()
    page.run()


if __name__ == "__main__":
    main()
