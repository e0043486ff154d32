"""Per-route circuit breakers: pybreaker's state machine, tripped by failure *rate*.

pybreaker opens after N consecutive failures; the classic gateway setting is a rate (50% of
the last 10 calls). A listener keeps that sliding window and opens the breaker itself, so
pybreaker still owns every transition: open → half-open after `open_s` → closed after
`half_open_calls` successful trial calls, or open again on a failed one.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import pybreaker

from gateway.metrics import BREAKER_STATE
from gateway.settings import BreakerSettings

STATE_VALUES = {pybreaker.STATE_CLOSED: 0, pybreaker.STATE_HALF_OPEN: 1, pybreaker.STATE_OPEN: 2}


class UpstreamFailed(Exception):
    """A call the breaker counts as failed: no answer, a timeout, or a 5xx."""


BreakerOpen = pybreaker.CircuitBreakerError


class _FailureRate(pybreaker.CircuitBreakerListener):
    def __init__(self, route: str, settings: BreakerSettings) -> None:
        self._route = route
        self._threshold = settings.failure_rate_percent / 100
        self._window: deque[bool] = deque(maxlen=settings.window_calls)

    def success(self, cb: pybreaker.CircuitBreaker) -> None:
        self._window.append(False)

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        self._window.append(True)
        full = len(self._window) == self._window.maxlen
        tripped = full and sum(self._window) / len(self._window) >= self._threshold
        if tripped and cb.current_state == pybreaker.STATE_CLOSED:
            cb.open()  # pybreaker notifies `state_change`

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        if new_state.name != pybreaker.STATE_HALF_OPEN:
            self._window.clear()  # a fresh window after every trip and every recovery
        BREAKER_STATE.labels(self._route).set(STATE_VALUES[new_state.name])


class RouteBreaker:
    def __init__(self, route: str, settings: BreakerSettings) -> None:
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=sys.maxsize,  # never by count: the listener trips it by rate
            reset_timeout=settings.open_s,
            success_threshold=settings.half_open_calls,
            exclude=[lambda exc: not isinstance(exc, UpstreamFailed)],
            listeners=[_FailureRate(route, settings)],
            name=route,
        )
        BREAKER_STATE.labels(route).set(0)

    @property
    def state(self) -> str:
        return str(self._breaker.current_state)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the block through the breaker; raises `BreakerOpen` without running it when open.

        Only `UpstreamFailed` counts as a failure; other exceptions pass through uncounted.
        """
        with self._breaker.calling():
            yield
