"""Single-machine profile: what `tweetpipe up` does when a service exits on its own.

Like compose's `restart: unless-stopped`: a service that exits unexpectedly (any exit while the
stack is not stopping, except a one-shot service finishing with 0) is started again after a
backoff that doubles with each failure in a row. A run that lasted `stable_after_s` ends the
streak, so a service that crashes once a day is restarted every time, while one that cannot
start is given up on after `max_failures_in_row`: then the whole stack stops with an error
naming it.
"""

from __future__ import annotations

import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field


class SupervisorOptions(BaseModel):
    restart_initial_s: float = Field(default=1.0, gt=0)
    """Wait before the first restart of a streak; doubled for each further failure in a row."""
    restart_max_s: float = Field(default=30.0, gt=0)
    stable_after_s: float = Field(default=10.0, gt=0)
    """A run at least this long is a success: the next failure starts a new streak."""
    max_failures_in_row: int = Field(default=5, ge=1)
    """Failures in a row after which the stack gives up (and stops, exit code 1)."""
    broker_recycle_mb: int = Field(default=512, ge=0)
    """Recycle the memory-only broker when its resident memory passes this (0: never). It
    honours no retention and keeps every record, so the stack drains it and starts it again
    empty (`LocalStack.recycle_broker`)."""
    broker_recycle_every_s: float = Field(default=60.0, ge=0)
    """Least time between two recycles, and before trying again after one was abandoned."""


class GaveUp(RuntimeError):
    """A service failed `max_failures_in_row` times in a row."""

    def __init__(self, service: str, failures: int, last_exit: str) -> None:
        super().__init__(
            f"{service} failed {failures} times in a row (last: {last_exit}); gave up on it"
        )
        self.service = service


def describe_exit(code: int) -> str:
    """`exit code 3`, or `killed by SIGKILL` for a negative Popen return code."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass(frozen=True)
class Restart:
    """The decision for one unexpected exit."""

    streak: int
    """Failures in a row, this one included."""
    delay_s: float
    number: int
    """How many times the service will have been restarted since `tweetpipe up` began."""


class RestartPolicy:
    """Counts failures per service and says when to restart, or raises `GaveUp`."""

    def __init__(self, options: SupervisorOptions) -> None:
        self._options = options
        self._streaks: Counter[str] = Counter()
        self.restarts: Counter[str] = Counter()

    def failed(self, service: str, code: int, ran_s: float) -> Restart:
        options = self._options
        if ran_s >= options.stable_after_s:
            self._streaks[service] = 0
        self._streaks[service] += 1
        streak = self._streaks[service]
        if streak >= options.max_failures_in_row:
            raise GaveUp(service, streak, describe_exit(code))
        delay = min(options.restart_initial_s * 2 ** (streak - 1), options.restart_max_s)
        self.restarts[service] += 1
        return Restart(streak=streak, delay_s=delay, number=self.restarts[service])

    def summary(self) -> str:
        """`kafka-to-elastic 2, gateway-service 1`, or `none`."""
        return ", ".join(f"{name} {n}" for name, n in self.restarts.items()) or "none"


def resident_mb(pid: int) -> float | None:
    """VmRSS of a live process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class BrokerMemory:
    """Says when the broker should be recycled: past `limit_mb`, at most once per `every_s`."""

    def __init__(self, limit_mb: int, every_s: float) -> None:
        self._limit = limit_mb
        self._every = every_s
        self._next = 0.0

    def over_limit(self, pid: int | None, now: float) -> float | None:
        """The broker's memory (MiB) if it is past the limit and a recycle is due now."""
        if not self._limit or pid is None or now < self._next:
            return None
        mb = resident_mb(pid)
        return mb if mb is not None and mb > self._limit else None

    def tried(self, now: float) -> None:
        """A recycle ran or was abandoned: the next one no sooner than `every_s` from now."""
        self._next = now + self._every
