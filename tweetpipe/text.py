"""How text becomes words, the one rule the stream stage counts by and the query service
looks counts up by."""

from __future__ import annotations

import re

MAX_WORD_LENGTH = 100
"""Longer runs of word characters are not counted as words (a pasted hash, a wall of one
letter): every store and API holds words up to this length."""
_WORD = re.compile(rf"\b\w{{1,{MAX_WORD_LENGTH}}}\b")
"""A whole run of word characters, at most `MAX_WORD_LENGTH` long: `\b` on both sides means
no part of a longer run matches. The regex picks the words in C; filtering a split in Python
cost a fifth more per tweet in the split stage (its hot loop)."""


def words(text: str, stop_words: frozenset[str] = frozenset()) -> list[str]:
    """Lower-case, split on non-word characters (the classic Kafka Streams word count); runs
    over `MAX_WORD_LENGTH` characters are left out."""
    found: list[str] = _WORD.findall(text.lower())
    return [w for w in found if w not in stop_words] if stop_words else found


_STOP_WORDS_TEXT = """
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own rt s same she should so some such t than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
amp http https co www com
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
"""Common English words (and URL debris), left out of "rising now" by default: frequent
everywhere, so never news."""
