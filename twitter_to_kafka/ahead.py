"""At full speed, tweets made a batch ahead in a process of their own.

Why: making a tweet (~20 µs, `TweetGenerator.next_record`) and sending it (kafka-python's
`send` and its sender thread, ~25 µs) took turns on one GIL, so a full-speed generator was
bound to one core while the sink and the broker left part of the other idle. Here a child
makes the tweets and the service process only sends them.

Only at full speed (`generator.rate` 0): a paced generator makes each tweet when it is due, so
its `created_at` is the moment it is sent; made ahead, it would be up to a batch older (at full
speed a batch is a few tens of milliseconds' worth). The pipe holds at most a batch or so, so
the child never runs further ahead than that: it blocks until the batch before is taken.

The child is spawned, not forked (nothing of the parent's threads or Kafka clients is
inherited half-way). It ends with its parent: at its next hand-over, which finds the pipe
broken, and by SIGKILL from the kernel at once (`die_with_parent`, for a child busy building
its sentence pools). It ignores SIGINT: Ctrl-C reaches the whole process group, and only the
parent decides when to stop (`tweetpipe.stage_process` does the same for the split stage).
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Self

from tweetpipe.lifecycle import die_with_parent
from twitter_to_kafka.generator import TweetGenerator, TweetRecord
from twitter_to_kafka.settings import GeneratorOptions

log = logging.getLogger(__name__)

BATCH = 1000
"""Tweets per message from the child: plain tuples, ~0.5 µs a tweet to pickle and unpickle."""
STOP_TIMEOUT_S = 5.0


class GeneratorProcessFailed(RuntimeError):
    """The process making the tweets ended before it had made them all."""


class TweetsAhead:
    """`TweetGenerator(options).records()`, made in a child process a batch ahead of the
    caller. Iterate once; `close()` (also on leaving a `with` block) stops the child."""

    def __init__(self, options: GeneratorOptions, *, batch: int = BATCH) -> None:
        self._options = options
        self._batch = batch
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Self:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=False)
        process = context.Process(
            target=_make_tweets,
            args=(os.getpid(), self._options, theirs, self._batch),
            name="tweet maker",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._process, self._conn = process, ours
        log.info("making tweets a batch ahead in process %d", process.pid)
        return self

    def __iter__(self) -> Iterator[TweetRecord]:
        if self._process is None or self._conn is None:
            raise RuntimeError("TweetsAhead.start() was not called")
        make = TweetRecord._make
        while True:
            try:
                batch = self._conn.recv()
            except EOFError:  # the child closed its end: done, or gone
                break
            yield from map(make, batch)
        self._process.join(STOP_TIMEOUT_S)
        code = self._process.exitcode
        if code != 0:
            raise GeneratorProcessFailed(f"the tweet maker process ended with exit code {code}")

    def close(self) -> None:
        """Stop the child (it may be blocked handing over a batch nobody will take)."""
        process, conn = self._process, self._conn
        if conn is not None:
            conn.close()
        if process is None:
            return
        if process.is_alive():
            process.terminate()
            process.join(STOP_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _make_tweets(parent: int, options: GeneratorOptions, conn: Connection, batch: int) -> None:
    die_with_parent(signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above: the signal will never come
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    records = TweetGenerator(options).records()
    try:
        while chunk := [tuple(record) for record in itertools.islice(records, batch)]:
            conn.send(chunk)
    except (BrokenPipeError, ConnectionResetError):  # the parent stopped taking them
        return
    finally:
        conn.close()
