"""`tweetpipe up` supervises: a stage killed with SIGKILL is restarted and nothing is lost; a
service that keeps failing is given up on, by name."""

from __future__ import annotations

import io
import os
import random
import signal
from collections import Counter
from pathlib import Path

import pytest

from devstack.stack import LocalStack, ServiceSpec
from devstack.supervise import GaveUp, RestartPolicy, SupervisorOptions
from tests.support.local_stack import UpProcess, ground_truth, wait_for
from tests.support.ports import free_port

SEED, COUNT = 7, 6000


def _sample(totals: Counter[str]) -> list[str]:
    top = [w for w, _ in totals.most_common(30)]
    return top + random.Random(3).sample(sorted(totals), 30)


def test_a_stage_killed_with_sigkill_is_restarted_and_nothing_is_lost(tmp_path: Path) -> None:
    up = UpProcess(tmp_path, "--count", str(COUNT), "--rate", "400", "--seed", str(SEED))
    totals = ground_truth(SEED, COUNT)
    try:
        up.start()
        token = up.token()
        wait_for(lambda: up.indexed() >= 600, "some tweets indexed")
        os.kill(up.pid("kafka-to-elastic"), signal.SIGKILL)
        wait_for(lambda: (up.word_count("kafka", token) or 0) >= 100, "some words counted")
        os.kill(up.pid("kafka-streams-service"), signal.SIGKILL)

        wait_for(lambda: up.running("kafka-to-elastic is up again"), "the sink to come back")
        wait_for(lambda: up.running("kafka-streams-service is up again"), "the counter back")
        wait_for(lambda: up.indexed() >= COUNT, f"{COUNT} tweets indexed")
        assert up.indexed() == COUNT  # each exactly once
        sample = _sample(totals)
        wait_for(
            lambda: all(up.word_count(w, token) == totals[w] for w in sample),
            "word counts equal to the ground truth",
        )
        assert all(up.word_count(w, token) == totals[w] for w in sample)  # and they stay
        assert up.interrupt() == 0, up.text()
    finally:
        up.kill()
    log = up.text()
    for service in ("kafka-to-elastic", "kafka-streams-service"):
        assert f"!!! {service} exited unexpectedly (killed by SIGKILL)" in log
    assert "restart 1, failure 1 in a row" in log
    assert "stopped (restarts: kafka-to-elastic 1, kafka-streams-service 1)" in log.splitlines()[-1]


def test_backoff_doubles_and_a_stable_run_ends_the_streak() -> None:
    policy = RestartPolicy(
        SupervisorOptions(
            restart_initial_s=1, restart_max_s=5, stable_after_s=10, max_failures_in_row=5
        )
    )
    delays = [policy.failed("svc", 1, ran_s=0.5).delay_s for _ in range(4)]
    assert delays == [1, 2, 4, 5]
    assert policy.failed("svc", 1, ran_s=60).streak == 1  # ran long enough: a new streak
    assert policy.restarts["svc"] == 5
    for _ in range(3):
        policy.failed("svc", -9, ran_s=0.1)
    with pytest.raises(GaveUp, match=r"svc failed 5 times in a row \(last: killed by SIGKILL\)"):
        policy.failed("svc", -9, ran_s=0.1)


def test_a_service_that_keeps_failing_is_given_up_on_by_name(tmp_path: Path) -> None:
    out = io.StringIO()
    port = free_port()
    stack = LocalStack(
        [ServiceSpec("crasher", "tests.support.crasher", port, env={"CRASH_AFTER_S": "1.0"})],
        tmp_path,
        free_port(),
        {},
        out=out,
        supervisor=SupervisorOptions(
            restart_initial_s=0.1, max_failures_in_row=3, broker_recycle_mb=1
        ),
    )
    try:
        stack.start()
        with pytest.raises(GaveUp, match=r"crasher failed 3 times in a row \(last: exit code 3\)"):
            stack.wait()
    finally:
        stack.stop()
    printed = out.getvalue()
    assert printed.count("!!! crasher exited unexpectedly (exit code 3)") == 2
    assert "restarting it in 0.1s (restart 1, failure 1 in a row)" in printed
    assert "restarting it in 0.2s (restart 2, failure 2 in a row)" in printed
    assert "stopped (restarts: crasher 2)" in printed.splitlines()[-1]
    # the broker is past 1 MB as soon as it runs, but without a backlog meter the stack cannot
    # know the stages have drained it: it is never recycled
    assert "recycling it" not in printed


def test_stopped_and_started_again_the_word_counts_keep_moving(tmp_path: Path) -> None:
    """The local broker keeps topics in memory, so a second `tweetpipe up` starts with empty
    topics while the word-count stores on disk remember the first run: the counts afterwards are
    the first run's plus the ground truth of the tweets since (they used to freeze)."""
    first_seed, second_seed, count = 31, 32, 1500
    first = UpProcess(tmp_path, "--count", str(count), "--rate", "0", "--seed", str(first_seed))
    before = ground_truth(first_seed, count)
    try:
        first.start()
        token = first.token()
        wait_for(lambda: first.indexed() >= count, f"{count} tweets indexed")
        sample = _sample(before)
        wait_for(
            lambda: all(first.word_count(w, token) == before[w] for w in sample),
            "the first run's word counts",
        )
        assert first.interrupt() == 0, first.text()
    finally:
        first.kill()

    second = UpProcess(tmp_path, "--count", str(count), "--rate", "0", "--seed", str(second_seed))
    totals = before + ground_truth(second_seed, count)
    try:
        second.start()
        token = second.token()
        wait_for(lambda: second.indexed() >= 2 * count, f"{2 * count} tweets indexed")
        sample = _sample(totals)
        wait_for(
            lambda: all(second.word_count(w, token) == totals[w] for w in sample),
            "word counts = the first run's + the ground truth since",
        )
        assert all(second.word_count(w, token) == totals[w] for w in sample)  # and they stay
        assert second.indexed() == 2 * count
        assert second.interrupt() == 0, second.text()
    finally:
        second.kill()
    streams_log = (second.data_dir / "logs" / "kafka-streams-service.log").read_text()
    assert "the broker's topics are newer than the store" in streams_log
