"""Graceful shutdown (SIGTERM and SIGINT ask the main loop to finish its batch and exit), and
the start/stop shape every managed server shares."""

from __future__ import annotations

import ctypes
import logging
import signal
import threading
from abc import ABC, abstractmethod
from types import FrameType
from typing import Self

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


class StopSignal:
    """An event set by SIGTERM/SIGINT (or by code); loops check it between batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def install(self) -> StopSignal:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._event.is_set():
            raise KeyboardInterrupt  # second signal: stop now
        log.info("received %s, finishing current work", signal.Signals(signum).name)
        self._event.set()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> None:
    """In a child process: `sig` once the thread that started it is gone, even by SIGKILL
    (Linux; the same `prctl` a supervisor's child would set)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, sig)


class StartStop(ABC):
    """Something with `start()` and `stop()` that a `with` block starts and always stops:
    the local stand-ins and the servers the tests run."""

    @abstractmethod
    def start(self) -> Self:
        """Start and wait until ready; returns itself."""

    @abstractmethod
    def stop(self) -> None:
        """Stop; safe to call when not started."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
