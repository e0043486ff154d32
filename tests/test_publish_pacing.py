"""When the counter publishes, on a fake clock: cheap rounds every interval, slow rounds at
most a fifth of the time while input keeps coming, soon after the input goes quiet."""

from __future__ import annotations

from kafka_streams.publish_pacing import PublishPacing


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pacing(clock: FakeClock) -> PublishPacing:
    return PublishPacing(emit_interval_s=1.0, publish_share=0.2, clock=clock)


def publish(pacer: PublishPacing, clock: FakeClock, took_s: float) -> None:
    started = clock.now
    clock.now += took_s
    pacer.published(started)


def run_until_due(pacer: PublishPacing, clock: FakeClock, input_every_s: float | None) -> float:
    """Seconds of counting until due, in 0.25 s steps (exact in binary), with input every
    `input_every_s`."""
    waited, since_input = 0.0, 0.0
    while not pacer.due():
        clock.now += 0.25
        waited += 0.25
        since_input += 0.25
        if input_every_s is not None and since_input >= input_every_s:
            pacer.input_arrived()
            since_input = 0.0
        assert waited < 1000, "never due"
    return waited


def test_cheap_rounds_go_out_every_interval_under_steady_input() -> None:
    clock = FakeClock()
    pacer = pacing(clock)
    for _ in range(3):
        assert run_until_due(pacer, clock, input_every_s=0.25) == 1.0
        publish(pacer, clock, took_s=0.05)


def test_slow_rounds_take_at_most_a_fifth_while_input_comes_in_bursts() -> None:
    """Bursts 1.25 s apart (the split stage's transactions under load, longer than the
    interval) are not "caught up": after a 2 s round the next waits for 8 s of counting, not
    for the first gap between bursts; once they stop, counts go out within two gaps."""
    clock = FakeClock()
    pacer = pacing(clock)
    for _ in range(3):
        clock.now += 1.25
        pacer.input_arrived()
    publish(pacer, clock, took_s=2.0)
    assert pacer.every_s == 8.0
    assert run_until_due(pacer, clock, input_every_s=1.25) == 8.0
    publish(pacer, clock, took_s=2.0)
    pacer.input_arrived()  # the last burst
    assert pacer.quiet_after_s == 2.5
    assert run_until_due(pacer, clock, input_every_s=None) == 2.5


def test_a_pause_in_the_input_is_not_its_rhythm() -> None:
    """A minute without tweets, then a trickle: quiet is two intervals again, not two minutes."""
    clock = FakeClock()
    pacer = pacing(clock)
    pacer.input_arrived()
    clock.now += 60
    pacer.input_arrived()
    assert pacer.quiet_after_s == 2.0


def test_quiet_input_brings_the_interval_back() -> None:
    """After the input stops, the counts of a slow round's backlog go out within two intervals."""
    clock = FakeClock()
    pacer = pacing(clock)
    pacer.input_arrived()
    publish(pacer, clock, took_s=2.0)
    pacer.input_arrived()  # the last record, right after the slow round
    assert run_until_due(pacer, clock, input_every_s=None) == 2.0
    publish(pacer, clock, took_s=0.01)
    assert pacer.every_s == 1.0
    assert run_until_due(pacer, clock, input_every_s=None) == 1.0


def test_a_lower_share_spaces_slow_rounds_further() -> None:
    clock = FakeClock()
    pacer = PublishPacing(emit_interval_s=1.0, publish_share=0.1, clock=clock)
    publish(pacer, clock, took_s=2.0)
    assert pacer.every_s == 18.0


def test_a_round_itself_is_not_quiet_input() -> None:
    """Nothing is polled while a round runs: a slow round must not count as a quiet second."""
    clock = FakeClock()
    pacer = pacing(clock)
    pacer.input_arrived()
    publish(pacer, clock, took_s=2.0)  # the input kept coming meanwhile, unread
    clock.now += 0.25
    assert not pacer.due()
