"""NEWS2 plausibility checks and a per-resident vitals alert state, over the kernel's chart.

Why this shape:
- The chart itself (bands, rounding, ``score``/``score_arrays``) is ``anxin.core.news2_chart``,
  shared with the scenario generator's ground truth; it is re-exported here.
- ``VitalsMonitor`` keeps only what it needs (latest value per parameter, the open severity,
  hourly maxima of the aggregate for the trend rule) so its JSON state fits a Faust table row.
  A worker holds one live monitor per resident, so the numeric history is kept flat in arrays,
  no Python list and float object per entry: the recent measurements of every median parameter
  in one ``array('d')`` of fixed slots (value, ts pairs), the hourly maxima as C-int triples
  (hour, max, readings); the latest value of each parameter as (value, ts) in one more
  ``array('d')``, with the device that sent it (one id for all while one device sends them).
  (A day of history: 1.4 KB, 5.5 KB as lists of lists; the latest values were 536 B as a dict
  of tuples, 192 B as the array.)
- Its saved form holds those arrays as base64 of their little-endian bytes, not as lists of
  numbers: a worker snapshots every resident every 5 s, and building (then dumping and
  deflating) nested lists of floats was the dearest part of a snapshot. The bytes are exact
  (every double's bits), and ``from_state`` still reads the list form written before.
- The chart's own alerts are unchanged (RCP 2017): aggregate >= 5 warning, >= 7 critical, a 3 in
  any single parameter warning.

The trend rule (a ``warning`` with ``reason: "trend"`` below the chart's thresholds) needs
evidence, because a nurse paged for a pulse of 61 then 80 (two spot readings, NEWS2 0) learns
nothing she can act on:
- it compares NEWS2 with NEWS2, never raw values: while every parameter scores 0 there is no
  trend, whatever the pulse did;
- the baseline is the resident's own highest aggregate of the last 24 h (leaving out the last
  hour, where the rise is), and the rise must be at least 2 points above it. RCP NEWS2 (2017)
  asks that the score be charted and followed over time and that a rising score prompt review;
  Kellett & Murray, "How to follow the NEWS" (Acute Medicine 2014; 13(3):104-107), found that
  escalation should relate the score to the patient's own earlier values (patients admitted
  with 0-2 who rose to 3 or more had ten times the in-hospital mortality). A 24 h maximum as
  the baseline, and +2 over it, is the delta-NEWS convention: a new high, not the day's swing;
- the raised score must be sustained: at least ``trend_min_readings`` readings and
  ``trend_hold_s`` (30 min) above the baseline + 2 without a dip, and the baseline itself must
  rest on at least ``trend_min_readings`` readings. A spot check (a monitor's value counts for
  ``freshness_s``, 15 min) can therefore never make a trend alone; a worn device's repeated
  measurements can.
An open trend alert stays while the score stays at the level that raised it, and resolves like
any other after ``resolve_after_s`` below it. If the chart's threshold is reached later, its
alert is raised (same alert id, ``reason`` from the chart) even at the same severity: the chart
always speaks.
"""

from __future__ import annotations

import binascii
import itertools
import math
import sys
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeGuard

import numpy as np

from anxin.core.news2_chart import (
    ACVPU_CODES,
    HR,
    INF,
    MEDIAN_OF,
    PARAMETERS,
    RR,
    SBP,
    SPO2_1,
    SPO2_2_AIR,
    SPO2_2_O2,
    TEMP10,
    Band,
    FloatArray,
    IntArray,
    News2,
    round_tenths,
    round_whole,
    score,
    score_arrays,
)

__all__ = [
    "ACVPU_CODES",
    "HR",
    "MEDIAN_OF",
    "PARAMETERS",
    "RR",
    "SBP",
    "SPO2_1",
    "SPO2_2_AIR",
    "SPO2_2_O2",
    "TEMP10",
    "Band",
    "FloatArray",
    "IntArray",
    "News2",
    "round_tenths",
    "round_whole",
    "score",
    "score_arrays",
]

# ---------------------------------------------------------------- plausibility

