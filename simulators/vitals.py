"""Synthetic vitals and battery series, deterministic given a ``numpy.random.Generator``.

Why this shape:
- A series is built clean first (baseline + circadian drift + episodes), then measured (sensor
  noise, occasional motion artefacts, dropouts, device rounding). The clean signal is kept as
  ``truth`` so tests can tell a detector's error from the simulator's noise.
- Circadian drift follows the usual human pattern: pulse, blood pressure and temperature lowest
  around 04:00 and highest in the late afternoon (local time, hence ``utc_offset_h``).
- Episodes are additive deltas with a smooth ramp; ``sepsis`` is the deterioration NEWS2 exists
  for: rising pulse, respiration and temperature, falling blood pressure and SpO2.
- Battery: a reported state of charge that drains with varying load, sags faster near empty and
  jitters by a reading or so, because real gauges do and a detector must not flap on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SIGNALS = ("hr", "spo2", "rr", "sbp", "dbp", "temp")


@dataclass(frozen=True)
class Baseline:
    """A resident's resting values at the circadian mean."""

    hr: float = 72.0
    spo2: float = 97.0
    rr: float = 16.0
    sbp: float = 130.0
    dbp: float = 78.0
    temp: float = 36.7


# Half peak-to-trough circadian swing per signal (peak ~16:00, trough ~04:00 local).
CIRCADIAN: dict[str, float] = {
    "hr": 6.0,
    "spo2": 0.4,
    "rr": 1.0,
    "sbp": 8.0,
    "dbp": 5.0,
    "temp": 0.35,
}
NOISE: dict[str, float] = {"hr": 2.5, "spo2": 0.8, "rr": 1.2, "sbp": 5.0, "dbp": 4.0, "temp": 0.08}


@dataclass(frozen=True)
class Episode:
    """Additive deltas reached ``ramp_s`` after ``onset_ts`` and held until ``end_ts``."""

    name: str
    onset_ts: float
    deltas: Mapping[str, float]
    ramp_s: float = 4 * 3600.0
    end_ts: float = math.inf

    def weight(self, ts: FloatArray) -> FloatArray:
        x = np.clip((ts - self.onset_ts) / max(self.ramp_s, 1e-9), 0.0, 1.0)
        w = x * x * (3.0 - 2.0 * x)  # smoothstep: slow start, like a real deterioration
        return np.where(ts > self.end_ts, 0.0, w)


def sepsis(onset_ts: float, ramp_s: float = 4 * 3600.0, magnitude: float = 1.0) -> Episode:
    """Sepsis-like deterioration; magnitude 1 ends around NEWS2 10+ for a typical baseline."""
    d = {"hr": 45.0, "rr": 12.0, "sbp": -45.0, "dbp": -25.0, "spo2": -6.0, "temp": 2.0}
    return Episode("sepsis", onset_ts, {k: v * magnitude for k, v in d.items()}, ramp_s)


def hypoxia(onset_ts: float, ramp_s: float = 1800.0, magnitude: float = 1.0) -> Episode:
    """Respiratory exacerbation: SpO2 falls, respiration and pulse rise."""
    d = {"spo2": -10.0, "rr": 9.0, "hr": 20.0}
    return Episode("hypoxia", onset_ts, {k: v * magnitude for k, v in d.items()}, ramp_s)


@dataclass(frozen=True)
class VitalsSeries:
    """Measured vitals at ``ts``; NaN = not measured. ``truth`` holds the clean signals."""

    ts: FloatArray
    hr: FloatArray
    spo2: FloatArray
    rr: FloatArray
    sbp: FloatArray
    dbp: FloatArray
    temp: FloatArray
    truth: dict[str, FloatArray] = field(default_factory=dict)
    events: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ts)

    def reading(self, i: int, keys: Sequence[str] = SIGNALS) -> dict[str, float]:
        """Telemetry ``vitals`` object of sample ``i`` (measured keys only)."""
        out: dict[str, float] = {}
        for k in keys:
            v = float(getattr(self, k)[i])
            if not math.isnan(v):
                out[k] = v
        return out


def circadian(ts: FloatArray, utc_offset_h: float) -> FloatArray:
    """+1 at 16:00 local, -1 at 04:00."""
    hour = ((ts + utc_offset_h * 3600.0) % 86_400.0) / 3600.0
    return np.cos(2.0 * np.pi * (hour - 16.0) / 24.0)


