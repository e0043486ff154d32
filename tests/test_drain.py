"""Ctrl-C on `tweetpipe up` with a backlog in the broker: the generator stops first, the stages
process everything left (lag 0) before anything else stops, and nothing is lost.

The broker keeps topics in memory only, so whatever a stage has not processed when it stops is
gone: this is the test that none is left.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.local_stack import UpProcess, analytics_totals, ground_truth, wait_for

SEED = 8


def test_ctrl_c_drains_the_backlog_before_stopping(tmp_path: Path) -> None:
    up = UpProcess(
        tmp_path, "--count", "60000", "--rate", "0", "--seed", str(SEED), DRAIN__TIMEOUT_S="600"
    )
    try:
        up.start()
        wait_for(lambda: up.indexed() > 0, "the first tweets indexed")
        indexed_at_interrupt = up.indexed()
        assert up.interrupt() == 0, up.text()
    finally:
        up.kill()
    log = up.text()
    produced = int(re.findall(r"produced (\d+) tweets in ", log)[-1])
    assert indexed_at_interrupt < produced  # there was a backlog to drain

    lines = log.splitlines()
    generator_done = next(
        i for i, line in enumerate(lines) if "produced " in line and " in " in line
    )
    drained = next(i for i, line in enumerate(lines) if "drained: lag 0 for" in line)
    sink_stopped = next(i for i, line in enumerate(lines) if "stopped after indexing" in line)
    assert generator_done < drained < sink_stopped  # the generator first, the stages after
    assert any("draining (" in line for line in lines[generator_done:drained])  # progress shown
    assert (
        "kafka-to-elastic, kafka-streams-service (split), kafka-streams-service (count)"
        in (lines[drained])
    )
    assert "stopped (restarts: none)" in lines[-1]

    # everything in the broker was processed: indexed, counted, stored by analytics
    assert up.indexed() == produced
    totals = ground_truth(SEED, produced)
    assert analytics_totals(up.data_dir / "analytics.db") == totals
