"""How text becomes words, the one rule the stream stage counts by and the query service
looks counts up by."""

from __future__ import annotations

import re

_NON_WORD = re.compile(r"\W+")
MAX_WORD_LENGTH = 100
"""Longer runs of word characters are not counted as words (a pasted hash, a wall of one
letter): every store and API holds words up to this length."""


def words(text: str, stop_words: frozenset[str] = frozenset()) -> list[str]:
    """Lower-case, split on non-word characters (the classic Kafka Streams word count); runs
    over `MAX_WORD_LENGTH` characters are left out."""
    return [
        w
        for w in _NON_WORD.split(text.lower())
        if w and len(w) <= MAX_WORD_LENGTH and w not in stop_words
    ]
