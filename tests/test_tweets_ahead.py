"""A full-speed generator makes its tweets in a second process: the same tweets, every one of
them, an error (not a short run) when that process dies, and no process left behind when the
service stops or is killed. Real spawned processes; the service tests use a real broker."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.kafka import read_topic
from tests.support.ports import free_port
from tests.support.services import ServiceProcess
from tweetpipe.model import Tweet
from tweetpipe.settings import KafkaSettings
from tweetpipe.waiting import wait_until
from twitter_to_kafka.ahead import GeneratorProcessFailed, TweetsAhead
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.settings import GeneratorOptions

REPO = Path(__file__).resolve().parent.parent


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def content(tweet: Tweet) -> tuple:
    """All but the id and time, which follow each process's clock."""
    return (tweet.user_id, tweet.text, tweet.lang, tweet.hashtags, tweet.mentions, tweet.keywords)


def test_the_maker_gives_the_generators_tweets_every_one_in_order() -> None:
    options = GeneratorOptions(seed=12, count=2_345, worker_id=9)  # two full batches and a part
    with TweetsAhead(options, batch=1000) as ahead:
        records = list(ahead)
    tweets = [Tweet.from_json(r.value) for r in records]
    assert [content(t) for t in tweets] == [content(t) for t in TweetGenerator(options)]
    assert [(r.id, r.key) for r in records] == [(t.id, t.key) for t in tweets]
    ids = [t.id for t in tweets]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_a_killed_maker_is_an_error_not_a_short_run() -> None:
    ahead = TweetsAhead(GeneratorOptions(seed=1, worker_id=1), batch=200).start()
    try:
        tweets = iter(ahead)
        assert len(list(itertools.islice(tweets, 50))) == 50
        assert ahead.pid is not None
        os.kill(ahead.pid, signal.SIGKILL)
        with pytest.raises(GeneratorProcessFailed, match="exit code -9"):
            for _ in tweets:  # what was already in the pipe, then the error
                pass
    finally:
        ahead.close()


def test_close_stops_a_maker_blocked_on_a_batch_nobody_takes() -> None:
    ahead = TweetsAhead(GeneratorOptions(seed=1, worker_id=1)).start()
    assert len(list(itertools.islice(iter(ahead), 10))) == 10
    pid = ahead.pid
    assert pid is not None
    assert alive(pid)
    ahead.close()
    assert not alive(pid)
    ahead.close()  # idempotent


def test_the_maker_dies_with_its_parent_even_by_sigkill(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from twitter_to_kafka.ahead import TweetsAhead
        from twitter_to_kafka.settings import GeneratorOptions
        ahead = TweetsAhead(GeneratorOptions(seed=1)).start()
        next(iter(ahead))
        print(ahead.pid, flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()
        parent.wait(timeout=10)
        wait_until(lambda: not alive(child), timeout_s=10, what="the maker to die with its parent")
    finally:
        parent.kill()


def generator(kafka: KafkaSettings, tmp_path: Path, **env: str) -> ServiceProcess:
    variables = {
        "KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "GENERATOR__RATE": "0",
        "GENERATOR__SEED": "5",
        "ADMIN__PORT": str(free_port()),
        "EUREKA__SERVER_URL": "",
        **env,
    }
    return ServiceProcess("twitter_to_kafka", variables, tmp_path / "generator.log").start()


def maker_pid(service: ServiceProcess) -> int:
    return int(service.wait_for_log(r"making tweets a batch ahead in process (\d+)").group(1))


def test_the_service_at_full_speed_delivers_every_tweet_once(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    service = generator(kafka_settings, tmp_path, GENERATOR__COUNT="12000")
    try:
        child = maker_pid(service)
        assert service.wait_exit(120) == 0, service.output
    finally:
        service.kill()
    records = read_topic(kafka_settings, kafka_settings.tweets_topic, 12_000)
    tweets = [Tweet.from_json(r.value) for r in records]
    assert len({t.id for t in tweets}) == len(records) == 12_000
    assert all(r.key == t.key for r, t in zip(records, tweets, strict=True))
    assert "produced 12000 tweets" in service.output
    assert not alive(child)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_stopped_or_killed_service_leaves_no_maker_behind(
    how: str, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    service = generator(kafka_settings, tmp_path, GENERATOR__PROGRESS_INTERVAL_S="0.5")  # no count
    try:
        child = maker_pid(service)
        service.wait_for_log(r"produced \d+ tweets \(\d+/s\)")  # a progress line: sending
        assert alive(child)
        if how == "SIGTERM":
            assert service.terminate() == 0, service.output
            assert "Traceback" not in service.output
        else:
            service.kill()
        wait_until(lambda: not alive(child), timeout_s=15, what="the maker to stop")
    finally:
        service.kill()
