"""The memory-only broker keeps every record, so `tweetpipe up` recycles it past a memory limit:
the generator stops, the stages drain it, the dead letters are archived to disk, and the broker
and the services that use it start again, empty. Nothing is lost or counted twice across
recycles; a broker killed with SIGKILL is started again with the stages that use it."""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from pathlib import Path

import orjson

from tests.support.kafka import produce
from tests.support.local_stack import (
    UpProcess,
    analytics_totals,
    generator_runs,
    ground_truth,
    store_totals,
    wait_for,
)
from tweetpipe.settings import KafkaSettings

SEED = 12
NOT_A_TWEET = b"not a tweet {"


def test_a_broker_past_its_memory_limit_is_recycled_and_nothing_is_lost(tmp_path: Path) -> None:
    up = UpProcess(
        tmp_path,
        "--rate",
        "800",
        "--seed",
        str(SEED),
        SUPERVISOR__BROKER_RECYCLE_MB="45",
        SUPERVISOR__BROKER_RECYCLE_EVERY_S="1",
    )
    try:
        up.start()
        kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{up.ports['BROKER']}")
        produce(kafka, kafka.tweets_topic, [(b"bad", NOT_A_TWEET)])
        wait_for(lambda: up.text().count("broker recycled in") >= 2, "two broker recycles")
        wait_for(lambda: up.text().count("twitter-to-kafka is up") >= 3, "the generator back")
        assert up.interrupt() == 0, up.text()
    finally:
        up.kill()
    log = up.text()
    assert "recycling it: stopping the sources, draining the stages" in log
    assert "broker recycle abandoned" not in log

    # every run of the generator (before, between and after the recycles) fully processed
    runs = generator_runs(log)
    assert len(runs) >= 3, log
    assert up.indexed() == sum(runs)
    totals = sum((ground_truth(SEED, n) for n in runs), Counter[str]())
    assert store_totals(up.data_dir / "streams") == totals
    assert analytics_totals(up.data_dir / "analytics.db") == totals

    # the dead letters of the first broker are on disk, bytes and reasons kept
    archives = sorted((up.data_dir / "dead-letters").glob(f"{kafka.dlq_topic}-*.jsonl"))
    assert archives, log
    letters = [orjson.loads(line) for path in archives for line in path.read_bytes().splitlines()]
    ours = [letter for letter in letters if letter["value"] == NOT_A_TWEET.decode()]
    stages = {h["value"] for letter in ours for h in letter["headers"] if h["key"] == "dlq.stage"}
    assert stages == {"kafka-to-elastic", "kafka-streams-service-split"}, ours
    assert all(any(h["key"] == "dlq.reason" for h in letter["headers"]) for letter in ours)
    assert "dead letters archived to" in log
    assert re.search(r"stopped \(restarts: none, broker recycled \d+ times\)", log.splitlines()[-1])


def test_a_broker_killed_with_sigkill_is_started_again_with_its_stages(tmp_path: Path) -> None:
    up = UpProcess(tmp_path, "--rate", "300", "--seed", str(SEED))
    try:
        up.start()
        token = up.token()
        wait_for(lambda: (up.word_count("kafka", token) or 0) > 0, "some words counted")
        os.kill(up.pid("Kafka broker"), signal.SIGKILL)
        wait_for(lambda: up.text().count("Kafka broker started") >= 2, "the broker started again")
        wait_for(lambda: up.text().count("twitter-to-kafka is up") >= 2, "the generator back")
        indexed, counted = up.indexed(), up.word_count("kafka", token) or 0
        wait_for(lambda: up.indexed() > indexed + 300, "tweets indexed after the restart")
        wait_for(lambda: (up.word_count("kafka", token) or 0) > counted, "counts moving again")
        assert up.interrupt() == 0, up.text()
    finally:
        up.kill()
    log = up.text()
    assert "!!! the Kafka broker exited unexpectedly (killed by SIGKILL)" in log
    assert "the records it held are lost" in log
    assert "stopped (restarts: kafka-broker 1)" in log.splitlines()[-1]
