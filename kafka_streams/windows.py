"""Which windows a moment falls in, how a window is keyed in the stores, and when it is final.

Every count lives under one integer key per (word, window), in the stores, the repartition
deltas and the changelog:
- `ALL_TIME` (-1): the all-time total;
- a tumbling window: its start in epoch seconds (as before hopping windows existed, so stores
  and changelogs written by older versions keep their meaning);
- a hopping window: `size << HOP_SHIFT | start`, so the key says its own size and a change of
  the hopping settings never mixes windows of two sizes.

Event time with grace (as Kafka Streams' `grace`): a window is final once stream time (the
latest tweet time seen) has reached its end plus the grace period; a tweet arriving after that
is left out of that window but still counts in the all-time total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

ALL_TIME = -1
"""The window key under which all-time totals are kept."""
HOP_SHIFT = 40
"""Epoch seconds stay below 2**40 for the next 30,000 years; the size sits above them."""
MAX_HOP_SECONDS = 2**22
_START_MASK = (1 << HOP_SHIFT) - 1


def as_datetime(epoch_seconds: int) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)


def hop_key(start: int, size: int) -> int:
    return (size << HOP_SHIFT) | start


def is_hopping(key: int) -> bool:
    return key > _START_MASK


@dataclass(frozen=True)
class Windows:
    """The window rules of one deployment: tumbling size, hopping size and advance, grace."""

    tumbling_s: int
    hop_s: int
    advance_s: int
    grace_s: int

    def keys(self, moment: int, stream_time: int) -> tuple[list[int], bool]:
        """The keys of the windows holding `moment` (epoch seconds) that are still open at
        `stream_time`, and whether any window holding it was already final (a late tweet)."""
        late = False
        keys: list[int] = []
        start = moment - moment % self.tumbling_s
        if start + self.tumbling_s + self.grace_s > stream_time:
            keys.append(start)
        else:
            late = True
        hop = moment - moment % self.advance_s
        while hop > moment - self.hop_s:
            if hop + self.hop_s + self.grace_s > stream_time:
                keys.append(hop_key(hop, self.hop_s))
            else:
                late = True
            hop -= self.advance_s
        return keys, late

    def bounds(self, key: int) -> tuple[int, int]:
        """(start, end) in epoch seconds of a window key (not `ALL_TIME`)."""
        if is_hopping(key):
            start = key & _START_MASK
            return start, start + (key >> HOP_SHIFT)
        return key, key + self.tumbling_s

    def is_final(self, key: int, watermark: int) -> bool:
        return self.bounds(key)[1] + self.grace_s <= watermark

    def final_key_ranges(self, after: int, upto: int) -> list[tuple[int, int]]:
        """Key ranges [low, high] of the windows that became final as the watermark moved
        from `after` to `upto`: tumbling ones, then the current hopping size's."""
        ranges = []
        for size, key_of in ((self.tumbling_s, lambda s: s), (self.hop_s, self._hop)):
            low_start = after - self.grace_s - size + 1
            high_start = upto - self.grace_s - size
            if high_start >= max(low_start, 0):
                ranges.append((key_of(max(low_start, 0)), key_of(high_start)))
        return ranges

    def _hop(self, start: int) -> int:
        return hop_key(start, self.hop_s)
