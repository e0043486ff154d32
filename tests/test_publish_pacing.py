"""When the counter publishes, on a fake clock: cheap rounds every interval, slow rounds at
most a fifth of the time while input keeps coming (their cost estimated before the first),
soon after the input goes quiet, sooner once the split stage says it has caught up."""

from __future__ import annotations

from collections.abc import Callable

from kafka_streams.publish_pacing import RECORD_COST_S, PublishPacing


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pacing(clock: FakeClock) -> PublishPacing:
    return PublishPacing(emit_interval_s=1.0, publish_share=0.2, clock=clock)


def publish(
    pacer: PublishPacing, clock: FakeClock, took_s: float, records: int | None = None
) -> None:
    started = clock.now
    clock.now += took_s
    pacer.published(started, records)


def run_until_due(
    pacer: PublishPacing,
    clock: FakeClock,
    input_every_s: float | None,
    *,
    caught_up: bool = False,
    pending: Callable[[], int] | None = None,
) -> float:
    """Seconds of counting until due, in 0.25 s steps (exact in binary), with input every
    `input_every_s`."""
    waited, since_input = 0.0, 0.0
    while not pacer.due(caught_up=caught_up, pending=pending):
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


def bursts_then_a_slow_round(pacer: PublishPacing, clock: FakeClock) -> None:
    """Bursts 1.25 s apart, a 2 s round, then the last burst."""
    for _ in range(3):
        clock.now += 1.25
        pacer.input_arrived()
    publish(pacer, clock, took_s=2.0)
    pacer.input_arrived()


def test_once_the_split_stage_has_caught_up_one_quiet_interval_is_enough() -> None:
    """Its last batch left nothing unread and the counter has read it all: the counts go out
    after one interval without input, not after two of the bursts' gaps."""
    clock = FakeClock()
    pacer = pacing(clock)
    bursts_then_a_slow_round(pacer, clock)
    assert pacer.quiet_after_s == 2.5
    assert run_until_due(pacer, clock, input_every_s=None, caught_up=True) == 1.0


def test_caught_up_does_not_make_a_steady_stream_publish_every_interval() -> None:
    """A stream the pipeline keeps up with is caught up at almost every poll; while input keeps
    arriving, slow rounds still take at most a fifth of the time."""
    clock = FakeClock()
    pacer = pacing(clock)
    bursts_then_a_slow_round(pacer, clock)
    assert run_until_due(pacer, clock, input_every_s=0.5, caught_up=True) == 8.0


def test_a_bursts_first_slow_round_waits_for_counting_time_by_its_estimate() -> None:
    """No round has been timed yet: 60,000 pending records at the assumed cost per record is a
    1.5 s round, so while input keeps coming it waits for 6 s of counting, not one interval."""
    clock = FakeClock()
    pacer = pacing(clock)
    expected = 60_000 * RECORD_COST_S * 4
    waited = run_until_due(pacer, clock, input_every_s=0.25, pending=lambda: 60_000)
    assert expected <= waited < expected + 0.25  # the first step at or past the estimate
    assert waited > 5.0


def test_a_cheap_pending_round_still_goes_out_every_interval() -> None:
    clock = FakeClock()
    pacer = pacing(clock)
    assert run_until_due(pacer, clock, input_every_s=0.25, pending=lambda: 1_000) == 1.0


def test_the_estimate_uses_the_last_rounds_cost_per_record() -> None:
    """A round of 10,000 records took 2 s: 10,000 pending again means 8 s of counting first."""
    clock = FakeClock()
    pacer = pacing(clock)
    publish(pacer, clock, took_s=0.1, records=500)  # 200 us a record; cheap, so every interval
    assert pacer.every_s == 1.0
    assert run_until_due(pacer, clock, input_every_s=0.25, pending=lambda: 10_000) == 8.0


def test_an_ever_growing_backlog_is_estimated_once_per_round() -> None:
    """Pending records that grow faster than they could be published must not put the round
    off for ever: it is estimated once, then due when that time has passed."""
    clock = FakeClock()
    pacer = pacing(clock)
    grown = iter(range(100_000, 10**9, 100_000))
    waited = run_until_due(pacer, clock, input_every_s=0.25, pending=lambda: next(grown))
    assert waited == 10.0  # 100,000 x 25 us x 4
