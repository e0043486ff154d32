"""Mock tweets that look like a Twitter filter stream's output.

Realism where it matters downstream: skewed user activity (Zipf), real-word sentences in several
languages, hashtags and mentions, and only tweets that pass the configured keyword filter, as a
`track` filter stream would deliver. Sentences come from pools built once from Faker, so making a
tweet costs a few random choices, not a Faker call.

The service sends `TweetRecord`s (`TweetGenerator.records`): the wire bytes of a tweet that is
valid by construction, never built as a pydantic `Tweet` (a quarter of the generator's CPU per
tweet). Iterating the generator gives the same tweets as `Tweet`s, for tests and benches.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import threading
import time
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

import orjson
from faker import Faker

from tweetpipe.model import CLASSIC_TEXT_LENGTH, SCHEMA_VERSION, Tweet
from twitter_to_kafka.settings import Burst, GeneratorOptions

# Share of tweets per language, roughly as on the public stream; locales with Faker word lists.
LANGUAGES: dict[str, tuple[str, float]] = {
    "en": ("en_US", 0.58),
    "es": ("es_ES", 0.12),
    "fr": ("fr_FR", 0.07),
    "de": ("de_DE", 0.06),
    "ja": ("ja_JP", 0.06),
    "it": ("it_IT", 0.04),
    "nl": ("nl_NL", 0.03),
    "pl": ("pl_PL", 0.02),
    "ru": ("ru_RU", 0.02),
}
TOPIC_HASHTAGS = [
    "DevOps", "Cloud", "Python", "100DaysOfCode", "AI", "Docker", "Kubernetes", "OpenSource",
    "DataEngineering", "Streaming", "BigData", "Backend", "SpringBoot", "Programming", "Tech",
]  # fmt: skip
TWEPOCH_MS = 1_288_834_974_657  # Twitter's snowflake epoch, so ids look like tweet ids
_WORD = re.compile(r"\w+")
HASHTAG_COUNTS = (0, 0, 1, 1, 2, 3)  # hashtags per draft, equally likely
MENTION_COUNTS = (0, 0, 0, 1, 1, 2)
_T = TypeVar("_T")


class TweetRecord(NamedTuple):
    """A generated tweet as it goes on `twitter-topic`."""

    id: int
    key: bytes
    """The user id, as `Tweet.key`."""
    value: bytes
    """`Tweet.to_json()`'s bytes."""


class KeywordFilter:
    """Filter-stream `track` semantics: a phrase matches when all its words occur (any order,
    case-insensitive, whole words) in the text, hashtags or mentions; any phrase is enough.

    It runs on every draft, so with a few terms each is looked for as a substring and only then
    checked for word boundaries (the same verdict as splitting the text into words, at half the
    cost); with many terms, splitting once is cheaper."""

    SEARCHED_TERMS = 16

    def __init__(self, phrases: Sequence[str]) -> None:
        self._phrases = [(phrase, frozenset(_WORD.findall(phrase.lower()))) for phrase in phrases]
        terms = sorted(set().union(*(terms for _, terms in self._phrases)))
        self._whole_words = {term: re.compile(rf"(?<!\w){re.escape(term)}(?!\w)") for term in terms}
        self._split = len(terms) > self.SEARCHED_TERMS

    def matches(self, text: str, hashtags: Sequence[str], mentions: Sequence[str]) -> list[str]:
        words = self._words(text.lower())
        words.update(h.lower() for h in hashtags)
        words.update(m.lower() for m in mentions)
        return [phrase for phrase, terms in self._phrases if terms and terms <= words]

    def _words(self, lowered: str) -> set[str]:
        """The text's words, or, with few terms, those of its words that are terms."""
        if self._split:
            return set(_WORD.findall(lowered))
        return {
            term
            for term, whole_word in self._whole_words.items()
            if term in lowered and whole_word.search(lowered)
        }


