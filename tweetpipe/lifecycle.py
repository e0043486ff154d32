"""Graceful shutdown: SIGTERM and SIGINT ask the main loop to finish its batch and exit."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


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
