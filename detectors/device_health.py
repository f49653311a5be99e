"""Device trouble rules (silent, offline, removed, battery low) as a small per-device state.

Why this shape:
- Time is always passed in: ``observe``/``status`` take the message time and ``check(now)`` is
  called by the caller's timer, because "nothing arrived" can only be noticed by a clock. Feed
  one clock throughout (arrival time live and in replay), not a mix of device and wall clocks.
- Each reason has at most one open alert and resolves itself when its condition clears, so the
  alerts side sees a clean raise/resolve pair per episode.
- Battery alerts once per discharge (a noisy 14.9/15.1 % reading must not flap): warning and
  critical each fire at most once until the battery has been charged above ``battery_rearm``.
- ``silent`` is suppressed while the device has said it is offline: one cause, one alert.
- The silence expectation fits the device (``config_for``): an interval the registry sets wins;
  else a spot-check ``monitor`` is never ``silent`` (it reports when someone uses it, so hours
  without a reading are its normal life, not a fault: adherence is a care question, not a device
  alarm); else a worn device (watch, pendant, tracker) expects ``DEFAULT_SILENT_AFTER_S`` (600 s)
  until it has ``LEARN_MIN_GAPS`` gaps of its own, then ``LEARN_MARGIN`` x the 90th percentile of
  its last ``LEARN_GAPS`` inter-arrival gaps, clamped to [600 s, ``LEARN_CAP_S`` = 1800 s]. The
  floor keeps a fast watch's brief dropouts (a lift, a dead spot, a relay reconnecting) quiet as
  before; the cap means a worn device that stops is known within 30 minutes at worst, whatever
  it learned: it is the net for the falls the accelerometer misses. A quantile of the last 20
  gaps, not their maximum, so one outage (which raised its own alert) does not teach the device
  to be silent. The gaps are whole seconds in the state (about 100 bytes).
- A worker holds one live ``DeviceHealth`` per device: the gaps are an ``array('i')`` (4 bytes
  each, not a list of pointers), and the usual values of ``bat_armed`` and ``open`` are shared
  immutable objects, replaced (never changed in place) when they change.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from anxin.core.registry import DEFAULT_EXPECTED_INTERVAL_S, TYPE_EXPECTED_INTERVAL_S

REASONS = ("silent", "offline", "removed", "battery_low")

DEFAULT_SILENT_AFTER_S = DEFAULT_EXPECTED_INTERVAL_S  # 600 s
LEARN_GAPS = 20  # recent inter-arrival gaps kept per device
LEARN_MIN_GAPS = 6  # fewer than this: the default still applies
LEARN_QUANTILE = 0.9
LEARN_MARGIN = 1.5
LEARN_CAP_S = 1800.0  # a worn device's learned silence never waits longer than this
# Device types whose silence is not a fault by default (None: no ``silent`` alert at all).
TYPE_SILENT_AFTER_S: dict[str, float | None] = TYPE_EXPECTED_INTERVAL_S
GAP_MAX_S = 2**31 - 1  # a gap is kept as a C int (68 years: any longer one learns the same cap)

# Shared immutable values: (warning, critical) re-armed flags, and no open alert.
_ARMED: dict[tuple[bool, bool], tuple[bool, bool]] = {
    (a, b): (a, b) for a in (True, False) for b in (True, False)
}
_NONE_OPEN: Mapping[str, str] = MappingProxyType({})
_NO_GAPS: array[int] = array("i")  # never changed in place: replaced when a gap is added


def _gaps(values: Iterable[Any]) -> array[int]:
    return array("i", (min(int(g), GAP_MAX_S) for g in values)) or _NO_GAPS


@dataclass(frozen=True)
class Raise:
    kind: ClassVar[str] = "device"
    reason: str
    severity: str
    ts: float
    details: dict[str, Any]


@dataclass(frozen=True)
class Resolve:
    kind: ClassVar[str] = "device"
    reason: str
    ts: float


Decision = Raise | Resolve


@functools.lru_cache(maxsize=64)
def config_for(
    base: DeviceHealthConfig, device_type: str | None, expected_interval_s: float | None
) -> DeviceHealthConfig:
    """The rules for one registry device: its own interval wins, then its type's default."""
    if expected_interval_s is not None:
        return dataclasses.replace(base, silent_after_s=float(expected_interval_s), learn=False)
    if device_type in TYPE_SILENT_AFTER_S:
        return dataclasses.replace(
            base, silent_after_s=TYPE_SILENT_AFTER_S[device_type], learn=False
        )
    return base


