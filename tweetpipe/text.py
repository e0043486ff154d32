"""How text becomes words, the one rule the stream stage counts by and the query service
looks counts up by."""

from __future__ import annotations

import re

_NON_WORD = re.compile(r"\W+")


def words(text: str, stop_words: frozenset[str] = frozenset()) -> list[str]:
    """Lower-case, split on non-word characters (the classic Kafka Streams word count)."""
    return [w for w in _NON_WORD.split(text.lower()) if w and w not in stop_words]
