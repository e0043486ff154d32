"""A stage in a process of its own: its metrics reach the parent, its end stops the service,
the service's stop stops it. Real spawned processes, no broker."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from tweetpipe.lifecycle import StopSignal
from tweetpipe.metric_relay import MetricRelay
from tweetpipe.stage_process import StageExited, StageLink, StageProcess
from tweetpipe.waiting import wait_until

REGISTRY = CollectorRegistry()
DONE = Counter("stage_test_done", "Items the child handled", ["kind"], registry=REGISTRY)
DEPTH = Gauge("stage_test_depth", "The child's last depth", registry=REGISTRY)
ITEMS = 250


def relayed() -> Sequence[Counter | Gauge]:
    return [DONE, DEPTH]


def count_then_wait(_settings: None, link: StageLink) -> int:
    """Counts, then idles until its parent stops it, as a stage does."""
    link.start()
    for _ in range(ITEMS):
        DONE.labels("tweet").inc()
    DEPTH.set(7)
    link.stop.wait(60)
    link.close()
    return 0


def exit_on_its_own(_settings: None, link: StageLink) -> int:
    link.start()
    DONE.labels("crash").inc(3)
    link.close()
    return 3


def value(kind: str) -> float:
    return REGISTRY.get_sample_value("stage_test_done_total", {"kind": kind}) or 0.0


def test_relay_adds_what_the_child_counted_since_its_last_snapshot() -> None:
    child = CollectorRegistry()
    sent = Counter("relay_test", "", ["stage"], registry=child)
    level = Gauge("relay_level", "", registry=child)
    parent = CollectorRegistry()
    got = Counter("relay_test", "", ["stage"], registry=parent)
    shown = Gauge("relay_level", "", registry=parent)
    got.labels("count").inc(5)  # the parent's own counting in the same series
    ours, theirs = MetricRelay([sent, level]), MetricRelay([got, shown])
    sent.labels("split").inc(2)
    sent.labels("count").inc(1)
    level.set(4)
    theirs.apply(ours.snapshot())
    theirs.apply(ours.snapshot())  # the same totals again add nothing
    sent.labels("split").inc(3)
    level.set(1)
    theirs.apply(ours.snapshot())
    assert parent.get_sample_value("relay_test_total", {"stage": "split"}) == 5
    assert parent.get_sample_value("relay_test_total", {"stage": "count"}) == 6
    assert parent.get_sample_value("relay_level") == 1


def test_the_childs_metrics_reach_the_parent_and_stop_ends_it() -> None:
    stop = StopSignal()
    stage = StageProcess(
        "test", count_then_wait, None, metrics=relayed, stop=stop, stop_timeout_s=20
    )
    before = value("tweet")
    failures: list[BaseException] = []

    def supervise() -> None:
        try:
            stage.run()
        except BaseException as exc:  # reported to the test below
            failures.append(exc)

    worker = threading.Thread(target=supervise)
    worker.start()
    try:
        wait_until(lambda: value("tweet") - before == ITEMS, timeout_s=60, what="relayed counts")
        assert REGISTRY.get_sample_value("stage_test_depth") == 7
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert failures == []
    assert value("tweet") - before == ITEMS  # the final snapshot added nothing twice


def test_a_stage_that_ends_on_its_own_fails_its_worker_with_its_exit_code() -> None:
    stage = StageProcess(
        "test", exit_on_its_own, None, metrics=relayed, stop=StopSignal(), stop_timeout_s=20
    )
    before = value("crash")
    with pytest.raises(StageExited, match="test stage process exited with code 3"):
        stage.run()
    assert value("crash") - before == 3  # what it sent before it ended still counts
