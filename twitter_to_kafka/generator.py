"""Mock tweets that look like a Twitter filter stream's output.

Realism where it matters downstream: skewed user activity (Zipf), real-word sentences in several
languages, hashtags and mentions, and only tweets that pass the configured keyword filter, as a
`track` filter stream would deliver. Sentences come from pools built once from Faker, so making a
tweet costs a few random choices, not a Faker call.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from faker import Faker

from tweetpipe.model import CLASSIC_TEXT_LENGTH, Tweet
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
_T = TypeVar("_T")


class KeywordFilter:
    """Filter-stream `track` semantics: a phrase matches when all its words occur (any order,
    case-insensitive, whole words) in the text, hashtags or mentions; any phrase is enough."""

    def __init__(self, phrases: Sequence[str]) -> None:
        self._phrases = [(phrase, frozenset(_WORD.findall(phrase.lower()))) for phrase in phrases]

    def matches(self, text: str, hashtags: Sequence[str], mentions: Sequence[str]) -> list[str]:
        words = set(_WORD.findall(text.lower()))
        words.update(h.lower() for h in hashtags)
        words.update(m.lower() for m in mentions)
        return [phrase for phrase, terms in self._phrases if terms and terms <= words]


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
        self._user_weights = list(
            itertools.accumulate(
                1 / (rank**options.user_skew) for rank in range(1, options.users + 1)
            )
        )
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
        produced = itertools.count()
        limit = self.options.count
        while limit is None or next(produced) < limit:
            yield self.next_tweet()

    def next_tweet(self) -> Tweet:
        """The next tweet that passes the keyword filter (non-matching drafts are discarded)."""
        while True:
            text, hashtags, mentions, lang = self._draft()
            matched = self._filter.matches(text, hashtags, mentions)
            if matched:
                break
        tweet_id, created_at = self._ids.next()
        if self._bursts is not None:
            for burst in self._bursts.active(created_at.timestamp()):
                text, hashtags = _with_term(text, hashtags, burst.term)
        user_id = self._random.choices(self._user_ids, cum_weights=self._user_weights)[0]
        return Tweet(
            id=tweet_id,
            user_id=user_id,
            text=text,
            created_at=created_at,
            lang=lang,
            hashtags=hashtags,
            mentions=mentions,
            keywords=matched,
        )

    def _draft(self) -> tuple[str, list[str], list[str], str]:
        rnd = self._random
        lang = rnd.choices(self._languages, cum_weights=self._language_weights)[0]
        sentences = self._sentences[lang]
        words = list(rnd.choice(sentences))
        if rnd.random() < 0.3:
            words += rnd.choice(sentences)
        hashtags = _distinct(rnd.choices(self._hashtags, k=rnd.choice((0, 0, 1, 1, 2, 3))))
        roll = rnd.random()
        if roll < 0.75:  # the keyword in the sentence
            picked = rnd.choices(self._keyword_words, k=1 + (rnd.random() < 0.15))
            for keyword_words in _distinct(picked):
                at = int(rnd.random() * (len(words) + 1))
                words[at:at] = keyword_words
        elif roll < 0.95:  # only as a hashtag
            hashtags.append("".join(rnd.choice(self._keyword_words)))
        # else: an off-topic draft; the filter drops it, like the real stream would
        mentions = _distinct(rnd.choices(self._handles, k=rnd.choice((0, 0, 0, 1, 1, 2))))
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


def _distinct(items: list[_T]) -> list[_T]:
    return list(dict.fromkeys(items)) if len(items) > 1 else items
