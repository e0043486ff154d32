"""The analytics topics' records (`tweetpipe.model.WordCount`), written without a model.

A publish sends one record per changed (word, window), tens of thousands at a time, and all the
records of one window share their bounds, their final flag and their topic: that part of the
JSON is serialised once per window, and each record adds only its word and count. The bytes are
the ones `orjson` writes for the whole record (a test keeps them equal).
"""

from __future__ import annotations

import orjson

from kafka_streams.windows import Windows, as_datetime, is_hopping


class UpdateEncoder:
    """Encodes the updates of one publish (one watermark, which decides the final flags)."""

    def __init__(
        self, windows: Windows, watermark: int, *, tumbling_topic: str, hopping_topic: str
    ) -> None:
        self._windows = windows
        self._watermark = watermark
        self._topics = (tumbling_topic, hopping_topic)
        self._tails: dict[int, tuple[str, bytes]] = {}

    def encode(self, word: str, window: int, count: int) -> tuple[str, bytes]:
        """(topic, value) of the update for `word`'s `count` in `window` (not `ALL_TIME`)."""
        tail = self._tails.get(window)
        if tail is None:
            tail = self._tails[window] = self._tail(window)
        topic, rest = tail
        return topic, b'{"word":%b,"word_count":%d,%b' % (orjson.dumps(word), count, rest)

    def _tail(self, window: int) -> tuple[str, bytes]:
        start, end = self._windows.bounds(window)
        fields = {
            "window_start": as_datetime(start),
            "window_end": as_datetime(end),
            "final": end + self._windows.grace_s <= self._watermark,
        }
        rest = orjson.dumps(fields, option=orjson.OPT_UTC_Z)[1:]  # from after the "{"
        return self._topics[is_hopping(window)], rest
