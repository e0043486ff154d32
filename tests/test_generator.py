import re
from collections import Counter

import pytest

from tweetpipe.model import CLASSIC_TEXT_LENGTH, Tweet
from twitter_to_kafka.generator import KeywordFilter, SnowflakeIds, TweetGenerator
from twitter_to_kafka.settings import Burst, GeneratorOptions


@pytest.fixture(scope="module")
def tweets() -> list:
    return list(TweetGenerator(GeneratorOptions(seed=7, count=5000)))


def test_every_tweet_passes_the_keyword_filter(tweets: list) -> None:
    keyword_filter = KeywordFilter(["Java", "Microservices", "Kafka", "Elasticsearch"])
    for tweet in tweets:
        matched = keyword_filter.matches(tweet.text, tweet.hashtags, tweet.mentions)
        assert matched, tweet.text
        assert tweet.keywords == matched


def test_all_configured_keywords_occur(tweets: list) -> None:
    seen = Counter(k for t in tweets for k in t.keywords)
    assert set(seen) == {"Java", "Microservices", "Kafka", "Elasticsearch"}
    assert min(seen.values()) > len(tweets) * 0.15


def test_filter_semantics_match_track() -> None:
    f = KeywordFilter(["Kafka", "event sourcing"])
    assert f.matches("I love KAFKA!", [], []) == ["Kafka"]
    assert f.matches("Kafkaesque bureaucracy", [], []) == []  # whole words only
    assert f.matches("sourcing the event", [], []) == ["event sourcing"]  # all words, any order
    assert f.matches("event driven", [], []) == []
    assert f.matches("nothing here", ["kafka"], []) == ["Kafka"]  # hashtags count
    assert f.matches("nothing here", [], ["Kafka"]) == ["Kafka"]  # and mentions


def test_user_activity_is_skewed(tweets: list) -> None:
    per_user = Counter(t.user_id for t in tweets).most_common()
    top_user_share = per_user[0][1] / len(tweets)
    assert top_user_share > 0.05  # a heavy tweeter
    assert sum(1 for _, n in per_user if n == 1) > 100  # and a long tail


def test_tweets_look_real(tweets: list) -> None:
    assert all(len(t.text) <= CLASSIC_TEXT_LENGTH for t in tweets)
    assert len({t.text for t in tweets}) > len(tweets) * 0.9
    assert {t.lang for t in tweets} >= {"en", "es", "fr", "de", "ja"}
    assert Counter(t.lang for t in tweets).most_common(1)[0][0] == "en"
    assert sum(1 for t in tweets if t.hashtags) > len(tweets) * 0.3
    assert sum(1 for t in tweets if t.mentions) > len(tweets) * 0.2
    for t in tweets[:500]:
        for tag in t.hashtags:
            assert f"#{tag}" in t.text
        for mention in t.mentions:
            assert f"@{mention}" in t.text
    assert all(re.search(r"\w", t.text) for t in tweets)
    english = [t.text for t in tweets if t.lang == "en"]
    words = [w for text in english for w in text.split() if w[0] not in "@#"]
    assert sum(len(w) for w in words) / len(words) > 3  # real words, not letters
    assert not any(".." in text for text in english)


def test_same_seed_same_stream() -> None:
    first = [
        (t.user_id, t.text, t.lang) for t in TweetGenerator(GeneratorOptions(seed=3, count=200))
    ]
    again = [
        (t.user_id, t.text, t.lang) for t in TweetGenerator(GeneratorOptions(seed=3, count=200))
    ]
    other = [
        (t.user_id, t.text, t.lang) for t in TweetGenerator(GeneratorOptions(seed=4, count=200))
    ]
    assert first == again
    assert first != other


def test_ids_are_unique_and_time_ordered(tweets: list) -> None:
    ids = [t.id for t in tweets]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_snowflake_ids_survive_bursts_within_one_millisecond() -> None:
    ids = SnowflakeIds(worker_id=5, clock=lambda: 1_700_000_000.0)
    minted = [ids.next()[0] for _ in range(10_000)]
    assert len(set(minted)) == len(minted)
    assert minted == sorted(minted)


def test_custom_keywords_are_honoured() -> None:
    options = GeneratorOptions(seed=1, count=300, keywords=["Rust", "event sourcing"])
    tweets = list(TweetGenerator(options))
    assert {k for t in tweets for k in t.keywords} == {"Rust", "event sourcing"}


class _SteppingClock:
    """Reads `step_s` apart: the generator's tweets are that far apart in time."""

    def __init__(self, step_s: float) -> None:
        self.now = 1_790_000_000.0
        self.step_s = step_s

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


