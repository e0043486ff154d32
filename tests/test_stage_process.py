"""A stage in a process of its own: its metrics reach the parent, its end stops the service,
the service's stop stops it. Real spawned processes, no broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from prometheus_client import REGISTRY as SERVICE_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge

from tweetpipe.lifecycle import StopSignal
from tweetpipe.metric_relay import MetricRelay
from tweetpipe.stage_process import StageExited, StageLink, StageProcess
from tweetpipe.waiting import wait_until

REGISTRY = CollectorRegistry()
DONE = Counter("stage_test_done", "Items the child handled", ["kind"], registry=REGISTRY)
DEPTH = Gauge("stage_test_depth", "The child's last depth", registry=REGISTRY)
ITEMS = 250
BUSY_S = 0.5
MEMORY_BYTES = 200 * 1024 * 1024


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


def busy_then_wait(_settings: None, link: StageLink) -> int:
    """Spends CPU and holds memory, as a stage at work does."""
    link.start()
    held = bytearray(MEMORY_BYTES)
    held[::4096] = b"x" * len(held[::4096])  # touched, so resident
    started = time.process_time()
    while time.process_time() - started < BUSY_S:
        pass
    link.stop.wait(60)
    link.close()
    del held
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


def test_the_stage_processs_own_cpu_and_memory_are_on_the_services_metrics() -> None:
    """process_cpu_seconds_total and process_resident_memory_bytes are the parent's; the
    child's own are in tweetpipe_stage_process_* under its stage's name."""
    stop = StopSignal()
    stage = StageProcess(
        "busy", busy_then_wait, None, metrics=relayed, stop=stop, stop_timeout_s=20
    )

    def sample(name: str) -> float:
        return SERVICE_REGISTRY.get_sample_value(name, {"stage": "busy"}) or 0.0

    worker = threading.Thread(target=stage.run)
    parent_cpu = time.process_time()
    worker.start()
    try:
        wait_until(
            lambda: sample("tweetpipe_stage_process_cpu_seconds_total") >= BUSY_S,
            timeout_s=60,
            what="the child's CPU time",
        )
        assert sample("tweetpipe_stage_process_resident_memory_bytes") > MEMORY_BYTES
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert time.process_time() - parent_cpu < BUSY_S  # the parent did not do that work