# Hard physiological limits: outside them the value is a sensor or transport fault, not a patient.
LIMITS: dict[str, tuple[float, float]] = {
    "hr": (20.0, 300.0),
    "spo2": (40.0, 100.0),
    "rr": (2.0, 80.0),
    "sbp": (40.0, 300.0),
    "dbp": (15.0, 200.0),
    "temp": (25.0, 45.0),
}


_NUMBER = (int, float, np.integer, np.floating)


def _finite_number(x: Any) -> TypeGuard[float]:
    return isinstance(x, _NUMBER) and not isinstance(x, bool | np.bool_) and math.isfinite(x)


def implausible(vitals: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Each part of the vitals that cannot be real: the parameters it takes out, and why (the
    rest is still measured: a watch sending ``spo2: 0`` for "no reading" keeps its pulse)."""
    out: list[tuple[tuple[str, ...], str]] = []
    for key, (lo, hi) in LIMITS.items():
        val = vitals.get(key)
        if val is None:
            continue
        kind = type(val)
        if (kind is float or kind is int) and lo <= val <= hi:  # the usual case (NaN fails here)
            continue
        if isinstance(val, bool | np.bool_) or not isinstance(val, _NUMBER):
            out.append(((key,), f"{key}: not a number"))
        elif not math.isfinite(val):
            out.append(((key,), f"{key}: not finite"))
        elif not lo <= val <= hi:
            out.append(((key,), f"{key}={val} outside {lo:g}..{hi:g}"))
    sbp, dbp = vitals.get("sbp"), vitals.get("dbp")
    if _finite_number(sbp) and _finite_number(dbp) and sbp <= dbp:
        out.append((("sbp", "dbp"), f"sbp={sbp} not above dbp={dbp}"))
    if "o2" in vitals and vitals["o2"] is not None and not isinstance(vitals["o2"], bool):
        out.append((("o2",), "o2: not a bool"))
    ac = vitals.get("acvpu")
    if ac is not None and (not isinstance(ac, str) or ac.strip().upper() not in ACVPU_CODES):
        out.append((("acvpu",), f"acvpu={ac!r} not one of A, C, V, P, U"))
    return out


def plausible(vitals: Mapping[str, Any]) -> list[str]:
    """Reasons the vitals cannot be real (empty list = plausible), for dead-lettering."""
    return [reason for _, reason in implausible(vitals)]


# ---------------------------------------------------------------- per-resident state


def _median(values: list[float]) -> float:
    """``statistics.median`` (the same value), without its generality's cost."""
    data = sorted(values)
    n = len(data)
    if n % 2:
        return data[n // 2]
    return (data[n // 2 - 1] + data[n // 2]) / 2


def _hours(rows: Iterable[Iterable[int]]) -> array[int]:
    """Rows of whole numbers as one C-int array (from a list: an iterator over-allocates)."""
    return array("i", list(itertools.chain.from_iterable(rows)))


def _rows(flat: array[Any], width: int) -> list[list[Any]]:
    return [flat[i : i + width].tolist() for i in range(0, len(flat), width)]


_SWAP = sys.byteorder == "big"  # saved forms are little-endian, whatever the host
assert array("i").itemsize == 4 and array("d").itemsize == 8  # the saved forms' "<i4", "<f8"


def _pack(a: array[Any]) -> str:
    """``a``'s items as little-endian bytes in base64 text (JSON-able; a state may be loaded
    on another machine, as ``fall.py``'s int16 queues)."""
    if _SWAP:
        a = array(a.typecode, a)
        a.byteswap()
    return binascii.b2a_base64(a, newline=False).decode("ascii")


def _unpack(typecode: str, text: str) -> array[Any]:
    a = array(typecode, binascii.a2b_base64(text))
    if _SWAP:
        a.byteswap()
    return a


def _columns(a: array[Any], width: int) -> array[Any]:
    """Rows of ``width`` items as their columns, one after the other: a column of timestamps
    (or of hours) deflates far better than rows that mix it with small numbers."""
    out = a[0::width]
    for j in range(1, width):
        out += a[j::width]
    return out


def _rows_of(columns: array[Any], width: int) -> array[Any]:
    """Inverse of :func:`_columns`."""
    n = len(columns) // width
    a = array(columns.typecode, columns)
    for j in range(width):
        a[j::width] = columns[j * n : (j + 1) * n]
    return a


def _slots() -> dict[str, tuple[int, int]]:
    """Where each median parameter's measurements sit in ``VitalsMonitor.recent``: the offset
    of its first pair (in doubles) and how many (value, ts) pairs it keeps."""
    slots, at = {}, 0
    for key, keep in MEDIAN_OF.items():
        slots[key] = (at, keep)
        at += 2 * keep
    return slots


_SLOT = _slots()
_AT = {key: i for i, key in enumerate(PARAMETERS)}  # a parameter's pair in ``VitalsMonitor.held``
_INDICES = range(len(PARAMETERS))
_NO_HELD: array[float] = array("d")  # shared, never written: nothing measured yet
# (value, ts) per parameter, NaN ts: none; then a lower bound of every held ts (+inf: none
# held), so finding nothing stale costs one comparison
_EMPTY_HELD = array("d", [math.nan]) * (2 * len(PARAMETERS)) + array("d", [math.inf])
_BOUND = 2 * len(PARAMETERS)
_FRESH = tuple((2 * i, 2 * i + 1, key) for i, key in enumerate(PARAMETERS))
_PAIRS = {k: tuple((i, i + 1) for i in range(at, at + 2 * n, 2)) for k, (at, n) in _SLOT.items()}
_UNUSED = array("d", [math.nan]) * sum(2 * keep for _, keep in _SLOT.values())  # NaN: empty
_NO_RECENT: array[float] = array("d")  # shared, never written: no measurement yet


SEVERITY_RANK: dict[str | None, int] = {None: 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Raise:
    """Open (or escalate) the resident's vitals alert."""

    kind: ClassVar[str] = "vitals"
    severity: str
    ts: float
    details: dict[str, Any]


@dataclass(frozen=True)
class Resolve:
    """Close the resident's open vitals alert."""

    kind: ClassVar[str] = "vitals"
    ts: float


Decision = Raise | Resolve


@dataclass(frozen=True)
class VitalsConfig:
    """Per-resident settings (registry ``vitals:`` overrides); not part of the stored state."""

    spo2_scale: int = 1
    freshness_s: float = 900.0  # a parameter older than this drops out of the score
    resolve_after_s: float = 1800.0  # the score must stay low this long to resolve
    trend: bool = True
    trend_rise: int = 2  # NEWS2 points above the 24 h maximum
    trend_baseline_s: float = 86_400.0  # the baseline: the highest aggregate of this long
    trend_recent_s: float = 3600.0  # ... leaving out this last stretch, where the rise is
    trend_hold_s: float = 1800.0  # the raised score must hold this long
    trend_min_readings: int = 3  # ... over at least this many readings (and so the baseline)


HOUR_S = 3600.0  # the aggregate's history is kept as hourly maxima
STEP_BACK_S = 60.0  # a reading this much older than its device's held values: its clock went back


def _severity(result: News2) -> tuple[str | None, str]:
    if result.total >= 7:
        return "critical", "aggregate>=7"
    if result.total >= 5:
        return "warning", "aggregate>=5"
    if result.max_single >= 3:
        return "warning", "single parameter 3"
    return None, ""


DEFAULT_CONFIG = VitalsConfig()  # one for every resident without settings of their own (frozen)


@dataclass(slots=True)  # many live ones in a worker: no per-instance dict
class VitalsMonitor:
    """One resident's vitals alert: merges every device's latest values, one open alert.

    ``observe`` on each reading, ``check`` from a timer (it can only resolve). Feed one clock:
    device ``ts`` is fine; out-of-order readings never replace newer values.
    """

    config: VitalsConfig = field(default_factory=lambda: DEFAULT_CONFIG)
    # The latest measurement of each parameter: (value, ts) at ``2 * _AT[key]``, NaN ts when
    # none (``latest`` gives them as a dict). A value that is not a number (ACVPU, "o2" as text)
    # is in ``other``, its ts in ``held``. ``held_by``: the device of every held value while one
    # device sent them all, else a list of each value's device by index ("" for none).
    held: array[float] = field(default_factory=lambda: _NO_HELD)
    other: dict[str, Any] | None = None
    held_by: str | list[str] = ""
    open: str | None = None  # severity of the open alert
    low_since: float | None = None
    now: float = -INF
    # The last few measurements of each median parameter (``_SLOT``: value, ts pairs, ts
    # ascending, unused pairs NaN at the end): the score uses their median, so one noisy reading
    # (a pulse spike, a slipped probe) does not page a nurse, while a real change shows after
    # the second reading.
    recent: array[float] = field(default_factory=lambda: _NO_RECENT)
    # Hourly maxima of the aggregate: (hour, max aggregate, readings) triples flat, by hour;
    # ``hour`` is the hour's start / HOUR_S (a whole number for any epoch seconds: C ints).
    hours: array[int] = field(default_factory=lambda: array("i"))
    rise: list[float] | None = None  # [since, readings, baseline]: the score above the baseline
    reason: str | None = None  # why the open alert was raised ("trend" or the chart's reason)
    trend_base: int | None = None  # the baseline an open trend alert was raised over

    # --- state

    def to_state(self) -> dict[str, Any]:
        """JSON-able state (orjson, json). ``recent64``, ``hours64``: ``recent`` and ``hours``
        by columns (``_columns``) in ``_pack`` form, "" when empty. ``latest`` holds tuples:
        they dump as lists."""
        return {
            "latest": self.latest,
            "open": self.open,
            "low_since": self.low_since,
            "now": None if self.now == -INF else self.now,
            "recent64": _pack(_columns(self.recent, 2)),
            "hours64": _pack(_columns(self.hours, 3)),
            "rise": None if self.rise is None else list(self.rise),
            "why": self.reason,
            "tbase": self.trend_base,
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any] | None, config: VitalsConfig | None = None
    ) -> VitalsMonitor:
        """Inverse of :meth:`to_state`; also reads the list form written before it (``recent``:
        parameter -> [[value, ts], ...], ``hours``: [[hour start, max, readings], ...])."""
        cfg = config or DEFAULT_CONFIG
        if not state:
            return cls(cfg)
        now = state.get("now")
        rise = state.get("rise")
        monitor = cls(
            cfg,
            open=state.get("open"),
            low_since=state.get("low_since"),
            now=-INF if now is None else float(now),
            rise=None if rise is None else list(rise),
            reason=state.get("why"),
            trend_base=state.get("tbase"),
        )
        for key, (value, ts, device_id) in state.get("latest", {}).items():
            if key in _AT:
                monitor._hold(key, value, float(ts), device_id)
        if "recent64" in state:
            recent = _unpack("d", state["recent64"])
            if len(recent) == len(_UNUSED):  # else none yet, or other slots: medians start afresh
                monitor.recent = _rows_of(recent, 2)
            monitor.hours = _rows_of(_unpack("i", state["hours64"]), 3)
            return monitor
        monitor.hours = _hours(
            (round(start / HOUR_S), int(top), int(n)) for start, top, n in state.get("hours", [])
        )
        for key, pairs in state.get("recent", {}).items():
            if key in _SLOT and pairs:
                monitor._keep(key, [(float(v), float(t)) for v, t in pairs])
        return monitor

    # --- inputs

    def observe(self, ts: float, vitals: Mapping[str, Any], device_id: str = "") -> Decision | None:
        """Take one (already plausible) reading and decide."""
        if ts < self.now - STEP_BACK_S and self._stepped_back(ts, device_id):
            self._forget_device(ts, device_id)
        measured = False
        h, other = self.held, self.other
        same = self.held_by is device_id  # the usual case: the device that sent every value
        for key in PARAMETERS:
            val = vitals.get(key)
            if val is None or (isinstance(val, float) and val != val):
                continue  # not measured: None or NaN, as the chart's ``score`` reads it
            measured = True
            if key in MEDIAN_OF and isinstance(val, int | float):
                i = _AT[key] * 2
                if same and h and h[i + 1] <= ts and not (other and key in other):
                    h[i], h[i + 1] = val, ts  # ``_hold`` inline: a newer number for a held one
                else:
                    self._hold(key, val, ts, device_id)
                    h, other = self.held, self.other
                    same = self.held_by is device_id
                self._remember(key, float(val), ts)
            else:
                self._hold(key, val, ts, device_id)
                h, other = self.held, self.other
                same = self.held_by is device_id
        self.now = max(self.now, ts)
        return self._evaluate(self.now, track=measured and self.config.trend)

    def _hold(self, key: str, val: Any, ts: float, device_id: str) -> None:
        """``val`` as ``key``'s latest measurement, unless a newer one is held."""
        h = self.held
        if not h:
            h = self.held = array("d", _EMPTY_HELD)  # this monitor's own, written in place
        i = _AT[key]
        if ts < h[2 * i + 1]:  # a NaN ts (none held) compares False
            return
        other = self.other
        if key in MEDIAN_OF and isinstance(val, int | float):
            h[2 * i] = val  # the score uses the median of ``recent``, a float, in any case
            if other and key in other:
                del other[key]
        else:
            h[2 * i] = math.nan
            if other is None:
                other = self.other = {}
            other[key] = val
        h[2 * i + 1] = ts
        if ts < h[_BOUND]:
            h[_BOUND] = ts
        by = self.held_by
        if by is device_id or by == device_id:
            return
        if isinstance(by, str):
            if not any(h[2 * j + 1] == h[2 * j + 1] for j in range(len(PARAMETERS)) if j != i):
                self.held_by = device_id  # the only value held: its device is every value's
                return
            by = self.held_by = [by if h[2 * j + 1] == h[2 * j + 1] else "" for j in _INDICES]
        by[i] = device_id

    def _held_by(self, i: int, device_id: str) -> bool:
        by = self.held_by
        return (by if isinstance(by, str) else by[i]) == device_id

    def _stepped_back(self, ts: float, device_id: str) -> bool:
        """``device_id`` holds a value measured more than ``STEP_BACK_S`` after ``ts``: its
        clock stepped back (a time sync after running fast), not a late reading."""
        h = self.held
        return bool(h) and any(
            h[2 * i + 1] > ts + STEP_BACK_S and self._held_by(i, device_id) for i in _INDICES
        )

    def _forget_device(self, ts: float, device_id: str) -> None:
        """After ``device_id``'s clock stepped back (its reading at ``ts``): its latest values
        are dropped, so its readings on the new clock count at once (kept, newer by the old
        clock, they hid every reading until the clock caught up: an SpO2 of 85 went unscored
        for as long as the step), and the measurements in their medians are moved onto the new
        clock, just before ``ts`` (one noisy reading still does not page). The monitor's time
        goes back to the newest value left."""
        h, other = self.held, self.other
        mine = [i for i in _INDICES if h[2 * i + 1] == h[2 * i + 1] and self._held_by(i, device_id)]
        shift = max(h[2 * i + 1] for i in mine) - ts + 1e-3
        newest = -INF
        for i, key in enumerate(PARAMETERS):
            held_ts = h[2 * i + 1]
            if held_ts != held_ts:
                continue
            if i not in mine:
                newest = max(newest, held_ts)
                continue
            h[2 * i] = h[2 * i + 1] = math.nan
            if other and key in other:
                del other[key]
            if not isinstance(self.held_by, str):
                self.held_by[i] = ""
            if key in _SLOT and self.recent:
                self._keep(key, [(v, t - shift) for v, t in self._kept(key)])
        if isinstance(self.held_by, str):
            self.held_by = ""  # every value was this device's
        held = [h[2 * i + 1] for i in _INDICES if h[2 * i + 1] == h[2 * i + 1]]
        h[_BOUND] = min(held, default=math.inf)
        self.now = newest

    @property
    def latest(self) -> dict[str, tuple[Any, float, str]]:
        """The latest measurement of each parameter held: key -> (value, ts, device)."""
        if not self.held:
            return {}
        h = self.held.tolist()  # one call, then list items: a snapshot takes this for everyone
        other, by = self.other, self.held_by
        devices = itertools.repeat(by) if isinstance(by, str) else by
        out = {}
        for key, value, ts, device in zip(PARAMETERS, h[0::2], h[1::2], devices, strict=False):
            if ts == ts:
                out[key] = (other[key] if other and key in other else value, ts, device)
        return out

    def _drop_stale(self, now: float) -> bool:
        """Forget measurements older than the freshness window; True if any is left."""
        h = self.held
        if not h or h[_BOUND] == math.inf:
            return False
        window, left, bound = self.config.freshness_s, False, math.inf
        if now - h[_BOUND] <= window:
            return True  # even the oldest held value is fresh
        for i in _INDICES:
            ts = h[2 * i + 1]
            if now - ts <= window:
                left = True
                bound = min(bound, ts)
            elif ts == ts:  # held, and stale
                h[2 * i] = h[2 * i + 1] = math.nan
                key = PARAMETERS[i]
                if self.other and key in self.other:
                    del self.other[key]
                if not isinstance(self.held_by, str):
                    self.held_by[i] = ""
        h[_BOUND] = bound
        return left

    def _kept(self, key: str) -> list[tuple[float, float]]:
        """The (value, ts) pairs held for a median parameter, oldest first."""
        h = self.recent
        if not h:
            return []
        at, keep = _SLOT[key]
        return [(h[i], h[i + 1]) for i in range(at, at + 2 * keep, 2) if h[i + 1] == h[i + 1]]

    def _keep(self, key: str, pairs: list[tuple[float, float]]) -> None:
        """Hold the last pairs of ``pairs`` (oldest first) that fit the parameter's slot."""
        if not self.recent:
            self.recent = array("d", _UNUSED)  # this monitor's own, written in place
        h = self.recent
        at, keep = _SLOT[key]
        pairs = pairs[-keep:]
        for j in range(keep):
            h[at + 2 * j], h[at + 2 * j + 1] = pairs[j] if j < len(pairs) else (math.nan, math.nan)

    def _remember(self, key: str, value: float, ts: float) -> None:
        """Measured ``value`` at ``ts`` (a measurement at a ts already held is replaced)."""
        h = self.recent
        if not h:
            h = self.recent = array("d", _UNUSED)  # this monitor's own, written in place
        at, keep = _SLOT[key]
        end = at + 2 * keep
        last = h[end - 1]
        if last < ts:  # the usual case: full (NaN is not < ts), and newer than all: shift
            h[at : end - 2] = h[at + 2 : end]
            h[end - 2], h[end - 1] = value, ts
            return
        n = 0  # pairs held
        while n < keep and h[at + 2 * n + 1] == h[at + 2 * n + 1]:
            n += 1
        if n < keep and (n == 0 or h[at + 2 * n - 1] < ts):  # room, and newer than all
            h[at + 2 * n], h[at + 2 * n + 1] = value, ts
            return
        # out of order: in its place by ts
        history = [x for x in self._kept(key) if x[1] != ts] + [(value, float(ts))]
        history.sort(key=lambda x: x[1])
        self._keep(key, history)

    def check(self, now: float) -> Decision | None:
        """Timer tick: lets a low score resolve when no new readings arrive."""
        self.now = max(self.now, now)
        return self._evaluate(self.now)

    def current(self, now: float | None = None) -> News2:
        """NEWS2 of the fresh values at ``now`` (default: latest time seen)."""
        return score(self._fresh_values(self.now if now is None else now), self.config.spo2_scale)

    def _fresh_values(self, t: float) -> dict[str, Any]:
        window = self.config.freshness_s
        fresh: dict[str, Any] = {}
        held, other = self.held, self.other
        if held:
            for at, ts_at, key in _FRESH:
                if t - held[ts_at] <= window:  # a NaN ts (none held) compares False
                    fresh[key] = other[key] if other and key in other else held[at]
        h = self.recent
        if not h:
            return fresh
        for key, pairs in _PAIRS.items():
            if key in fresh:
                # an unused pair's NaN ts is never within the window
                values = [h[i] for i, j in pairs if t - h[j] <= window]
                if values:
                    fresh[key] = _median(values)
        return fresh

    # --- the trend rule

    def _baseline(self, now: float) -> tuple[int, int] | None:
        """(highest aggregate, readings) of the baseline window, or None without evidence."""
        cfg = self.config
        h = self.hours
        first, last = now - cfg.trend_baseline_s - HOUR_S, now - cfg.trend_recent_s
        top, readings = None, 0
        for i in range(0, len(h), 3):  # (hour, max, readings) rows: one pass, no slices
            start = h[i] * HOUR_S
            if first <= start and start + HOUR_S <= last:
                readings += h[i + 2]
                if top is None or h[i + 1] > top:
                    top = h[i + 1]
        if top is None or readings < cfg.trend_min_readings:
            return None
        return top, readings

    def _track(self, now: float, total: int) -> None:
        """Record this reading's aggregate (hourly maxima) and whether it is above the baseline."""
        cfg = self.config
        hour = math.floor(now / HOUR_S)
        h = self.hours
        # the current hour is the last one but after a clock step back
        for i in range(len(h) - 3, -1, -3):
            if h[i] == hour:
                h[i + 1], h[i + 2] = max(h[i + 1], total), h[i + 2] + 1
                break
        else:
            rows = [*_rows(h, 3), [hour, total, 1]]
            rows.sort(key=lambda b: b[0])
            h = _hours(rows)
        horizon = now - cfg.trend_baseline_s - 2 * HOUR_S
        if h and min(h[::3]) * HOUR_S < horizon:
            h = _hours(b for b in _rows(h, 3) if b[0] * HOUR_S >= horizon)
        self.hours = h
        if total < cfg.trend_rise:  # no rise over any baseline (a baseline's maximum is >= 0)
            self.rise = None
            return
        base = self._baseline(now)
        if base is None or total < base[0] + cfg.trend_rise:
            self.rise = None
        elif self.rise is None:
            self.rise = [now, 1, base[0]]
        else:
            self.rise = [self.rise[0], self.rise[1] + 1, base[0]]

    def _trend(self, now: float, result: News2) -> dict[str, Any] | None:
        """The evidence for a trend warning at ``now``, or None."""
        cfg = self.config
        if result.total == 0:
            return None  # never a trend while every parameter scores 0
        if self.open is not None and self.reason == "trend" and self.trend_base is not None:
            if result.total >= self.trend_base + cfg.trend_rise:  # still at the raised level
                return {"baseline_24h_max": self.trend_base, "news2": result.total}
            return None
        if (
            self.rise is None
            or self.rise[1] < cfg.trend_min_readings
            or now - self.rise[0] < cfg.trend_hold_s
            or result.total < self.rise[2] + cfg.trend_rise
        ):
            return None
        return {
            "rule": f"NEWS2 >= {cfg.trend_rise} above its 24 h maximum, held",
            "baseline_24h_max": int(self.rise[2]),
            "news2": result.total,
            "since": self.rise[0],
            "readings": int(self.rise[1]),
        }

    # --- internals

    def _devices(self) -> list[str]:
        """The devices whose measurements are held, sorted."""
        by = self.held_by
        if isinstance(by, str):
            return [by] if by else []
        return sorted({d for d in by if d})

    def _maybe_resolve(self, now: float) -> Resolve | None:
        assert self.low_since is not None
        if now - self.low_since < self.config.resolve_after_s:
            return None
        self.open, self.low_since, self.reason, self.trend_base = None, None, None, None
        return Resolve(now)

    def _evaluate(self, now: float, track: bool = False) -> Decision | None:
        cfg = self.config
        if not self._drop_stale(now):
            # Nothing fresh: no new evidence. A low streak already under way may still complete
            # (the last known score was low); otherwise the alert stays as it is.
            if self.open is not None and self.low_since is not None:
                return self._maybe_resolve(now)
            return None
        result = self.current(now)
        if track:
            self._track(now, result.total)
        severity, reason = _severity(result)
        trend = None
        if severity is None and cfg.trend:
            trend = self._trend(now, result)
            if trend is not None:
                severity, reason = "warning", "trend"
        if severity is None:
            if self.open is None:
                return None
            if self.low_since is None:
                self.low_since = now
            return self._maybe_resolve(now)
        self.low_since = None
        rank, open_rank = SEVERITY_RANK[severity], SEVERITY_RANK[self.open]
        chart_after_trend = rank == open_rank and self.reason == "trend" and reason != "trend"
        if rank < open_rank or (rank == open_rank and not chart_after_trend):
            return None
        self.open, self.reason = severity, reason
        if reason == "trend" and trend is not None:
            self.trend_base = int(trend["baseline_24h_max"])
        details: dict[str, Any] = {
            "news2": result.total,
            "scores": dict(result.parameters),
            "partial": result.partial,
            "reason": reason,
            "values": self._fresh_values(now),
            "devices": self._devices(),
            "spo2_scale": cfg.spo2_scale,
        }
        if trend is not None:
            details["trend"] = trend
        return Raise(severity, now, details)