def learned_silence(gaps: Sequence[int], floor: float, cap: float) -> float | None:
    """The silence a device's own recent gaps justify, or None until there are enough of them."""
    if len(gaps) < LEARN_MIN_GAPS:
        return None
    if LEARN_MARGIN * max(gaps) <= floor:  # the usual case, a device faster than the floor
        return floor
    ranked = sorted(gaps)
    high = ranked[min(len(ranked) - 1, math.ceil(LEARN_QUANTILE * len(ranked)) - 1)]
    return min(max(floor, LEARN_MARGIN * high), max(floor, cap))


@dataclass(frozen=True)
class DeviceHealthConfig:
    """``silent_after_s`` None: never ``silent``; ``learn``: its cadence may lengthen it."""

    silent_after_s: float | None = DEFAULT_SILENT_AFTER_S
    learn: bool = True
    learn_cap_s: float = LEARN_CAP_S
    offline_grace_s: float = 120.0
    removed_grace_s: float = 300.0
    battery_warning: float = 0.15  # fractions, as in telemetry
    battery_critical: float = 0.05
    battery_rearm: float = 0.30


DEFAULT_CONFIG = DeviceHealthConfig()  # one for every device without its own (it is frozen)


@dataclass(slots=True)  # many live ones in a worker: no per-instance dict
class DeviceHealth:
    """Trouble state of one device: feed telemetry, status messages and timer ticks."""

    config: DeviceHealthConfig = field(default_factory=lambda: DEFAULT_CONFIG)
    last_seen: float | None = None
    offline_since: float | None = None
    unworn_since: float | None = None
    removed_event: bool = False
    battery: float | None = None
    bat_armed: tuple[bool, bool] = (True, True)  # (warning, critical)
    # reason -> severity; replaced, never changed in place (the empty one is shared)
    open: Mapping[str, str] = field(default_factory=lambda: _NONE_OPEN)
    # recent inter-arrival gaps, whole seconds (``gaps``: as a list)
    gap_s: array[int] = field(default_factory=lambda: _NO_GAPS)

    @property
    def gaps(self) -> list[int]:
        """The recent inter-arrival gaps, whole seconds, oldest first."""
        return self.gap_s.tolist()

    @gaps.setter
    def gaps(self, values: Iterable[int]) -> None:
        self.gap_s = _gaps(values)

    def silent_after(self) -> float | None:
        """How long a silence may last before it is an alert (None: never), as of now."""
        cfg = self.config
        if cfg.silent_after_s is None or not cfg.learn:
            return cfg.silent_after_s
        learned = learned_silence(self.gap_s, cfg.silent_after_s, cfg.learn_cap_s)
        return cfg.silent_after_s if learned is None else learned

    # --- state

    def to_state(self) -> dict[str, Any]:
        return {
            "seen": self.last_seen,
            "off": self.offline_since,
            "unworn": self.unworn_since,
            "rm": self.removed_event,
            "bat": self.battery,
            "armed": list(self.bat_armed),
            "open": dict(self.open),
            "gaps": self.gap_s.tolist(),
            "after": self.silent_after(),  # for the caller's timer
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any] | None, config: DeviceHealthConfig | None = None
    ) -> DeviceHealth:
        h = cls(config or DEFAULT_CONFIG)
        if state:
            h.last_seen, h.offline_since = state["seen"], state["off"]
            h.unworn_since, h.removed_event = state["unworn"], bool(state["rm"])
            warning, critical = (bool(x) for x in state["armed"])
            h.battery, h.bat_armed = state["bat"], _ARMED[warning, critical]
            h.open = dict(state["open"]) or _NONE_OPEN
            h.gap_s = _gaps(list(state.get("gaps", ()))[-LEARN_GAPS:])
        return h

    # --- inputs

    def observe(self, ts: float, telemetry: Mapping[str, Any]) -> list[Decision]:
        """One telemetry message (fields ``battery``, ``worn``, ``event`` are used)."""
        out: list[Decision] = []
        if self.last_seen is not None and ts > self.last_seen and self.config.learn:
            gap = array("i", (min(round(ts - self.last_seen), GAP_MAX_S),))
            self.gap_s = self.gap_s[1 - LEARN_GAPS :] + gap  # an exact-size new array
        self.last_seen = ts if self.last_seen is None else max(self.last_seen, ts)
        if "silent" in self.open:
            out.append(self._resolve("silent", ts))
        self.offline_since = None  # it talks, so it is online
        if "offline" in self.open:
            out.append(self._resolve("offline", ts))

        worn, event = telemetry.get("worn"), telemetry.get("event")
        if worn is True:
            self.unworn_since, self.removed_event = None, False
            if "removed" in self.open:
                out.append(self._resolve("removed", ts))
        elif worn is False and self.unworn_since is None:
            self.unworn_since = ts
        if event == "removed":
            self.removed_event = True
            if self.unworn_since is None:
                self.unworn_since = ts

        out.extend(self._battery(ts, telemetry.get("battery")))
        out.extend(self.check(ts))
        return out

    def status(self, ts: float, status: str) -> list[Decision]:
        """Retained MQTT status (``"online"``/``"offline"``, the last will)."""
        out: list[Decision] = []
        if status == "offline":
            if self.offline_since is None:
                self.offline_since = ts
        elif status == "online":
            if self.offline_since is not None:  # reconnected: the silence clock restarts
                self.last_seen = ts if self.last_seen is None else max(self.last_seen, ts)
            self.offline_since = None
            if "offline" in self.open:
                out.append(self._resolve("offline", ts))
        out.extend(self.check(ts))
        return out

    def check(self, now: float) -> list[Decision]:
        """Timer tick: raise what has lasted past its grace period."""
        cfg = self.config
        silent_after = self.silent_after()
        out: list[Decision] = []
        if (
            self.offline_since is not None
            and "offline" not in self.open
            and now - self.offline_since >= cfg.offline_grace_s
        ):
            out.append(
                self._raise(
                    "offline", "warning", self.offline_since, {"offline_since": self.offline_since}
                )
            )
        if (
            silent_after is not None
            and self.last_seen is not None
            and self.offline_since is None
            and "silent" not in self.open
            and now - self.last_seen > silent_after
        ):
            out.append(
                self._raise(
                    "silent",
                    "warning",
                    self.last_seen + silent_after,
                    {
                        "last_seen": self.last_seen,
                        "silent_s": round(now - self.last_seen, 1),
                        "expected_s": round(silent_after, 1),
                    },
                )
            )
        if (
            self.unworn_since is not None
            and "removed" not in self.open
            and (self.removed_event or now - self.unworn_since >= cfg.removed_grace_s)
        ):
            ts = now if self.removed_event else self.unworn_since
            out.append(
                self._raise(
                    "removed",
                    "warning",
                    ts,
                    {"since": self.unworn_since, "event": self.removed_event},
                )
            )
        return out

    # --- internals

    def _battery(self, ts: float, level: Any) -> list[Decision]:
        if isinstance(level, bool) or not isinstance(level, int | float):
            return []
        if not (math.isfinite(level) and 0.0 <= level <= 1.0):
            return []
        cfg = self.config
        self.battery = float(level)
        out: list[Decision] = []
        if level >= cfg.battery_rearm:
            self.bat_armed = _ARMED[True, True]
        if level >= cfg.battery_warning:
            # Resolved once charged (re-armed), not when a reading jitters back over 15 %: one
            # alert per discharge, and its critical step keeps the same episode.
            if "battery_low" in self.open and level >= cfg.battery_rearm:
                out.append(self._resolve("battery_low", ts))
            return out
        severity = "critical" if level < cfg.battery_critical else "warning"
        idx = 1 if severity == "critical" else 0
        current = self.open.get("battery_low")
        if self.bat_armed[idx] and current != "critical" and current != severity:
            # no warning after critical in the same discharge
            self.bat_armed = _ARMED[False, False] if idx else _ARMED[False, self.bat_armed[1]]
            out.append(self._raise("battery_low", severity, ts, {"battery": round(level, 3)}))
        return out

    def _raise(self, reason: str, severity: str, ts: float, details: dict[str, Any]) -> Raise:
        self.open = {**self.open, reason: severity}
        return Raise(reason, severity, ts, details)

    def _resolve(self, reason: str, ts: float) -> Resolve:
        if reason in self.open:
            self.open = {k: v for k, v in self.open.items() if k != reason} or _NONE_OPEN
        return Resolve(reason, ts)
