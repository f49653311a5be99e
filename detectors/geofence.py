"""Geofences (circles, polygons, local-time windows) and a per-device wander state.

Why this shape:
- Every fence gives a *signed* distance in metres (negative inside), so "outside all active
  fences" is just ``min(signed) > 0`` and the margin can be weighed against GPS accuracy.
- Circles use haversine; polygons a local tangent plane around their own centroid (metre-exact
  for fences of a few km), even-odd ray casting (any vertex order, concave shapes) and the
  distance to the nearest edge. Both have a scalar path (per message, no numpy overhead) and a
  numpy path (batches, benchmarks) that agree.
- A fix only counts as outside when its distance beyond the fence exceeds ``k * acc``: with
  ``acc`` the 1-sigma (DRMS) radius, k=2 leaves ~0.2 % of honest fixes of a device standing on
  the fence edge looking outside, and the two-fix confirmation makes a false alarm need that
  twice in a row.
  A device lying still indoors (30-80 m accuracy, 120 m fence) therefore never alerts, while a
  walker with 5-15 m outdoor accuracy is confirmed within two fixes.
- A worker holds a monitor per device and fences per resident: fences and windows have slots,
  equal windows are one object, and monitors share the default config.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius


# ---------------------------------------------------------------- time windows


@dataclass(frozen=True, slots=True)
class Window:
    """Daily window in the resident's local time, minutes [start, end); wraps midnight."""

    start_min: int
    end_min: int

    @classmethod
    def parse(cls, text: str) -> Window:
        """Parse ``HH:MM-HH:MM``; 24:00 only as an end; equal ends are rejected as ambiguous."""
        if cls is Window:
            return _parse_window(text)  # every resident's "08:00-17:30" is one object
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> Window:
        try:
            a, b = (part.strip() for part in text.split("-"))
            start, end = _minutes(a), _minutes(b)
        except ValueError as exc:
            raise ValueError(f"bad active window {text!r}: want 'HH:MM-HH:MM'") from exc
        if start == 24 * 60:
            raise ValueError(f"bad active window {text!r}: 24:00 can only end a window")
        if start == end:
            raise ValueError(f"bad active window {text!r}: empty or ambiguous (use 00:00-24:00)")
        return cls(start, end)

    def contains(self, minute: float) -> bool:
        if self.start_min < self.end_min:
            return self.start_min <= minute < self.end_min
        return minute >= self.start_min or minute < self.end_min

    def __str__(self) -> str:
        return f"{_hhmm(self.start_min)}-{_hhmm(self.end_min)}"


@functools.lru_cache(maxsize=256)
def _parse_window(text: str) -> Window:
    return Window._parse(text)


def _minutes(hhmm: str) -> int:
    hh, mm = hhmm.split(":")
    h, m = int(hh), int(mm)
    if len(mm) != 2 or not (0 <= m < 60) or not (0 <= h <= 24) or (h == 24 and m):
        raise ValueError(hhmm)
    return h * 60 + m


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


ALWAYS = Window(0, 24 * 60)


def local_minute(ts: float, tz: ZoneInfo) -> float:
    """Minute of the local day (with seconds as a fraction) at epoch ``ts``."""
    t = datetime.fromtimestamp(ts, tz)
    return t.hour * 60 + t.minute + t.second / 60.0


# ---------------------------------------------------------------- geometry


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def haversine_arr(lat1: float, lon1: float, lats: FloatArray, lons: FloatArray) -> FloatArray:
    """Vectorised ``haversine_m`` from one point to many."""
    p1, p2 = math.radians(lat1), np.radians(lats)
    dp, dl = p2 - p1, np.radians(lons - lon1)
    a = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def _check_latlon(lat: float, lon: float) -> None:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"bad coordinate {lat}, {lon}")