class SnowflakeIds:
    """Time-ordered 63-bit ids: milliseconds since the epoch, a worker id, a sequence."""

    def __init__(self, worker_id: int, clock: Callable[[], float] = time.time) -> None:
        self._worker = worker_id & 0x3FF
        self._clock = clock
        self._last_ms = -1
        self._sequence = 0
        self._lock = threading.Lock()

    def next(self) -> tuple[int, datetime]:
        with self._lock:
            now_ms = int(self._clock() * 1000)
            if now_ms <= self._last_ms:
                now_ms = self._last_ms
                self._sequence = (self._sequence + 1) & 0xFFF
                if self._sequence == 0:  # 4096 ids in one millisecond: borrow the next one
                    now_ms += 1
            else:
                self._sequence = 0
            self._last_ms = now_ms
            tweet_id = ((now_ms - TWEPOCH_MS) << 22) | (self._worker << 12) | self._sequence
        return tweet_id, datetime.fromtimestamp(now_ms / 1000, UTC)


class Bursts:
    """Which burst terms a tweet made at a given moment carries. Its own random stream, so
    turning bursts on leaves every other choice of a seeded run as it was."""

    def __init__(self, bursts: Sequence[Burst], started: float, seed: int | None) -> None:
        self._bursts = list(bursts)
        self._started = started
        self._random = random.Random(None if seed is None else seed + 1)

    def active(self, moment: float) -> list[Burst]:
        since = moment - self._started
        return [b for b in self._bursts if _in_burst(b, since) and self._random.random() < b.share]


def _in_burst(burst: Burst, since: float) -> bool:
    into = since - burst.after_s
    if into < 0:
        return False
    if burst.every_s is not None:
        into %= burst.every_s
    return into < burst.duration_s


def _with_term(text: str, hashtags: list[str], term: str) -> tuple[str, list[str]]:
    """The tweet with a burst term added, if it fits the classic length."""
    if len(text) + 1 + len(term) > CLASSIC_TEXT_LENGTH or term.lower() in text.lower():
        return text, hashtags
    if term.startswith("#"):
        return f"{text} {term}", [*hashtags, term[1:]]
    return f"{term} {text}", hashtags


