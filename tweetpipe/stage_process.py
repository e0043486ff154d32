"""A stage of a service in a process of its own, supervised by one of the service's workers.

Why: a stage's work is per-record Python, and two stages in one process take turns on one
GIL, so on a two-core machine the second core waits. From outside the service stays one thing:
one admin port, one health, one `/metrics` (the child's metrics through
`tweetpipe.metric_relay`), one exit code for its supervisor. The child ending on its own stops
the service, as a worker thread's end does, and the service stopping stops the child the way
SIGTERM stops a service: after the batch in hand.

multiprocessing's *spawn* start: a fresh interpreter, so nothing of the parent's threads,
sockets or Kafka clients is inherited half-way. The child dies with its parent (SIGKILL from
the kernel when the supervising thread is gone), so a service killed with -9 leaves no stage
behind, as it did when it was one process; and the child ignores SIGINT, which a terminal's
Ctrl-C sends to the whole process group: only its parent decides when it stops.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge, ProcessCollector

from tweetpipe.lifecycle import StopSignal, die_with_parent
from tweetpipe.metric_relay import MetricRelay

log = logging.getLogger(__name__)

S = TypeVar("S")

RELAY_INTERVAL_S = 0.25
"""How often the child sends its metrics: what a scrape of the parent may lag behind."""


STAGE_CPU = Counter(
    "tweetpipe_stage_process_cpu_seconds",
    "CPU time (user + system) of a stage's own process; process_cpu_seconds_total is the "
    "service's main process only",
    ["stage"],
)
STAGE_MEMORY = Gauge(
    "tweetpipe_stage_process_resident_memory_bytes",
    "Resident memory of a stage's own process",
    ["stage"],
)
USAGE_METRICS = (STAGE_CPU, STAGE_MEMORY)
"""Relayed from every stage process, after the stage's own metrics."""


class _OwnUsage:
    """The child's CPU and memory into its stage's series, before each snapshot. Read by
    prometheus-client's process collector (unregistered), the one that makes the parent's
    `process_*` series, so both are measured the same way."""

    def __init__(self, stage: str) -> None:
        self._process = ProcessCollector(registry=None)
        self._cpu = STAGE_CPU.labels(stage)
        self._memory = STAGE_MEMORY.labels(stage)
        self._cpu_counted = 0.0

    def update(self) -> None:
        now = {s.name: s.value for f in self._process.collect() for s in f.samples}
        cpu = now["process_cpu_seconds_total"]
        if cpu > self._cpu_counted:
            self._cpu.inc(cpu - self._cpu_counted)
            self._cpu_counted = cpu
        self._memory.set(now["process_resident_memory_bytes"])


class StageExited(RuntimeError):
    """The stage's process ended while the service was running, or failed while stopping."""


StageMain = Callable[[S, "StageLink"], int]
"""The child's entry point: runs the stage until the link says stop; returns an exit code."""


class StageLink:
    """The child's end of the pipe: the stop signal its parent controls (SIGTERM) and the
    metrics it sends back. A parent that is gone reads as a request to stop."""

    def __init__(self, conn: Connection, relay: MetricRelay, stage: str) -> None:
        self.stop = StopSignal().install()
        self._usage = _OwnUsage(stage)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self._conn = conn
        self._relay = relay
        self._sender = threading.Thread(target=self._send_until_stopped, daemon=True)

    def start(self) -> StageLink:
        self._sender.start()
        return self

    def close(self) -> None:
        """The last values, then the pipe closed: call after the stage has finished."""
        self.stop.set()
        self._sender.join(timeout=5)
        self._send()
        self._conn.close()

    def _send_until_stopped(self) -> None:
        while not self.stop.wait(RELAY_INTERVAL_S):
            if not self._send():
                log.warning("the service process is gone; stopping")
                self.stop.set()

    def _send(self) -> bool:
        self._usage.update()
        try:
            self._conn.send(self._relay.snapshot())
        except (OSError, ValueError):  # a broken pipe, or one already closed
            return False
        return True


RelayedMetrics = Callable[[], Sequence[Counter | Gauge]]
"""The metrics a stage's process owns: a module-level function, so that each process finds
its own copies of them (metric objects do not cross a process boundary)."""


def _child(
    parent: int,
    name: str,
    main: StageMain[S],
    settings: S,
    conn: Connection,
    metrics: RelayedMetrics,
) -> None:
    die_with_parent(signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above: the signal will never come
        os._exit(1)
    relay = MetricRelay([*metrics(), *USAGE_METRICS])
    sys.exit(main(settings, StageLink(conn, relay, name)))


class StageProcess(Generic[S]):
    """Runs `main(settings, link)` in a spawned process; `run()` is a service worker's loop."""

    def __init__(
        self,
        name: str,
        main: StageMain[S],
        settings: S,
        *,
        metrics: RelayedMetrics,
        stop: StopSignal,
        stop_timeout_s: float,
    ) -> None:
        """`metrics`: what the child reports through the parent. `stop`: the service's signal.
        `stop_timeout_s`: how long a stopping child may take before it is killed."""
        self.name = name
        self._main = main
        self._settings = settings
        self._metrics = metrics
        self._relay = MetricRelay([*metrics(), *USAGE_METRICS])
        self._stop = stop
        self._stop_timeout_s = stop_timeout_s

    def run(self) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe(duplex=False)
        process = context.Process(
            target=_child,
            args=(os.getpid(), self.name, self._main, self._settings, theirs, self._metrics),
            name=f"{self.name} stage",
        )
        process.start()
        theirs.close()
        log.info("%s stage started in process %d", self.name, process.pid)
        deadline: float | None = None
        listening = True
        while process.is_alive():
            if self._stop.is_set() and deadline is None:
                process.terminate()  # SIGTERM: finish the batch in hand, commit, close
                deadline = time.monotonic() + self._stop_timeout_s
            if listening:
                listening = self._receive(ours)
            else:
                process.join(timeout=0.2)
            if deadline is not None and time.monotonic() > deadline and process.is_alive():
                log.warning(
                    "%s stage did not stop in %.0fs; killing it", self.name, self._stop_timeout_s
                )
                process.kill()
                deadline = float("inf")
        while listening and ours.poll():  # what it sent last
            listening = self._receive(ours)
        process.join()
        ours.close()
        code = process.exitcode
        if not self._stop.is_set() or code != 0:
            raise StageExited(f"{self.name} stage process exited with code {code}")
        log.info("%s stage stopped", self.name)

    def _receive(self, conn: Connection) -> bool:
        """Apply what the child sends within a short wait; False once the pipe is closed."""
        try:
            if conn.poll(0.2):
                self._relay.apply(conn.recv())
        except (EOFError, OSError):
            return False
        return True