def test_a_burst_spikes_its_term_only_while_it_lasts_and_changes_nothing_else() -> None:
    """One tweet a second for 20 minutes; #LaunchDay in ~40% of them from minute 5 for 3
    minutes, again every 10 minutes. Without the burst the same seed gives the same tweets
    minus the term."""
    burst = Burst(term="#LaunchDay", after_s=300, duration_s=180, share=0.4, every_s=600)
    with_burst = list(
        TweetGenerator(GeneratorOptions(seed=3, count=1200, bursts=[burst]), _SteppingClock(1.0))
    )
    plain = list(TweetGenerator(GeneratorOptions(seed=3, count=1200), _SteppingClock(1.0)))
    started = with_burst[0].created_at.timestamp() - 1.0

    def in_burst(t: Tweet) -> bool:
        return (t.created_at.timestamp() - started - 300) % 600 < 180 and (
            t.created_at.timestamp() - started >= 300
        )

    carrying = [t for t in with_burst if "#LaunchDay" in t.text]
    assert all(in_burst(t) for t in carrying)
    assert all("LaunchDay" in t.hashtags for t in carrying)
    during = [t for t in with_burst if in_burst(t)]
    assert 0.25 < len(carrying) / len(during) < 0.55
    assert all(len(t.text) <= CLASSIC_TEXT_LENGTH for t in with_burst)
    for burst_tweet, tweet in zip(with_burst, plain, strict=True):
        assert burst_tweet.text.removesuffix(" #LaunchDay") == tweet.text
        assert burst_tweet.user_id == tweet.user_id


def test_a_phrase_burst_leads_the_text() -> None:
    burst = Burst(term="solar eclipse", after_s=0, duration_s=60, share=1.0)
    tweets = list(TweetGenerator(GeneratorOptions(seed=4, count=30, bursts=[burst])))
    assert all(t.text.startswith("solar eclipse ") or len(t.text) > 260 for t in tweets)
    assert sum(t.text.startswith("solar eclipse ") for t in tweets) > 20


def _fields_of(tweet: Tweet) -> tuple:
    return (tweet.id, tweet.key, tweet.to_json())


@pytest.mark.parametrize(
    "options",
    [
        GeneratorOptions(seed=3, count=3000, worker_id=1),
        GeneratorOptions(seed=9, count=1000, worker_id=2, keywords=["Rust", "event sourcing"]),
        GeneratorOptions(
            seed=5,
            count=1000,
            worker_id=3,
            users=7,
            bursts=[Burst(term="#LaunchDay", after_s=0, duration_s=5, share=0.5, every_s=10)],
        ),
        GeneratorOptions(
            seed=6,
            count=300,
            worker_id=4,
            bursts=[Burst(term="solar eclipse", after_s=0, duration_s=60)],
        ),
    ],
    ids=["defaults", "custom keywords", "hashtag burst", "phrase burst"],
)
def test_records_are_the_tweets_wire_bytes_and_meet_the_contract(
    options: GeneratorOptions,
) -> None:
    """The service sends `records()` without building a `Tweet`: each must be exactly what the
    model would have sent, and what a reader admits."""
    as_tweets = [_fields_of(t) for t in TweetGenerator(options, _SteppingClock(0.013))]
    records = list(TweetGenerator(options, _SteppingClock(0.013)).records())
    assert [(r.id, r.key, r.value) for r in records] == as_tweets
    assert len(records) == options.count
    for record in records:
        tweet = Tweet.from_json(record.value)
        assert (tweet.id, tweet.key) == (record.id, record.key)
        assert len(tweet.text) <= CLASSIC_TEXT_LENGTH
        assert tweet.to_json() == record.value
    if options.bursts:
        assert any(options.bursts[0].term in Tweet.from_json(r.value).text for r in records)


def _track_rule(phrases: list[str], text: str, hashtags: list[str], mentions: list[str]) -> list:
    """The filter's rule written out plainly: the text's words, hashtags and mentions."""
    words = set(re.findall(r"\w+", text.lower()))
    words |= {h.lower() for h in hashtags} | {m.lower() for m in mentions}
    return [p for p in phrases if (terms := set(re.findall(r"\w+", p.lower()))) and terms <= words]


ODD_TEXTS = [
    "kafka_streams are not kafka",  # _ is a word character
    "KAFKA's java-based, microservices!",
    "javascript is not java; Elasticsearch2 is not elasticsearch",
    "İstanbul kafka",  # lower() lengthens İ
    "\u0661\u0662kafka kafka\u0663 \u0663kafka",  # Arabic digits are word characters
    "kafka\u200bjava",  # a zero-width space is not
    "event-sourcing sourcing.event",
    "",
]


@pytest.mark.parametrize("many", [False, True], ids=["few terms", "many terms"])
def test_keyword_filter_gives_the_plain_rules_verdict(many: bool) -> None:
    phrases = ["Java", "Microservices", "Kafka", "Elasticsearch", "event sourcing", "C++"]
    if many:  # past SEARCHED_TERMS the filter splits the text instead
        phrases += [f"term{n}" for n in range(KeywordFilter.SEARCHED_TERMS)]
    keyword_filter = KeywordFilter(phrases)
    generator = TweetGenerator(GeneratorOptions(seed=8, keywords=phrases[:5]))
    drafts = [generator._draft() for _ in range(3000)]
    drafts += [(text, [], [], "en") for text in ODD_TEXTS]
    drafts += [("plain words", ["EventSourcing", "Kafka"], ["JAVA"], "en")]
    matched = 0
    for text, hashtags, mentions, _ in drafts:
        expected = _track_rule(phrases, text, hashtags, mentions)
        assert keyword_filter.matches(text, hashtags, mentions) == expected, text
        matched += bool(expected)
    assert 2000 < matched < len(drafts)
