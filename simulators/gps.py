"""Synthetic GPS tracks with ground truth, deterministic given a ``numpy.random.Generator``.

Why this shape:
- Positions are built in metres east/north of an anchor and converted to WGS84 at the end, so
  scenarios read as geometry ("walk 400 m north-east") rather than degrees.
- The reported ``acc`` is the 1-sigma horizontal radius (DRMS, per DESIGN.md), so the simulated
  error has per-axis sigma ``acc / sqrt(2)``. The error is an AR(1) process (``corr_s``): real
  receivers drift slowly rather than jump independently, which is what makes two "independent"
  consecutive bad fixes more likely, and a detector must survive that.
- ``events`` carries ground truth (e.g. the time the true position left the fence).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

M_PER_DEG_LAT = 6_371_008.8 * math.pi / 180.0


@dataclass(frozen=True)
class GpsTrack:
    """Fixes at ``ts`` (epoch s): reported ``lat``/``lon``/``acc`` and the true position."""

    ts: FloatArray
    lat: FloatArray
    lon: FloatArray
    acc: FloatArray
    true_lat: FloatArray
    true_lon: FloatArray
    events: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ts)


def offset(
    lat: float, lon: float, east_m: npt.ArrayLike, north_m: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """WGS84 of points ``east_m``/``north_m`` from (lat, lon) on a local tangent plane."""
    e = np.asarray(east_m, dtype=np.float64)
    n = np.asarray(north_m, dtype=np.float64)
    return (lat + n / M_PER_DEG_LAT, lon + e / (M_PER_DEG_LAT * math.cos(math.radians(lat))))


def _ar1(rng: np.random.Generator, n: int, dt: float, corr_s: float) -> FloatArray:
    """Unit-variance AR(1) series with correlation time ``corr_s``."""
    rho = math.exp(-dt / corr_s) if corr_s > 0 else 0.0
    w = rng.standard_normal(n)
    out = np.empty(n)
    out[0] = w[0]
    s = math.sqrt(1 - rho * rho)
    for i in range(1, n):
        out[i] = rho * out[i - 1] + s * w[i]
    return out


def accuracy(
    rng: np.random.Generator, n: int, lo: float, hi: float, dt: float, corr_s: float = 300.0
) -> FloatArray:
    """Reported accuracy wandering slowly within [lo, hi]."""
    z = _ar1(rng, n, dt, corr_s)
    return lo + (hi - lo) * 0.5 * (1.0 + np.tanh(z))


def _fixes(
    rng: np.random.Generator,
    lat0: float,
    lon0: float,
    ts: FloatArray,
    east: FloatArray,
    north: FloatArray,
    acc: FloatArray,
    corr_s: float,
    events: dict[str, float] | None = None,
) -> GpsTrack:
    dt = float(ts[1] - ts[0]) if len(ts) > 1 else 1.0
    sigma = acc / math.sqrt(2.0)
    ne = east + sigma * _ar1(rng, len(ts), dt, corr_s)
    nn = north + sigma * _ar1(rng, len(ts), dt, corr_s)
    lat, lon = offset(lat0, lon0, ne, nn)
    tlat, tlon = offset(lat0, lon0, east, north)
    return GpsTrack(ts, lat, lon, acc, tlat, tlon, dict(events or {}))


def _times(t0: float, duration_s: float, interval_s: float) -> FloatArray:
    return t0 + np.arange(0.0, duration_s, interval_s)


def at_home(
    rng: np.random.Generator,
    home: tuple[float, float],
    t0: float,
    duration_s: float,
    interval_s: float = 60.0,
    acc_range: tuple[float, float] = (30.0, 80.0),
    spot_m: float = 20.0,
    corr_s: float = 60.0,
) -> GpsTrack:
    """A device lying still indoors near ``home`` (within ``spot_m``) with poor indoor fixes."""
    ts = _times(t0, duration_s, interval_s)
    r, ang = spot_m * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    east = np.full(len(ts), r * math.cos(ang))
    north = np.full(len(ts), r * math.sin(ang))
    acc = accuracy(rng, len(ts), *acc_range, dt=interval_s)
    return _fixes(rng, *home, ts, east, north, acc, corr_s)


def path(
    rng: np.random.Generator,
    anchor: tuple[float, float],
    waypoints_m: Sequence[tuple[float, float]],
    t0: float,
    speed_mps: float = 1.0,
    interval_s: float = 10.0,
    acc_range: tuple[float, float] = (5.0, 15.0),
    pause_s: float = 0.0,
    corr_s: float = 30.0,
) -> GpsTrack:
    """Walk through ``waypoints_m`` (east, north metres from ``anchor``) at ``speed_mps``,
    then stand at the last one for ``pause_s``."""
    pts = np.asarray(waypoints_m, dtype=np.float64)
    seg = np.hypot(*np.diff(pts, axis=0).T) if len(pts) > 1 else np.zeros(0)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    walk_s = cum[-1] / speed_mps
    ts = _times(t0, walk_s + pause_s + interval_s, interval_s)
    along = np.minimum((ts - t0) * speed_mps, cum[-1])
    east = np.interp(along, cum, pts[:, 0])
    north = np.interp(along, cum, pts[:, 1])
    acc = accuracy(rng, len(ts), *acc_range, dt=interval_s)
    return _fixes(rng, *anchor, ts, east, north, acc, corr_s)


def _crossing(
    track: GpsTrack, anchor: tuple[float, float], radius_m: float, outward: bool = True
) -> float:
    north = (track.true_lat - anchor[0]) * M_PER_DEG_LAT
    east = (track.true_lon - anchor[1]) * M_PER_DEG_LAT * math.cos(math.radians(anchor[0]))
    out = np.hypot(east, north) > radius_m
    idx = np.flatnonzero(out if outward else ~out)
    return float(track.ts[idx[0]]) if len(idx) else math.nan


def wander(
    rng: np.random.Generator,
    home: tuple[float, float],
    t0: float,
    radius_m: float = 120.0,
    heading_deg: float | None = None,
    distance_m: float = 2000.0,
    speed_mps: float = 1.0,
    interval_s: float = 10.0,
    acc_range: tuple[float, float] = (5.0, 15.0),
) -> GpsTrack:
    """Leave home and keep going (dementia wandering). ``events['exit']`` = first true fix
    outside the ``radius_m`` circle."""
    h = math.radians(rng.uniform(0, 360) if heading_deg is None else heading_deg)
    wiggle = rng.uniform(-0.3, 0.3, 3)
    legs = [(0.0, 0.0)]
    for i, frac in enumerate((0.25, 0.6, 1.0)):
        a = h + wiggle[i]
        legs.append((distance_m * frac * math.sin(a), distance_m * frac * math.cos(a)))
    track = path(rng, home, legs, t0, speed_mps, interval_s, acc_range)
    track.events["exit"] = _crossing(track, home, radius_m)
    return track


def gate_and_back(
    rng: np.random.Generator,
    home: tuple[float, float],
    t0: float,
    gate_m: float = 90.0,
    heading_deg: float = 0.0,
    speed_mps: float = 0.8,
    pause_s: float = 120.0,
    interval_s: float = 10.0,
    acc_range: tuple[float, float] = (5.0, 15.0),
) -> GpsTrack:
    """Walk to the garden gate ``gate_m`` from home (inside the fence), wait, walk back."""
    a = math.radians(heading_deg)
    gate = (gate_m * math.sin(a), gate_m * math.cos(a))
    out = path(rng, home, [(0.0, 0.0), gate], t0, speed_mps, interval_s, acc_range, pause_s)
    t1 = float(out.ts[-1]) + interval_s
    back = path(rng, home, [gate, (0.0, 0.0)], t1, speed_mps, interval_s, acc_range)
    return concat([out, back])


def day_centre_trip(
    rng: np.random.Generator,
    home: tuple[float, float],
    centre: tuple[float, float],
    t0: float,
    stay_s: float = 6 * 3600.0,
    speed_mps: float = 8.0,
    interval_s: float = 10.0,
    acc_range: tuple[float, float] = (5.0, 15.0),
    indoor_acc: tuple[float, float] = (15.0, 40.0),
) -> GpsTrack:
    """Ride from home to the day-centre, stay (indoor fixes), ride back."""
    ce = (centre[1] - home[1]) * M_PER_DEG_LAT * math.cos(math.radians(home[0]))
    cn = (centre[0] - home[0]) * M_PER_DEG_LAT
    go = path(rng, home, [(0.0, 0.0), (ce, cn)], t0, speed_mps, interval_s, acc_range)
    t1 = float(go.ts[-1]) + interval_s
    stay = path(rng, home, [(ce, cn)], t1, 1.0, interval_s, indoor_acc, pause_s=stay_s)
    t2 = float(stay.ts[-1]) + interval_s
    back = path(rng, home, [(ce, cn), (0.0, 0.0)], t2, speed_mps, interval_s, acc_range)
    track = concat([go, stay, back])
    track.events.update({"arrive": t1, "leave": t2})
    return track


def concat(tracks: Sequence[GpsTrack]) -> GpsTrack:
    """Join tracks in time order (events merged)."""
    events: dict[str, float] = {}
    for t in tracks:
        events.update(t.events)

    def cat(name: str) -> FloatArray:
        return np.concatenate([getattr(t, name) for t in tracks])

    return GpsTrack(
        cat("ts"), cat("lat"), cat("lon"), cat("acc"), cat("true_lat"), cat("true_lon"), events
    )
