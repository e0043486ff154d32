"""What each process of a bench costs: CPU time and peak resident memory, from /proc (Linux).

The kernel keeps both (utime + stime in `stat`, the high-water mark `VmHWM` in `status`), so a
bench reads them at the start and end of what it times instead of sampling; a process that may
exit before the end (the generator with a count) is read on every tick of the bench's wait loop
and keeps its last reading.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    cpu_s: float
    peak_rss_mb: float

    @classmethod
    def of(cls, pid: int | None) -> Usage | None:
        """The process's usage so far, or None once it is gone."""
        if pid is None:
            return None
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        # Fields after the command name (which may hold spaces) start at ")": utime, stime are
        # fields 14 and 15 of the whole line, 12 and 13 after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu_s = (int(fields[11]) + int(fields[12])) / TICKS_PER_S
        peak_kb = next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0
        )
        return cls(cpu_s, peak_kb / 1024)


class Tracker:
    """One process's usage from `start()` to its last reading (`tick()` or `stop()`)."""

    def __init__(self, name: str, pid: int | None) -> None:
        self.name = name
        self._pid = pid
        self._first: Usage | None = None
        self._last: Usage | None = None

    def start(self) -> Tracker:
        self._first = self._last = Usage.of(self._pid)
        return self

    def tick(self) -> None:
        """A process that has exited but not been reaped still has its CPU times but no
        memory lines (VmHWM reads 0): the peak is the largest seen while it lived."""
        if (usage := Usage.of(self._pid)) is not None:
            seen = self._last.peak_rss_mb if self._last else 0.0
            self._last = Usage(usage.cpu_s, max(usage.peak_rss_mb, seen))

    def figures(self, tweets: int, wall_s: float) -> dict[str, float]:
        """`cpu_us_per_tweet_<name>`, `cpu_share_<name>` (cores busy over the timed span) and
        `rss_mb_<name>` (the process's peak so far)."""
        self.tick()
        if self._first is None or self._last is None:
            return {}
        cpu_s = self._last.cpu_s - self._first.cpu_s
        return {
            f"cpu_us_per_tweet_{self.name}": round(cpu_s / tweets * 1e6, 1),
            f"cpu_share_{self.name}": round(cpu_s / wall_s, 2),
            f"rss_mb_{self.name}": round(self._last.peak_rss_mb, 1),
        }


class ChildTracker(Tracker):
    """A process that `parent` starts after the timed span began (the generator's tweet maker),
    found on a tick by its command line; all of its CPU falls within the span."""

    def __init__(self, name: str, parent: int | None, marker: str) -> None:
        super().__init__(name, None)
        self._parent = parent
        self._marker = marker

    def start(self) -> Tracker:
        return self

    def tick(self) -> None:
        if self._pid is None:
            self._pid = next(
                (pid for pid in child_pids(self._parent) if self._marker in _command(pid)), None
            )
            if self._pid is None:
                return
            self._first = Usage(0.0, 0.0)
        super().tick()


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def child_pids(pid: int | None) -> list[int]:
    """The processes `pid` started (the word count's split stage), from /proc."""
    if pid is None:
        return []
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in children.read_text().split()]
        except OSError:
            continue
    return found


def figures(trackers: list[Tracker], tweets: int, wall_s: float) -> dict[str, float]:
    found: dict[str, float] = {}
    for tracker in trackers:
        found.update(tracker.figures(tweets, wall_s))
    return found