def day(
    rng: np.random.Generator,
    t0: float,
    duration_s: float = 86_400.0,
    interval_s: float = 300.0,
    baseline: Baseline = Baseline(),
    utc_offset_h: float = 8.0,
    episodes: Sequence[Episode] = (),
    noise: float = 1.0,
    artefact_rate: float = 0.0,
    dropout: float = 0.0,
) -> VitalsSeries:
    """Vitals every ``interval_s`` from ``t0``.

    ``noise`` scales the per-signal sensor noise; ``artefact_rate`` is the chance per sample of a
    motion artefact (pulse read 30-60 % high, SpO2 5-15 points low); ``dropout`` the chance a
    signal is missing from a sample.
    """
    ts = t0 + np.arange(0.0, duration_s, interval_s)
    n = len(ts)
    c = circadian(ts, utc_offset_h)
    truth: dict[str, FloatArray] = {}
    for k in SIGNALS:
        sig = getattr(baseline, k) + CIRCADIAN[k] * c
        for ep in episodes:
            sig = sig + ep.deltas.get(k, 0.0) * ep.weight(ts)
        truth[k] = sig
    truth["spo2"] = np.minimum(truth["spo2"], 100.0)

    meas = {k: truth[k] + noise * NOISE[k] * rng.standard_normal(n) for k in SIGNALS}
    if artefact_rate > 0:
        hit = rng.random(n) < artefact_rate
        meas["hr"] = np.where(hit, meas["hr"] * rng.uniform(1.3, 1.6, n), meas["hr"])
        meas["spo2"] = np.where(hit, meas["spo2"] - rng.uniform(5, 15, n), meas["spo2"])
    meas["spo2"] = np.clip(meas["spo2"], 50.0, 100.0)
    meas["sbp"] = np.maximum(meas["sbp"], meas["dbp"] + 10.0)
    for k in SIGNALS:
        meas[k] = np.round(meas[k], 1) if k == "temp" else np.round(meas[k])
        if dropout > 0:
            meas[k] = np.where(rng.random(n) < dropout, np.nan, meas[k])
    events = {f"{ep.name}_onset": ep.onset_ts for ep in episodes}
    return VitalsSeries(
        ts,
        meas["hr"],
        meas["spo2"],
        meas["rr"],
        meas["sbp"],
        meas["dbp"],
        meas["temp"],
        truth,
        events,
    )


def only(series: VitalsSeries, keys: Sequence[str], every: int = 1) -> VitalsSeries:
    """What one device measures: ``keys`` at every ``every``-th sample, NaN elsewhere."""
    keep = np.zeros(len(series), dtype=bool)
    keep[::every] = True
    cols = {
        k: np.where(keep, getattr(series, k), np.nan) if k in keys else np.full(len(series), np.nan)
        for k in SIGNALS
    }
    return VitalsSeries(
        series.ts,
        cols["hr"],
        cols["spo2"],
        cols["rr"],
        cols["sbp"],
        cols["dbp"],
        cols["temp"],
        series.truth,
        dict(series.events),
    )


# ---------------------------------------------------------------- battery


@dataclass(frozen=True)
class BatterySeries:
    """Reported charge 0..1 (two decimals, like devices) and whether it was on the charger."""

    ts: FloatArray
    level: FloatArray
    charging: BoolArray
    events: dict[str, float] = field(default_factory=dict)


def battery(
    rng: np.random.Generator,
    t0: float,
    duration_s: float,
    interval_s: float = 300.0,
    start: float = 1.0,
    life_h: float = 48.0,
    charge_below: float | None = None,
    charge_h: float = 2.0,
    jitter: float = 0.004,
) -> BatterySeries:
    """Discharge (and optional recharge) curve.

    Drain averages ``1 / life_h`` per hour with slowly varying load (GPS bursts, screen), and
    doubles below 10 % where the gauge sags. With ``charge_below`` the device goes on the
    charger once it reports less than that and charges to full in ``charge_h``. ``events``
    records the first time the true charge fell below 15 % and 5 %.
    """
    ts = t0 + np.arange(0.0, duration_s, interval_s)
    n = len(ts)
    dt_h = interval_s / 3600.0
    load = np.exp(0.35 * _smooth(rng, n, max(1, int(1800 / interval_s))))
    level = np.empty(n)
    charging = np.zeros(n, dtype=bool)
    soc, on = float(start), False
    for i in range(n):
        level[i], charging[i] = soc, on
        if on:
            soc = min(1.0, soc + dt_h / charge_h)
            on = soc < 1.0
        else:
            rate = load[i] / life_h * (2.0 if soc < 0.10 else 1.0)
            soc = max(0.0, soc - rate * dt_h)
            on = charge_below is not None and soc < charge_below
    events: dict[str, float] = {}
    for name, thr in (("below_15", 0.15), ("below_5", 0.05)):
        idx = np.flatnonzero(level < thr)
        if len(idx):
            events[name] = float(ts[idx[0]])
    noisy = np.round(level + jitter * rng.standard_normal(n), 2)
    reported = np.where(level <= 0.0, 0.0, np.clip(noisy, 0.0, 1.0)) + 0.0  # no -0.0
    return BatterySeries(ts, reported, charging, events)


def _smooth(rng: np.random.Generator, n: int, width: int) -> FloatArray:
    """Unit-scale smooth random series (moving average of white noise)."""
    w = rng.standard_normal(n + width)
    out = np.convolve(w, np.ones(width) / math.sqrt(width), mode="valid")[:n]
    return np.asarray(out, dtype=np.float64)