@dataclass(frozen=True, slots=True)
class Circle:
    name: str
    lat: float
    lon: float
    radius_m: float
    active: Window = ALWAYS

    def __post_init__(self) -> None:
        _check_latlon(self.lat, self.lon)
        if not self.radius_m > 0:
            raise ValueError(f"fence {self.name!r}: radius_m must be > 0")

    def distance_m(self, lat: float, lon: float) -> float:
        """Signed distance to the boundary: negative inside."""
        return haversine_m(self.lat, self.lon, lat, lon) - self.radius_m

    def distances_m(self, lats: npt.ArrayLike, lons: npt.ArrayLike) -> FloatArray:
        la, lo = np.asarray(lats, dtype=np.float64), np.asarray(lons, dtype=np.float64)
        return haversine_arr(self.lat, self.lon, la, lo) - self.radius_m


@dataclass(frozen=True, slots=True)
class Polygon:
    name: str
    vertices: tuple[tuple[float, float], ...]  # (lat, lon), any order, closed implicitly
    active: Window = ALWAYS
    _lat0: float = field(init=False, repr=False, compare=False)
    _lon0: float = field(init=False, repr=False, compare=False)
    _kx: float = field(init=False, repr=False, compare=False)
    _xy: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        verts = tuple((float(a), float(b)) for a, b in self.vertices)
        if len(verts) > 1 and verts[0] == verts[-1]:
            verts = verts[:-1]  # accept an explicitly closed ring
        if len(verts) < 3:
            raise ValueError(f"fence {self.name!r}: a polygon needs at least 3 vertices")
        for a, b in verts:
            _check_latlon(a, b)
        lat0 = sum(v[0] for v in verts) / len(verts)
        lon0 = _wrap(sum(_wrap(v[1] - verts[0][1]) for v in verts) / len(verts) + verts[0][1])
        kx = EARTH_RADIUS_M * math.cos(math.radians(lat0)) * math.pi / 180.0
        xy = tuple(_project(a, b, lat0, lon0, kx) for a, b in verts)
        object.__setattr__(self, "vertices", verts)
        object.__setattr__(self, "_lat0", lat0)
        object.__setattr__(self, "_lon0", lon0)
        object.__setattr__(self, "_kx", kx)
        object.__setattr__(self, "_xy", xy)

    def distance_m(self, lat: float, lon: float) -> float:
        """Signed distance to the nearest edge: negative inside."""
        px, py = _project(lat, lon, self._lat0, self._lon0, self._kx)
        inside = False
        best = math.inf
        xy = self._xy
        n = len(xy)
        for i in range(n):
            ax, ay = xy[i]
            bx, by = xy[(i + 1) % n]
            if (ay > py) != (by > py) and px < ax + (py - ay) * (bx - ax) / (by - ay):
                inside = not inside
            dx, dy = bx - ax, by - ay
            seg2 = dx * dx + dy * dy
            t = 0.0 if seg2 == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / seg2))
            ex, ey = ax + t * dx - px, ay + t * dy - py
            best = min(best, ex * ex + ey * ey)
        d = math.sqrt(best)
        return -d if inside else d

    def distances_m(self, lats: npt.ArrayLike, lons: npt.ArrayLike) -> FloatArray:
        la = np.asarray(lats, dtype=np.float64)
        lo = np.asarray(lons, dtype=np.float64)
        px = (np.mod(lo - self._lon0 + 180.0, 360.0) - 180.0)[..., None] * self._kx
        py = ((la - self._lat0) * (EARTH_RADIUS_M * math.pi / 180.0))[..., None]
        v = np.asarray(self._xy)
        ax, ay = v[:, 0], v[:, 1]
        bx, by = np.roll(ax, -1), np.roll(ay, -1)
        dx, dy = bx - ax, by - ay
        seg2 = dx * dx + dy * dy
        crosses = (ay > py) != (by > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = ax + (py - ay) * dx / dy
            t = np.clip(((px - ax) * dx + (py - ay) * dy) / np.where(seg2 == 0, 1.0, seg2), 0, 1)
        inside = (np.count_nonzero(crosses & (px < xcross), axis=-1) % 2) == 1
        d = np.sqrt(np.min((ax + t * dx - px) ** 2 + (ay + t * dy - py) ** 2, axis=-1))
        return np.where(inside, -d, d)


def _wrap(lon: float) -> float:
    return (lon + 180.0) % 360.0 - 180.0


def _project(lat: float, lon: float, lat0: float, lon0: float, kx: float) -> tuple[float, float]:
    return _wrap(lon - lon0) * kx, (lat - lat0) * (EARTH_RADIUS_M * math.pi / 180.0)


Fence = Circle | Polygon


def fence_from_dict(d: Mapping[str, Any]) -> Fence:
    """Registry shape: ``{name, circle: {lat, lon, radius_m}} | {name, polygon: [[lat, lon]..]}``
    plus ``active: "HH:MM-HH:MM"`` (default all day)."""
    name = str(d.get("name", ""))
    active = Window.parse(d["active"]) if d.get("active") else ALWAYS
    if ("circle" in d) == ("polygon" in d):
        raise ValueError(f"fence {name!r}: give exactly one of circle, polygon")
    if "circle" in d:
        c = d["circle"]
        return Circle(name, float(c["lat"]), float(c["lon"]), float(c["radius_m"]), active)
    return Polygon(name, tuple((float(p[0]), float(p[1])) for p in d["polygon"]), active)


def fences_from_registry(items: Iterable[Mapping[str, Any] | Fence]) -> list[Fence]:
    return [f if isinstance(f, Circle | Polygon) else fence_from_dict(f) for f in items]


def active_fences(fences: Sequence[Fence], ts: float, tz: ZoneInfo) -> list[Fence]:
    minute = local_minute(ts, tz)
    return [f for f in fences if f.active.contains(minute)]


def signed_distance(fences: Sequence[Fence], lat: float, lon: float) -> float:
    """Min signed distance over ``fences`` (negative = inside one); +inf if none."""
    return min((f.distance_m(lat, lon) for f in fences), default=math.inf)


def signed_distances(
    fences: Sequence[Fence], lats: npt.ArrayLike, lons: npt.ArrayLike
) -> FloatArray:
    """Vectorised ``signed_distance`` for N fixes (time windows are the caller's business)."""
    la = np.asarray(lats, dtype=np.float64)
    out = np.full(la.shape, np.inf)
    for f in fences:
        out = np.minimum(out, f.distances_m(la, lons))
    return out


# ---------------------------------------------------------------- per-device state


@dataclass(frozen=True)
class Raise:
    kind: ClassVar[str] = "wander"
    ts: float  # first confident fix outside
    details: dict[str, Any]
    severity: str = "warning"


@dataclass(frozen=True)
class Resolve:
    kind: ClassVar[str] = "wander"
    ts: float


Decision = Raise | Resolve


@dataclass(frozen=True)
class GeofenceConfig:
    k: float = 2.0  # confident outside: distance beyond the fence > k * acc
    k_inside: float = 0.5  # confident inside: distance within the fence > k_inside * acc
    default_acc_m: float = 20.0  # assumed when a fix has no (or a nonsense) accuracy
    confirm_fixes: int = 2  # consecutive confident-outside fixes that raise
    far_m: float = 300.0  # one confident fix beyond far_m + acc raises at once ...
    max_speed_mps: float = 70.0  # ... unless reaching it from the last fix beats any road vehicle
    resolve_fixes: int = 2  # confident-inside fixes that resolve ...
    resolve_after_s: float = 60.0  # ... spanning at least this long
    severity: str = "warning"


DEFAULT_CONFIG = GeofenceConfig()  # one for every monitor without its own (it is frozen)
STEP_BACK_S = 60.0  # a fix this much older than the last: the clock stepped back (``observe``)


@dataclass(slots=True)  # many live ones in a worker: no per-instance dict
class GeofenceMonitor:
    """Wander state of one device of one resident. Fences, zone and config are not state."""

    fences: Sequence[Fence]
    tz: ZoneInfo
    config: GeofenceConfig = field(default_factory=lambda: DEFAULT_CONFIG)
    out_n: int = 0
    out_since: float | None = None
    in_n: int = 0
    in_since: float | None = None
    open: bool = False
    last_ts: float | None = None
    # The farthest outside the fences the wearer can have been at the last fix (its signed
    # distance plus its accuracy), None when unknown: a fix far beyond where anyone could have
    # got from there since is a GPS glitch (a network fix with an optimistic accuracy, a
    # multipath jump), not a wearer gone in ten seconds, and needs confirming like a near one.
    reach: float | None = None

    def to_state(self) -> dict[str, Any]:
        return {
            "out": [self.out_n, self.out_since],
            "in": [self.in_n, self.in_since],
            "open": self.open,
            "last": self.last_ts,
            "reach": self.reach,
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any] | None,
        fences: Sequence[Fence],
        tz: ZoneInfo | str,
        config: GeofenceConfig | None = None,
    ) -> GeofenceMonitor:
        zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        m = cls(fences, zone, config or DEFAULT_CONFIG)
        if state:
            m.out_n, m.out_since = state["out"]
            m.in_n, m.in_since = state["in"]
            m.open, m.last_ts = bool(state["open"]), state["last"]
            m.reach = state.get("reach")  # absent from a state written before it: unknown
        return m

    def observe(
        self, ts: float, lat: float, lon: float, acc: float | None = None
    ) -> Decision | None:
        """One fix; a repeated or late one (not newer than the last, by up to ``STEP_BACK_S``)
        or a malformed one is ignored. A fix older than that is the device's clock having
        stepped back (a time sync after running fast): its fixes are current on the new clock,
        and ignored they would blind the detector until the clock caught up; the streaks
        restart on it (an open alert stays open)."""
        if self.last_ts is not None and ts <= self.last_ts:
            if ts >= self.last_ts - STEP_BACK_S:
                return None
            self.out_n, self.out_since, self.in_n, self.in_since = 0, None, 0, None
            self.last_ts = self.reach = None
        if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
            return None
        since = None if self.last_ts is None else ts - self.last_ts
        self.last_ts = ts
        cfg = self.config
        a = acc if acc is not None and math.isfinite(acc) and acc > 0 else cfg.default_acc_m
        fences = active_fences(self.fences, ts, self.tz)
        if not fences:  # outside nothing: no alert (and an open one is over)
            self.out_n, self.out_since, self.in_n, self.in_since = 0, None, 0, None
            self.reach = None
            if self.open:
                self.open = False
                return Resolve(ts)
            return None
        d = signed_distance(fences, lat, lon)
        reach, self.reach = self.reach, d + a
        # the distance to the fences changes no faster than the wearer moves
        reachable = reach is None or since is None or d - a <= reach + cfg.max_speed_mps * since
        if d > cfg.k * a:
            return self._outside(ts, d, a, lat, lon, fences, reachable)
        self.out_n, self.out_since = 0, None  # an ambiguous fix breaks the outside streak
        if d < -cfg.k_inside * a:
            if self.in_n == 0 or self.in_since is None:
                self.in_since = ts
            self.in_n += 1
            if (
                self.open
                and self.in_n >= cfg.resolve_fixes
                and ts - self.in_since >= cfg.resolve_after_s
            ):
                self.open, self.in_n, self.in_since = False, 0, None
                return Resolve(ts)
        return None

    def _outside(
        self,
        ts: float,
        d: float,
        acc: float,
        lat: float,
        lon: float,
        fences: Sequence[Fence],
        reachable: bool = True,
    ) -> Decision | None:
        cfg = self.config
        self.in_n, self.in_since = 0, None
        if self.out_n == 0 or self.out_since is None:
            self.out_since = ts
        self.out_n += 1
        if self.open:
            return None
        if self.out_n >= cfg.confirm_fixes or (reachable and d > cfg.far_m + acc):
            self.open = True
            details = {
                "distance_m": round(d, 1),
                "fences": [f.name for f in fences],
                "lat": round(lat, 4),
                "lon": round(lon, 4),
                "acc": round(acc, 1),
                "fixes": self.out_n,
            }
            return Raise(self.out_since, details, cfg.severity)
        return None
