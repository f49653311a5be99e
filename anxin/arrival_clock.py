"""The time up to which the detector worker has read its readings: device silence is judged there.

Why: "nothing arrived" can only be judged by a clock, and the wall clock is the wrong one whenever
the worker has not yet read what did arrive. After a restart or a pause (a deploy, a crash loop,
a stopped VM, a long stall) its device states hold the readings from before, and the readings
since wait in Kafka. Judged at the wall clock, every device whose silence interval the outage
exceeded looked silent until its backlog was read: a ``device``/``silent`` alert to the nurse for
each resident, resolved seconds later.

So silence is judged at:

- the wall clock, for a partition whose every record up to the consumer's high watermark has
  been processed;
- the arrival time (``received_at``, the bridge's) of the newest reading processed from a
  partition that still has records to read;
- the earliest of these over the worker's partitions;
- held where it was for ``settle_s`` after the partitions are assigned and after the worker's
  own loop stalled for ``stall_s`` or more (a stopped process): its view of the high watermarks
  is from before, so "read everything" cannot be told yet.

What it does not cover: the bridge or the MQTT broker being down leaves nothing in Kafka to read,
so the worker is "caught up" and every device still goes silent by the wall clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

SETTLE_S = 2.0  # after an assignment or a stall: long enough for a fetch of every partition
STALL_S = 3.0  # a gap this long between two readings of the clock: the process was stopped


class ArrivalClock:
    def __init__(self, settle_s: float = SETTLE_S, stall_s: float = STALL_S):
        self.settle_s, self.stall_s = settle_s, stall_s
        self._next: dict[int, int] = {}  # partition -> the offset after the newest processed
        self._arrived: dict[int, float] = {}  # partition -> received_at of the newest processed
        self._owned: tuple[int, ...] = ()
        self._hold_until = -math.inf  # monotonic
        self._last_read: float | None = None  # monotonic time of the last ``at``
        self._last = -math.inf  # the clock last given

    def assigned(self, partitions: Iterable[int], mono: float) -> None:
        """The worker now holds ``partitions``: what it knew of the others is dropped."""
        self._owned = tuple(sorted(set(partitions)))
        for known in (self._next, self._arrived):
            for p in [p for p in known if p not in self._owned]:
                del known[p]
        self._hold_until = mono + self.settle_s

    def processed(self, partition: int, offset: int, received_at: object) -> None:
        """A record of ``partition`` at ``offset`` was processed (any record, even a bad one)."""
        if offset >= self._next.get(partition, 0):
            self._next[partition] = offset + 1
        if isinstance(received_at, int | float) and math.isfinite(received_at):
            self._arrived[partition] = max(self._arrived.get(partition, -math.inf), received_at)

    def at(self, now: float, mono: float, highwater: Callable[[int], int | None]) -> float:
        """The time device silence is judged at (never after ``now``); ``highwater(p)``: the
        offset after the newest record of partition ``p`` (None: not known yet)."""
        if self._last_read is not None and mono - self._last_read >= self.stall_s:
            self._hold_until = mono + self.settle_s  # stopped: the high watermarks are stale
        self._last_read = mono
        if mono < self._hold_until:
            return min(now, self._last)
        t = now
        for p in self._owned:
            try:
                hw = highwater(p)
            except Exception:  # not assigned any more (a rebalance under way): not known
                hw = None
            done = self._next.get(p)
            if hw is None or (done is not None and done < hw):
                t = min(t, self._arrived.get(p, -math.inf))
        self._last = t
        return t
