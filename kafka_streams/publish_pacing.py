"""When the counter publishes: often while publishing is cheap, seldom while it is not.

A publish round costs a Kafka record per changed (word, window), so its cost grows with the
distinct words since the last round, not with the tweets: under a heavy stream each round
costs about the same, and publishing every `emit_interval_s` would take most of the counter's
time. So while input keeps arriving, the next round waits until counting has had
`(1 - share) / share` times the last round's duration (publishing takes at most `share` of
the time). Once the input is quiet, a round is due every `emit_interval_s` again, so counts
go out soon after the input stops.

Quiet is longer than the upstream's rhythm: the split stage commits in bursts (a transaction
per batch, about a second apart under load), and taking every gap between two bursts for
"caught up" let publishing take two thirds of the counter's time (bench/wordcount.py). The
input is quiet once nothing has arrived for twice `emit_interval_s`, or twice the longest
recent gap between arrivals if that is longer; a gap over `PAUSE_INTERVALS` intervals is a
pause in the input, not its rhythm, and is not counted. Only slow rounds wait for quiet (a
cheap one is due every interval anyway), so this delays the last counts of a heavy burst by
up to two of its gaps (2-3 s in bench/wordcount.py), never those of a light stream.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

PAUSE_INTERVALS = 5
"""A gap between arrivals longer than this many intervals is a pause, not the rhythm."""
GAPS_REMEMBERED = 8
"""The rhythm is the longest of this many recent gaps."""


class PublishPacing:
    def __init__(
        self,
        *,
        emit_interval_s: float,
        publish_share: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit_interval_s = emit_interval_s
        self._counting_per_publish = (1 - publish_share) / publish_share
        self._clock = clock
        self._last_publish = self._last_input = clock()
        self.every_s = emit_interval_s
        """The interval while input keeps arriving, from the last round's duration."""
        self._gaps: deque[float] = deque(maxlen=GAPS_REMEMBERED)
        self._gap_open = False
        """Whether the time since the last arrival is a gap between arrivals (not a round's)."""

    def input_arrived(self) -> None:
        now = self._clock()
        gap = now - self._last_input
        if self._gap_open and gap <= PAUSE_INTERVALS * self._emit_interval_s:
            self._gaps.append(gap)
        self._last_input, self._gap_open = now, True

    @property
    def quiet_after_s(self) -> float:
        return 2 * max(self._emit_interval_s, max(self._gaps, default=0.0))

    def due(self) -> bool:
        now = self._clock()
        since = now - self._last_publish
        quiet = now - self._last_input >= self.quiet_after_s
        return since >= self.every_s or (quiet and since >= self._emit_interval_s)

    def published(self, started: float) -> None:
        """A round that began at `started` (this pacing's clock) has just ended."""
        self._last_publish = self._clock()
        # No record is read while a round runs: quiet is measured from its end, not across it.
        self._last_input, self._gap_open = max(self._last_input, self._last_publish), False
        took = self._last_publish - started
        self.every_s = max(self._emit_interval_s, took * self._counting_per_publish)

    def now(self) -> float:
        return self._clock()
