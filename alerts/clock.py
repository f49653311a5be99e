"""Clocks for escalation due times: wall time live, a manual or file-driven clock in tests/replay.

Every due time in the database is in this clock's seconds, so a test of a 3-minute chain advances
the clock instead of waiting, and a replay gives the same sequence. Leases (is a worker still
alive?) are a process matter and always use the wall clock.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch, by this clock."""
        ...


class WallClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to (tests and replays in one process)."""

    def __init__(self, start: float = 1_767_225_600.0):
        self._t = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def set(self, t: float) -> None:
        with self._lock:
            self._t = t

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._t += seconds
            return self._t


class FileClock:
    """The time written in a file: drives a worker process from a test (``--clock file:PATH``)."""

    def __init__(self, path: Path):
        self.path = path
        self._last = 0.0

    def now(self) -> float:
        try:
            self._last = float(self.path.read_text().strip())
        except (OSError, ValueError):
            pass  # being rewritten: keep the last time read
        return self._last

    def set(self, t: float) -> None:
        """Write a new time atomically (used by the test that drives the worker)."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(repr(t))
        tmp.replace(self.path)


def parse_clock(spec: str) -> Clock:
    """``wall`` (default) or ``file:PATH``."""
    if spec in ("", "wall"):
        return WallClock()
    if spec.startswith("file:"):
        return FileClock(Path(spec.removeprefix("file:")))
    raise ValueError(f"unknown clock {spec!r}: use 'wall' or 'file:PATH'")
