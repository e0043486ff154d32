from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import ValidationError

from tweetpipe.model import Tweet
from tweetpipe.search import document


def make(**overrides: object) -> Tweet:
    fields: dict[str, object] = {
        "id": 1,
        "user_id": 42,
        "text": "Kafka streams are great #Kafka",
        "created_at": datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        "lang": "en",
        "hashtags": ["Kafka"],
        "keywords": ["Kafka"],
    }
    fields.update(overrides)
    return Tweet.model_validate(fields)


def test_json_round_trip_keeps_every_field() -> None:
    tweet = make()
    assert Tweet.from_json(tweet.to_json()) == tweet


def test_json_has_the_contract_fields_and_utc_timestamp() -> None:
    body = orjson.loads(make().to_json())
    assert set(body) == {
        "schema_version", "id", "user_id", "text", "created_at", "lang",
        "hashtags", "mentions", "keywords",
    }  # fmt: skip
    assert body["created_at"] == "2026-11-22T10:00:00Z"
    assert body["schema_version"] == 1


def test_timestamps_are_normalised_to_utc() -> None:
    local = datetime(2026, 11, 22, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert make(created_at=local).created_at == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_key_is_the_user_id() -> None:
    assert make(user_id=987).key == b"987"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("text", ""),
        ("created_at", datetime(2026, 1, 1)),  # naive: ambiguous
        ("lang", "english"),
        ("id", -5),
        ("schema_version", 2),
    ],
)
def test_invalid_tweets_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        make(**{field: value})


def test_unknown_fields_are_kept_for_forwarding_but_not_in_the_document() -> None:
    body = {**orjson.loads(make().to_json()), "retweet_count": 3, "source": "web"}
    tweet = Tweet.from_json(orjson.dumps(body))
    assert tweet.unknown_fields == {"retweet_count": 3, "source": "web"}
    assert orjson.loads(tweet.to_json()) == body
    assert document(tweet) == {
        **tweet.model_dump(exclude={"retweet_count", "source"}),
        "created_at": tweet.created_at.isoformat().replace("+00:00", "Z"),
    }
    assert list(document(tweet)) == list(Tweet.model_fields)


def test_the_text_limit_is_the_readers() -> None:
    """No limit unless the reader gives one (the topic's consumers give their setting)."""
    long = {**orjson.loads(make().to_json()), "text": "ü" * 25_000}
    assert len(Tweet.model_validate(long).text) == 25_000
    assert Tweet.model_validate(long, context={"max_text_length": 25_000}).text == long["text"]
    with pytest.raises(ValidationError, match="at most 24999 characters"):
        Tweet.model_validate(long, context={"max_text_length": 24_999})


def test_malformed_json_raises_a_decode_error() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        Tweet.from_json(b"{not json")


def test_words_leaves_out_runs_longer_than_a_word() -> None:
    from tweetpipe.text import MAX_WORD_LENGTH, words

    text = f"Kafka {'z' * (MAX_WORD_LENGTH + 1)} {'y' * MAX_WORD_LENGTH} streams"
    assert words(text) == ["kafka", "y" * MAX_WORD_LENGTH, "streams"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"retweet_count": 3, "source": "web", "entities": {"urls": []}},
        {"created_at": "2026-11-22T12:00:00.123456+02:00", "mentions": ["kafka_fan"]},
    ],
)
def test_json_is_byte_for_byte_what_the_model_dumps(body: dict[str, object]) -> None:
    """`to_json` skips `model_dump` on the generator's hot path: the bytes must not change."""
    tweet = Tweet.model_validate({**orjson.loads(make().to_json()), **body})
    assert tweet.to_json() == orjson.dumps(tweet.model_dump(), option=orjson.OPT_UTC_Z)
