"""NEWS2 (RCP 2017) scoring, plausibility checks and a per-resident vitals alert state.

Why this shape:
- The chart is kept as data (upper bounds of inclusive bands on *rounded* values) so the scalar
  and the numpy form read the same table and cannot drift apart; a hypothesis test holds them
  equal.
- Rounding follows the chart: whole numbers for rr/SpO2/SBP/pulse, one decimal for temperature,
  halves up. A tiny epsilon absorbs binary noise (35.05 * 10 == 350.4999...), and because the
  scalar and vector paths do the same IEEE operations in the same order they agree bit for bit.
- An unmeasured parameter is absent, never 0, and the score says it is partial.
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
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PARAMETERS: tuple[str, ...] = ("rr", "spo2", "o2", "sbp", "hr", "acvpu", "temp")
MEDIAN_OF: dict[str, int] = {"rr": 3, "spo2": 3, "sbp": 3, "hr": 3, "temp": 3}
ACVPU_CODES: dict[str, int] = {"A": 0, "C": 1, "V": 2, "P": 3, "U": 4}
INF = math.inf
_EPS_INT = 1e-9  # rounding epsilon in whole units
_EPS_TENTH = 1e-7  # rounding epsilon in tenths (temperature)

# (upper bounds, points): score = points[first i with value <= upper[i]], values already rounded.
Band = tuple[tuple[float, ...], tuple[int, ...]]
RR: Band = ((8, 11, 20, 24, INF), (3, 1, 0, 2, 3))
SPO2_1: Band = ((91, 93, 95, INF), (3, 2, 1, 0))
SPO2_2_AIR: Band = ((83, 85, 87, INF), (3, 2, 1, 0))
SPO2_2_O2: Band = ((83, 85, 87, 92, 94, 96, INF), (3, 2, 1, 0, 1, 2, 3))
SBP: Band = ((90, 100, 110, 219, INF), (3, 2, 1, 0, 3))
HR: Band = ((40, 50, 90, 110, 130, INF), (3, 1, 0, 1, 2, 3))
TEMP10: Band = ((350, 360, 380, 390, INF), (3, 1, 0, 1, 2))  # tenths of a degree


def round_whole(x: float) -> float:
    """Half-up rounding to a whole number, as the chart's rounding rule asks."""
    return float(math.floor(x + 0.5 + _EPS_INT))


def round_tenths(x: float) -> float:
    """Temperature in whole tenths (half up), so 35.05 -> 351."""
    return float(math.floor(x * 10.0 + 0.5 + _EPS_TENTH))


def _band(value: float, band: Band) -> int:
    for upper, pts in zip(band[0], band[1], strict=True):
        if value <= upper:
            return pts
    raise AssertionError("bands end at +inf")  # pragma: no cover


