"""A moment without an offset means UTC, the same way at every API."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta, timezone

from tweetpipe.settings import REPO_ROOT
from tweetpipe.utc import as_utc

API_MODULES = ["query_service/documents.py", "analytics_service/api.py", "kafka_streams/api.py"]


def test_a_naive_moment_is_taken_as_utc() -> None:
    assert as_utc(datetime(2026, 12, 1, 12, 30)) == datetime(2026, 12, 1, 12, 30, tzinfo=UTC)


def test_a_moment_with_an_offset_is_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    moment = as_utc(datetime(2026, 12, 1, 13, 30, tzinfo=paris))
    assert moment == datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)


def test_every_api_applies_the_one_rule() -> None:
    """No API decides for itself what a naive date-time means (three once disagreed)."""
    for module in API_MODULES:
        tree = ast.parse((REPO_ROOT / module).read_text())
        own = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in {"tzinfo", "astimezone"}
        ]
        assert not own, f"{module} handles offsets itself at lines {own}; use tweetpipe.utc"
        assert "as_utc" in {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "tweetpipe.utc"
            for alias in node.names
        }, f"{module} does not use tweetpipe.utc.as_utc"
