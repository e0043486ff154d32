"""The generator's pacing, on a clock the test moves: the long-run rate holds without drift,
no tweet goes out more than a tick ahead of its turn, and sleeps come once per tick's worth."""

from __future__ import annotations

import pytest

from tweetpipe.lifecycle import StopSignal
from twitter_to_kafka.publisher import PACE_TICK_S, Pacer


class FakeTime(StopSignal):
    """A clock that moves only when the pacer sleeps (and by `work` per tweet sent)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wait(self, timeout: float) -> bool:
        self.sleeps.append(timeout)
        self.now += timeout
        return False


@pytest.mark.parametrize(("rate", "work"), [(2_000.0, 0.0), (2_000.0, 0.0001), (20.0, 0.001)])
def test_sends_keep_the_rate_a_tick_at_a_time(rate: float, work: float) -> None:
    time = FakeTime()
    pacer = Pacer(rate, time, clock=time.clock)
    start, count = time.now, 2_000
    for index in range(count):
        pacer.wait_turn(index)
        turn = start + index / rate
        assert time.now >= turn - PACE_TICK_S - 1e-9, f"tweet {index} went out too early"
        time.now += work  # building and sending the tweet
    elapsed = time.now - start
    assert elapsed == pytest.approx((count - 1) / rate, abs=PACE_TICK_S + count * work)
    per_tick = max(1.0, rate * PACE_TICK_S)
    assert len(time.sleeps) <= count / per_tick + 1  # one sleep per tick's worth, not per tweet


def test_no_rate_means_no_sleeps() -> None:
    time = FakeTime()
    pacer = Pacer(0, time, clock=time.clock)
    for index in range(1_000):
        pacer.wait_turn(index)
    assert time.sleeps == []
