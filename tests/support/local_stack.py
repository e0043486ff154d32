"""`tweetpipe up` as a test runs it: every port free, data in a temporary directory."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from kafka_streams.tokenize import ALL_TIME
from tests.support.issuer import demo_user_token
from tests.support.ports import free_port
from tweetpipe.search import open_store
from tweetpipe.settings import SearchSettings
from tweetpipe.text import words
from tweetpipe.waiting import wait_until
from twitter_to_kafka.generator import TweetGenerator
from twitter_to_kafka.settings import GeneratorSettings

PORT_NAMES = (
    "BROKER",
    "TWITTER_TO_KAFKA",
    "KAFKA_TO_ELASTIC",
    "KAFKA_STREAMS",
    "ANALYTICS_SERVICE",
    "ISSUER",
    "QUERY_SERVICE",
    "GATEWAY",
    "REGISTRY",
    "CONFIG_SERVER",
    "WEB_CLIENT",
    "PROMETHEUS",
)
GUARD_S = 300.0
"""A guard against hanging forever, not a measurement: CI machines are shared."""


def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = GUARD_S) -> None:
    wait_until(predicate, timeout_s, what, interval_s=0.3)


def ground_truth(seed: int, count: int) -> Counter[str]:
    """All-time word counts of the first `count` tweets the generator writes with `seed`."""
    options = GeneratorSettings().generator.model_copy(update={"seed": seed, "count": count})
    totals: Counter[str] = Counter()
    for tweet in TweetGenerator(options):
        totals.update(words(tweet.text))
    return totals


def analytics_totals(database: Path) -> Counter[str]:
    """All-time counts as analytics stored them: the sum of each word's window counts."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT word, SUM(word_count) FROM word_counts GROUP BY word")
        return Counter({word: int(total) for word, total in rows})


def store_totals(state_dir: Path) -> Counter[str]:
    """All-time counts as the word-count stores on disk hold them, over every partition."""
    totals: Counter[str] = Counter()
    for path in sorted(state_dir.rglob("partition-*.sqlite")):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            rows = connection.execute(
                "SELECT word, count FROM counts WHERE window = ?", (ALL_TIME,)
            )
            totals.update({word: int(count) for word, count in rows})
    return totals


def generator_runs(log: str) -> list[int]:
    """How many tweets each run of the generator produced, as it said when it stopped."""
    pattern = r"^twitter-to-kafka\s+\|.* produced (\d+) tweets in "
    return [int(n) for n in re.findall(pattern, log, flags=re.MULTILINE)]


class UpProcess:
    """One `tweetpipe up` child process and what it printed."""

    def __init__(self, workdir: Path, *args: str, **env: str) -> None:
        self.workdir = workdir
        self.ports = {name: free_port() for name in PORT_NAMES}
        self.index = workdir / "index"
        self.data_dir = workdir / "data"
        self.output = workdir / "up.log"
        self.env = {
            **os.environ,
            # no burst: these tests compare counts with the seeded generator's ground truth
            "GENERATOR__BURSTS": "[]",
            "DATA_DIR": str(self.data_dir),
            "SEARCH__TANTIVY_PATH": str(self.index),
            "MONITORING": "false",
            **{f"PORTS__{name}": str(port) for name, port in self.ports.items()},
            **env,
        }
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> UpProcess:
        with self.output.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tweetpipe.cli", "up", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: self.running("tweetpipe is running"), "tweetpipe up to be ready")
        return self

    def text(self) -> str:
        return self.output.read_text()

    def running(self, marker: str) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.text()
        return marker in self.text()

    def pid(self, service: str) -> int:
        """The newest pid the stack reported for `service`."""
        found = re.findall(rf"{re.escape(service)} started \(pid (\d+)\)", self.text())
        assert found, self.text()
        return int(found[-1])

    def indexed(self) -> int:
        store = open_store(SearchSettings(backend="tantivy", tantivy_path=self.index))
        try:
            return store.count()
        finally:
            store.close()

    def token(self) -> str:
        return demo_user_token(
            f"http://127.0.0.1:{self.ports['ISSUER']}/realms/microservices-realm"
        )

    def word_count(self, word: str, token: str) -> int | None:
        url = f"http://127.0.0.1:{self.ports['KAFKA_STREAMS']}/get-word-count-by-word/{word}"
        try:
            reply = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        except httpx.HTTPError:
            return None
        return int(reply.json()["word_count"]) if reply.status_code == 200 else None

    def interrupt(self) -> int:
        """Ctrl-C, then the exit code once it has stopped."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=GUARD_S)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