def _present(value: Any) -> bool:
    if value is None:
        return False
    return not (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class News2:
    """A (possibly partial) NEWS2: aggregate plus the score of each measured parameter."""

    total: int
    parameters: dict[str, int]
    partial: bool

    @property
    def max_single(self) -> int:
        return max(self.parameters.values(), default=0)


def _on_oxygen(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "o2", "oxygen")
    return bool(value)


def score(vitals: Mapping[str, Any], spo2_scale: int = 1) -> News2:
    """Score one set of vitals (telemetry keys; ``o2`` bool, ``acvpu`` letter; others ignored).

    With SpO2 scale 2 an unknown ``o2`` is taken as air: wearables rarely know, and scoring an
    unknown as oxygen would add phantom points to every reading.
    """
    if spo2_scale not in (1, 2):
        raise ValueError(f"spo2_scale must be 1 or 2, not {spo2_scale!r}")
    params: dict[str, int] = {}
    v = {k: vitals[k] for k in PARAMETERS if k in vitals and _present(vitals[k])}
    on_o2 = _on_oxygen(v["o2"]) if "o2" in v else False
    if "rr" in v:
        params["rr"] = _band(round_whole(float(v["rr"])), RR)
    if "spo2" in v:
        s = round_whole(float(v["spo2"]))
        if spo2_scale == 1:
            params["spo2"] = _band(s, SPO2_1)
        else:
            params["spo2"] = _band(s, SPO2_2_O2 if on_o2 else SPO2_2_AIR)
    if "o2" in v:
        params["o2"] = 2 if on_o2 else 0
    if "sbp" in v:
        params["sbp"] = _band(round_whole(float(v["sbp"])), SBP)
    if "hr" in v:
        params["hr"] = _band(round_whole(float(v["hr"])), HR)
    if "acvpu" in v:
        params["acvpu"] = 0 if str(v["acvpu"]).strip().upper() == "A" else 3
    if "temp" in v:
        params["temp"] = _band(round_tenths(float(v["temp"])), TEMP10)
    ordered = {k: params[k] for k in PARAMETERS if k in params}
    return News2(sum(ordered.values()), ordered, len(ordered) < len(PARAMETERS))


# ---------------------------------------------------------------- vectorised form


def _band_arr(values: FloatArray, band: Band) -> IntArray:
    idx = np.searchsorted(np.asarray(band[0], dtype=np.float64), values, side="left")
    idx = np.minimum(idx, len(band[1]) - 1)  # NaN sorts last; masked out by the caller
    return np.asarray(band[1], dtype=np.int64)[idx]


def score_arrays(
    rr: npt.ArrayLike,
    spo2: npt.ArrayLike,
    o2: npt.ArrayLike,
    sbp: npt.ArrayLike,
    hr: npt.ArrayLike,
    acvpu_code: npt.ArrayLike,
    temp: npt.ArrayLike,
    spo2_scale: int | npt.ArrayLike = 1,
) -> tuple[IntArray, IntArray]:
    """NEWS2 for N readings at once; NaN = not measured.

    ``o2`` is 1/0 (NaN unknown), ``acvpu_code`` 0 for A and 1..4 for C/V/P/U (see
    ``ACVPU_CODES``). Returns ``(totals[N], scores[N, 7])`` with columns in ``PARAMETERS`` order
    and -1 where the parameter is absent; ``(scores < 0).any(axis=1)`` is "partial".
    """
    cols = [
        np.atleast_1d(np.asarray(a, dtype=np.float64))
        for a in (rr, spo2, o2, sbp, hr, acvpu_code, temp)
    ]
    n = np.broadcast_shapes(*(c.shape for c in cols))
    rr_a, sp_a, o2_a, sbp_a, hr_a, ac_a, t_a = (np.broadcast_to(c, n) for c in cols)
    scale = np.broadcast_to(np.asarray(spo2_scale), n)
    if not np.isin(scale, (1, 2)).all():
        raise ValueError("spo2_scale must be 1 or 2")
    on_o2 = np.nan_to_num(o2_a, nan=0.0) != 0.0
    out = np.empty((*n, len(PARAMETERS)), dtype=np.int64)

    sp_r = np.floor(sp_a + 0.5 + _EPS_INT)
    sp = np.where(
        scale == 1,
        _band_arr(sp_r, SPO2_1),
        np.where(on_o2, _band_arr(sp_r, SPO2_2_O2), _band_arr(sp_r, SPO2_2_AIR)),
    )
    out[..., 0] = _band_arr(np.floor(rr_a + 0.5 + _EPS_INT), RR)
    out[..., 1] = sp
    out[..., 2] = np.where(on_o2, 2, 0)
    out[..., 3] = _band_arr(np.floor(sbp_a + 0.5 + _EPS_INT), SBP)
    out[..., 4] = _band_arr(np.floor(hr_a + 0.5 + _EPS_INT), HR)
    out[..., 5] = np.where(ac_a == 0, 0, 3)
    out[..., 6] = _band_arr(np.floor(t_a * 10.0 + 0.5 + _EPS_TENTH), TEMP10)
    missing = np.stack([np.isnan(c) for c in (rr_a, sp_a, o2_a, sbp_a, hr_a, ac_a, t_a)], axis=-1)
    out[missing] = -1
    totals = np.where(missing, 0, out).sum(axis=-1)
    return totals, out


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