class TweetGenerator:
    def __init__(self, options: GeneratorOptions, clock: Callable[[], float] = time.time) -> None:
        self.options = options
        self._random = random.Random(options.seed)
        self._bursts = Bursts(options.bursts, clock(), options.seed) if options.bursts else None
        worker = options.worker_id
        if worker is None:
            worker = int.from_bytes(os.urandom(2), "big") & 0x3FF
        self._ids = SnowflakeIds(worker, clock)
        self._filter = KeywordFilter(options.keywords)
        self._keyword_words = [tuple(_WORD.findall(k)) for k in options.keywords]
        self._languages = list(LANGUAGES)
        self._language_weights = list(itertools.accumulate(w for _, w in LANGUAGES.values()))
        self._language_total = self._language_weights[-1] + 0.0
        self._user_weights = list(
            itertools.accumulate(
                1 / (rank**options.user_skew) for rank in range(1, options.users + 1)
            )
        )
        self._user_total = self._user_weights[-1] + 0.0
        self._user_ids = self._random.sample(
            range(10_000_000, 10_000_000 + options.users * 97), options.users
        )
        faker = Faker(locale=[locale for locale, _ in LANGUAGES.values()])
        faker.seed_instance(options.seed)
        self._handles = [faker["en_US"].user_name() for _ in range(min(options.users, 2000))]
        per_language = max(10, options.sentence_pool // len(LANGUAGES))
        self._sentences = {  # pre-split: a draft joins word lists, it never re-tokenises
            lang: [
                faker[locale].sentence(nb_words=self._random.randint(6, 16)).rstrip(".").split()
                for _ in range(per_language)
            ]
            for lang, (locale, _) in LANGUAGES.items()
        }
        self._hashtags = TOPIC_HASHTAGS + [
            w.capitalize() for w in faker["en_US"].words(40, unique=True)
        ]

    def __iter__(self) -> Iterator[Tweet]:
        """The tweets as models (tests, benches); the service sends `records()`."""
        for _ in self._turns():
            yield self.next_tweet()

    def records(self) -> Iterator[TweetRecord]:
        """The same tweets as `iter(self)` would give, as the bytes that go on the topic."""
        for _ in self._turns():
            yield self.next_record()

    def _turns(self) -> Iterator[int]:
        limit = self.options.count
        return itertools.count() if limit is None else iter(range(limit))

    def next_tweet(self) -> Tweet:
        return Tweet(**self._next_fields())

    def next_record(self) -> TweetRecord:
        fields = self._next_fields()
        value = orjson.dumps(fields, option=orjson.OPT_UTC_Z)
        return TweetRecord(fields["id"], str(fields["user_id"]).encode(), value)

    def _next_fields(self) -> dict[str, Any]:
        """The next tweet that passes the keyword filter (non-matching drafts are discarded),
        as `Tweet`'s fields in its order, so that the serialised form is `Tweet.to_json()`'s."""
        while True:
            text, hashtags, mentions, lang = self._draft()
            matched = self._filter.matches(text, hashtags, mentions)
            if matched:
                break
        tweet_id, created_at = self._ids.next()
        if self._bursts is not None:
            for burst in self._bursts.active(created_at.timestamp()):
                text, hashtags = _with_term(text, hashtags, burst.term)
        user_ids, cum_weights = self._user_ids, self._user_weights
        at = self._random.random() * self._user_total
        return {
            "schema_version": SCHEMA_VERSION,
            "id": tweet_id,
            "user_id": user_ids[bisect(cum_weights, at, 0, len(user_ids) - 1)],
            "text": text,
            "created_at": created_at,
            "lang": lang,
            "hashtags": hashtags,
            "mentions": mentions,
            "keywords": matched,
        }

    def _draft(self) -> tuple[str, list[str], list[str], str]:
        """Picks as `random.choices` makes them (same draws, so a seed gives the same tweets),
        written out: the calls were a third of a draft's cost."""
        rnd = self._random
        pick = rnd.random
        languages = self._languages
        at = pick() * self._language_total
        lang = languages[bisect(self._language_weights, at, 0, len(languages) - 1)]
        sentences = self._sentences[lang]
        words = list(rnd.choice(sentences))
        if pick() < 0.3:
            words += rnd.choice(sentences)
        tags = self._hashtags
        hashtags = _distinct([tags[int(pick() * len(tags))] for _ in _times(rnd, HASHTAG_COUNTS)])
        roll = pick()
        if roll < 0.75:  # the keyword in the sentence
            keyword_words = self._keyword_words
            picks = 1 + (pick() < 0.15)
            picked = [keyword_words[int(pick() * len(keyword_words))] for _ in range(picks)]
            for words_of_keyword in _distinct(picked):
                at_word = int(pick() * (len(words) + 1))
                words[at_word:at_word] = words_of_keyword
        elif roll < 0.95:  # only as a hashtag
            hashtags.append("".join(rnd.choice(self._keyword_words)))
        # else: an off-topic draft; the filter drops it, like the real stream would
        handles = self._handles
        mentions = _distinct(
            [handles[int(pick() * len(handles))] for _ in _times(rnd, MENTION_COUNTS)]
        )
        sentence = " ".join(words)
        if sentence[-1] not in ".!?。":
            sentence += "."
        parts = [f"@{m}" for m in mentions] + [sentence] + [f"#{h}" for h in hashtags]
        text = " ".join(parts)
        if len(text) > CLASSIC_TEXT_LENGTH:
            text = text[: CLASSIC_TEXT_LENGTH - 1].rsplit(" ", 1)[0] + "…"
            hashtags = [h for h in hashtags if f"#{h}" in text]
            mentions = [m for m in mentions if f"@{m}" in text]
        return text, hashtags, mentions, lang


def _times(rnd: random.Random, counts: tuple[int, ...]) -> range:
    return range(rnd.choice(counts))


def _distinct(items: list[_T]) -> list[_T]:
    return list(dict.fromkeys(items)) if len(items) > 1 else items
