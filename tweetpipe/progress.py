"""Progress lines on long runs: one every interval while a running total grows."""

from __future__ import annotations

import time
from collections.abc import Callable


class Progress:
    def __init__(self, interval_s: float, report: Callable[[int, float], None]) -> None:
        """`report(total, rate_per_s)` is called at most once per `interval_s`."""
        self._interval_s = interval_s
        self._report = report
        self._last_at = time.monotonic()
        self._last_total = 0

    def update(self, total: int) -> None:
        now = time.monotonic()
        elapsed = now - self._last_at
        if elapsed >= self._interval_s and total > self._last_total:
            self._report(total, (total - self._last_total) / elapsed)
            self._last_at, self._last_total = now, total
