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

The split stage says how far behind its input each batch was (`kafka_streams.splitter`): once
it had nothing left to read and the counter has read everything too, the whole pipeline is
caught up, and one interval without input is quiet enough; the rhythm is only a guess at that.
A round's cost is also known before it starts (its records, at the last round's cost per
record), so a burst's first slow round waits for counting time as every later one does,
instead of going out one interval into the burst.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

PAUSE_INTERVALS = 5
"""A gap between arrivals longer than this many intervals is a pause, not the rhythm."""
GAPS_REMEMBERED = 8
"""The rhythm is the longest of this many recent gaps."""
RECORD_COST_S = 25e-6
"""A published record's cost until a round has been timed: kafka-python's transactional `send`
measured 18-29 us a record (bench/wordcount.py rounds, 2026-12-03 and 2026-12-04)."""


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
        self._record_cost_s = RECORD_COST_S
        self._estimated = False
        """Whether this round's cost has been estimated (once per round)."""

    def input_arrived(self) -> None:
        now = self._clock()
        gap = now - self._last_input
        if self._gap_open and gap <= PAUSE_INTERVALS * self._emit_interval_s:
            self._gaps.append(gap)
        self._last_input, self._gap_open = now, True

    @property
    def quiet_after_s(self) -> float:
        return 2 * max(self._emit_interval_s, max(self._gaps, default=0.0))

    def due(self, *, caught_up: bool = False, pending: Callable[[], int] | None = None) -> bool:
        """Whether a round should start now.

        `caught_up`: the upstream had read all its input and so has the counter. `pending`:
        the records the round would send, asked for only when input is still coming and the
        interval has passed (it may cost a query)."""
        now = self._clock()
        since = now - self._last_publish
        idle = now - self._last_input
        quiet = idle >= self.quiet_after_s or (caught_up and idle >= self._emit_interval_s)
        if quiet:
            return since >= self._emit_interval_s
        if since < self.every_s:
            return False
        if pending is not None and not self._estimated:
            # Once per round: a stream whose pending records grow faster than they could be
            # published must still get a round every so often.
            self._estimated = True
            estimate = pending() * self._record_cost_s * self._counting_per_publish
            self.every_s = max(self.every_s, estimate)
        return since >= self.every_s

    def published(self, started: float, records: int | None = None) -> None:
        """A round that began at `started` (this pacing's clock) and sent `records` (if
        counted) has just ended."""
        self._last_publish = self._clock()
        # No record is read while a round runs: quiet is measured from its end, not across it.
        self._last_input, self._gap_open = max(self._last_input, self._last_publish), False
        took = self._last_publish - started
        self.every_s = max(self._emit_interval_s, took * self._counting_per_publish)
        self._estimated = False
        if records:
            self._record_cost_s = took / records

    def now(self) -> float:
        return self._clock()
