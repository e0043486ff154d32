"""The analytics records the counter writes: the `WordCount` contract, byte for byte what
orjson writes for the whole record, with each window's bounds, final flag and topic."""

from __future__ import annotations

import orjson

from kafka_streams.updates import UpdateEncoder
from kafka_streams.windows import Windows, as_datetime, hop_key
from tweetpipe.model import WordCount

WINDOWS = Windows(tumbling_s=60, hop_s=300, advance_s=60, grace_s=30)
START = 1_796_187_960


def whole_record(word: str, window: int, count: int, watermark: int) -> bytes:
    start, end = WINDOWS.bounds(window)
    fields = {
        "word": word,
        "word_count": count,
        "window_start": as_datetime(start),
        "window_end": as_datetime(end),
        "final": end + WINDOWS.grace_s <= watermark,
    }
    return orjson.dumps(fields, option=orjson.OPT_UTC_Z)


def test_updates_are_the_contract_byte_for_byte_with_each_windows_topic_and_final_flag() -> None:
    watermark = START + 60 + 30  # the first tumbling window has just become final
    encoder = UpdateEncoder(WINDOWS, watermark, tumbling_topic="tumbling", hopping_topic="hop")
    cases = [
        ("kafka", START, 3, "tumbling", True),
        ('say "hi"\\', START, 7, "tumbling", True),  # quotes and a backslash, escaped
        ("café", START + 60, 1, "tumbling", False),
        ("データ", hop_key(START, 300), 12, "hop", False),
        ("kafka", START, 4, "tumbling", True),  # a window seen before: its cached part
    ]
    for word, window, count, topic, final in cases:
        got_topic, value = encoder.encode(word, window, count)
        assert got_topic == topic
        assert value == whole_record(word, window, count, watermark)
        update = WordCount.from_json(value)
        start, end = WINDOWS.bounds(window)
        assert (update.word, update.word_count, update.final) == (word, count, final)
        assert (update.window_start, update.window_end) == (as_datetime(start), as_datetime(end))
