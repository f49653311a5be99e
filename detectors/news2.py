"""NEWS2 plausibility checks and a per-resident vitals alert state, over the kernel's chart.

Why this shape:
- The chart itself (bands, rounding, ``score``/``score_arrays``) is ``anxin.core.news2_chart``,
  shared with the scenario generator's ground truth; it is re-exported here.
- ``VitalsMonitor`` keeps only what it needs (latest value per parameter, the open severity, a
  few 5-minute pulse buckets for the trend rule) so its JSON state fits a Faust table row.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
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
    _present,
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


def plausible(vitals: Mapping[str, Any]) -> list[str]:
    """Reasons the vitals cannot be real (empty list = plausible), for dead-lettering."""
    reasons: list[str] = []
    for key, (lo, hi) in LIMITS.items():
        if key not in vitals or vitals[key] is None:
            continue
        val = vitals[key]
        if isinstance(val, bool | np.bool_) or not isinstance(val, _NUMBER):
            reasons.append(f"{key}: not a number")
        elif not math.isfinite(val):
            reasons.append(f"{key}: not finite")
        elif not lo <= val <= hi:
            reasons.append(f"{key}={val} outside {lo:g}..{hi:g}")
    sbp, dbp = vitals.get("sbp"), vitals.get("dbp")
    if _finite_number(sbp) and _finite_number(dbp) and sbp <= dbp:
        reasons.append(f"sbp={sbp} not above dbp={dbp}")
    if "o2" in vitals and vitals["o2"] is not None and not isinstance(vitals["o2"], bool):
        reasons.append("o2: not a bool")
    ac = vitals.get("acvpu")
    if ac is not None and (not isinstance(ac, str) or ac.strip().upper() not in ACVPU_CODES):
        reasons.append(f"acvpu={ac!r} not one of A, C, V, P, U")
    return reasons


# ---------------------------------------------------------------- per-resident state

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
    trend_window_s: float = 3600.0
    trend_rise: float = 0.30  # pulse rise over the window that warns while aggregate < 5
    trend_bucket_s: float = 300.0


def _severity(result: News2) -> tuple[str | None, str]:
    if result.total >= 7:
        return "critical", "aggregate>=7"
    if result.total >= 5:
        return "warning", "aggregate>=5"
    if result.max_single >= 3:
        return "warning", "single parameter 3"
    return None, ""


@dataclass
class VitalsMonitor:
    """One resident's vitals alert: merges every device's latest values, one open alert.

    ``observe`` on each reading, ``check`` from a timer (it can only resolve). Feed one clock:
    device ``ts`` is fine; out-of-order readings never replace newer values.
    """

    config: VitalsConfig = field(default_factory=VitalsConfig)
    latest: dict[str, list[Any]] = field(default_factory=dict)  # param -> [value, ts, device]
    open: str | None = None  # severity of the open alert
    low_since: float | None = None
    now: float = -INF
    hr_buckets: list[list[float]] = field(default_factory=list)  # [start, sum, count]
    # The last few measurements of each numeric parameter, [[value, ts], ...]: the score uses
    # their median, so one noisy reading (a pulse spike, a slipped probe) does not page a nurse,
    # while a real change shows after the second reading.
    recent: dict[str, list[list[float]]] = field(default_factory=dict)

    # --- state

    def to_state(self) -> dict[str, Any]:
        return {
            "latest": {k: list(v) for k, v in self.latest.items()},
            "open": self.open,
            "low_since": self.low_since,
            "now": None if self.now == -INF else self.now,
            "hr": [list(b) for b in self.hr_buckets],
            "recent": {k: [list(x) for x in v] for k, v in self.recent.items()},
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any] | None, config: VitalsConfig | None = None
    ) -> VitalsMonitor:
        cfg = config or VitalsConfig()
        if not state:
            return cls(cfg)
        now = state.get("now")
        return cls(
            cfg,
            {k: list(v) for k, v in state.get("latest", {}).items()},
            state.get("open"),
            state.get("low_since"),
            -INF if now is None else float(now),
            [list(b) for b in state.get("hr", [])],
            {k: [list(x) for x in v] for k, v in state.get("recent", {}).items()},
        )

    # --- inputs

    def observe(self, ts: float, vitals: Mapping[str, Any], device_id: str = "") -> Decision | None:
        """Take one (already plausible) reading and decide."""
        for key in PARAMETERS:
            val = vitals.get(key)
            if not _present(val):
                continue
            prev = self.latest.get(key)
            if prev is None or ts >= prev[1]:
                self.latest[key] = [val, ts, device_id]
            if key in MEDIAN_OF and isinstance(val, int | float):
                history = [x for x in self.recent.get(key, []) if x[1] != ts] + [[float(val), ts]]
                self.recent[key] = sorted(history, key=lambda x: x[1])[-MEDIAN_OF[key] :]
        if _present(vitals.get("hr")):
            self._add_hr(ts, float(vitals["hr"]))
        self.now = max(self.now, ts)
        return self._evaluate(self.now)

    def check(self, now: float) -> Decision | None:
        """Timer tick: lets a low score resolve when no new readings arrive."""
        self.now = max(self.now, now)
        return self._evaluate(self.now)

    def current(self, now: float | None = None) -> News2:
        """NEWS2 of the fresh values at ``now`` (default: latest time seen)."""
        return score(self._fresh_values(self.now if now is None else now), self.config.spo2_scale)

    def _fresh_values(self, t: float) -> dict[str, Any]:
        window = self.config.freshness_s
        fresh = {k: v[0] for k, v in self.latest.items() if t - v[1] <= window}
        for key in fresh.keys() & self.recent.keys():
            values = [x[0] for x in self.recent[key] if t - x[1] <= window]
            if values:
                fresh[key] = statistics.median(values)
        return fresh

    # --- internals

    def _add_hr(self, ts: float, hr: float) -> None:
        size = self.config.trend_bucket_s
        start = math.floor(ts / size) * size
        for b in self.hr_buckets:
            if b[0] == start:
                b[1] += hr
                b[2] += 1
                break
        else:
            self.hr_buckets.append([start, hr, 1])
            self.hr_buckets.sort(key=lambda b: b[0])
        horizon = max(self.now, ts) - self.config.trend_window_s - 3 * size
        self.hr_buckets = [b for b in self.hr_buckets if b[0] >= horizon]

    def _trend(self, now: float) -> dict[str, Any] | None:
        """Pulse mean of the last ~10 min against the mean of ~1 h before, or None."""
        cfg = self.config
        size = cfg.trend_bucket_s
        recent = [b for b in self.hr_buckets if b[0] >= now - 2 * size]
        base = [
            b
            for b in self.hr_buckets
            if now - cfg.trend_window_s - 2 * size <= b[0] <= now - cfg.trend_window_s + size
        ]
        if not recent or not base:
            return None
        cur = sum(b[1] for b in recent) / sum(b[2] for b in recent)
        ref = sum(b[1] for b in base) / sum(b[2] for b in base)
        if ref <= 0 or cur < ref * (1.0 + cfg.trend_rise):
            return None
        return {
            "param": "hr",
            "from": round(ref, 1),
            "to": round(cur, 1),
            "rise": round(cur / ref - 1.0, 3),
            "window_s": cfg.trend_window_s,
        }

    def _maybe_resolve(self, now: float) -> Resolve | None:
        assert self.low_since is not None
        if now - self.low_since < self.config.resolve_after_s:
            return None
        self.open, self.low_since = None, None
        return Resolve(now)

    def _evaluate(self, now: float) -> Decision | None:
        cfg = self.config
        self.latest = {k: v for k, v in self.latest.items() if now - v[1] <= cfg.freshness_s}
        if not self.latest:
            # Nothing fresh: no new evidence. A low streak already under way may still complete
            # (the last known score was low); otherwise the alert stays as it is.
            if self.open is not None and self.low_since is not None:
                return self._maybe_resolve(now)
            return None
        result = self.current(now)
        severity, reason = _severity(result)
        trend = None
        if cfg.trend and result.total < 5:
            trend = self._trend(now)
            if trend is not None and severity is None:
                severity, reason = "warning", "trend"
        if severity is None:
            if self.open is None:
                return None
            if self.low_since is None:
                self.low_since = now
            return self._maybe_resolve(now)
        self.low_since = None
        if SEVERITY_RANK[severity] <= SEVERITY_RANK[self.open]:
            return None
        self.open = severity
        details: dict[str, Any] = {
            "news2": result.total,
            "scores": dict(result.parameters),
            "partial": result.partial,
            "reason": reason,
            "values": self._fresh_values(now),
            "devices": sorted({v[2] for v in self.latest.values() if v[2]}),
            "spo2_scale": cfg.spo2_scale,
        }
        if trend is not None:
            details["trend"] = trend
        return Raise(severity, now, details)
