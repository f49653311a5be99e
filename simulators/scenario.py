"""Labelled scenario folders (DESIGN.md): a realistic fleet-day with its ground truth.

``generate(out_dir, residents, hours, seed)`` writes ``registry.yaml``, ``messages.jsonl`` (arrival
order) and ``labels.jsonl``, plus an informative ``scenario.json``. Everything comes from
``numpy.random.default_rng([seed, resident index])``, so a seed gives the same bytes and a
resident's data does not depend on how many others there are.

Why it looks the way it does (see ``simulators/README.md`` for the full list of decisions):
- A watch reports every 10-60 s (vitals, GPS fix, battery, ``worn`` and a short accelerometer
  chunk of quiet wear). Activities (``motion.segment``: falls and hard daily activities) are
  streamed as continuous 1-2 s chunks while they last, as a wake-on-motion device does: a 24 h
  raw stream for everyone would be 4 GB of JSON and tell the detector nothing more.
- Events are placed in the resident's local waking hours (their own time zone, DST included) and
  never overlap on one device; each labelled event follows the label rules below.
- Labels (``start``/``deadline``): fall = impact .. + 60 (detection, the "are you OK?" window
  and its confirmation included: alarm practice answers within 60 s), with ``answered: "ok"``
  when the wearer pressed "I'm OK" (then nobody is to be paged); wander = first *sent*
  fix outside every active fence by more than 2 x acc .. + 120 s; vitals = first moment the
  chart (aggregate >= 5 or a single 3) is reached, by the true signal or by the values actually
  sent, whichever is first .. + 30 min; device = silent: last message + 600 s, offline: offline
  status + 120 s, removed: first ``worn: false`` + 300 s (or the ``removed`` event itself),
  battery_low: first report under 15 %, each .. + 120 s; sos = press .. + 10 s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import orjson
import yaml

from anxin.core import news2_chart as news2
from simulators import gps, motion, vitals

FloatArray = npt.NDArray[np.float64]
PREFIX = "anxin/v1"
# 2024-03-30 16:00 UTC = 2024-03-31 00:00 in Shanghai; Berlin springs forward at 01:00 UTC.
DEFAULT_T0 = 1_711_814_400.0
GRID_S = 10.0  # GPS, vitals and battery are simulated on this grid and sampled by messages
END_MARGIN_S = 1800.0  # no event starts in the last half hour: its deadline must fit

FALL_DEADLINE_S = 60.0  # impact to alert, the confirmation wait included
WANDER_DEADLINE_S = 120.0
VITALS_DEADLINE_S = 1800.0
DEVICE_DEADLINE_S = 120.0
SOS_DEADLINE_S = 10.0
SILENT_AFTER_S = 600.0  # the pipeline's defaults, which the labels follow
OFFLINE_GRACE_S = 120.0
REMOVED_GRACE_S = 300.0
WILL_DELAY_S = 45.0  # broker publishes the last will 1.5 x keepalive (30 s) after the loss
SPOT_S = 300.0  # a watch measures SpO2, respiration and temperature about every 5 min


@dataclass(frozen=True)
class City:
    name: str
    lat: float
    lon: float
    tz: str
    weight: float
    language: str
    phone: str  # E.164 prefix for family numbers


CITIES = (
    City("Weihai", 37.5135, 122.1203, "Asia/Shanghai", 0.65, "zh-CN", "+86138"),
    City("Qingdao", 36.0671, 120.3826, "Asia/Shanghai", 0.1, "zh-CN", "+86139"),
    City("Urumqi", 43.8256, 87.6168, "Asia/Urumqi", 0.05, "zh-CN", "+86135"),
    City("Berlin", 52.5200, 13.4050, "Europe/Berlin", 0.1, "de-DE", "+49151"),
    City("Vancouver", 49.2827, -123.1207, "America/Vancouver", 0.1, "en-CA", "+1604"),
)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = ("秀兰", "桂英", "玉兰", "建国", "志强", "淑珍", "德明", "凤英", "国华", "秀英", "文明")
_WESTERN = ("Anna", "Helga", "Karl", "Ruth", "Walter", "Margaret", "George", "Edith", "Frank")
_FAMILY = ("Schmidt", "Müller", "Wong", "Smith", "Fischer", "Brown", "Weber", "Chan")


@dataclass(frozen=True)
class Label:
    """Ground truth (DESIGN.md): an alert of ``kind`` for ``resident`` in [start - 2, deadline]."""

    resident: str
    kind: str
    start: float
    deadline: float
    note: str = ""  # what happened (not part of the contract; kept in labels.jsonl as extra)
    end: float | None = None  # extension: the condition lasts until then (see scoring.py)
    answered: str = ""  # extension: "ok" = the wearer answered "I'm OK" (a fall paging nobody)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "resident": self.resident,
            "kind": self.kind,
            "start": round(self.start, 3),
            "deadline": round(self.deadline, 3),
        }
        if self.end is not None and self.end > self.deadline:
            out["end"] = round(self.end, 3)
        if self.note:
            out["note"] = self.note
        if self.answered:
            out["answered"] = self.answered
        return out


@dataclass
class Msg:
    """One MQTT message before serialisation: ``t`` arrival, ``ts`` device time."""

    ts: float
    topic_kind: str  # telemetry | status
    payload: Any
    t: float = 0.0


@dataclass
class Timeline:
    """Occupied intervals of one wearable, so events never overlap."""

    busy: list[tuple[float, float]] = field(default_factory=list)

    def free(self, a: float, b: float) -> bool:
        return all(b <= x or a >= y for x, y in self.busy)

    def take(self, a: float, b: float) -> None:
        self.busy.append((a, b))


# ----------------------------------------------------------------------------- time helpers


def utc_offsets(tz: ZoneInfo, ts: FloatArray) -> FloatArray:
    """UTC offset (s) at each instant; DST changes fall on whole hours, so per hour is exact."""
    hours = np.floor(ts / 3600.0).astype(np.int64)
    uniq, inv = np.unique(hours, return_inverse=True)
    offs = np.array(
        [
            (
                tz.utcoffset(datetime.fromtimestamp(float(h) * 3600.0, UTC)) or timedelta()
            ).total_seconds()
            for h in uniq
        ]
    )
    return np.asarray(offs[inv], dtype=np.float64)


def local_windows(
    tz: ZoneInfo, t0: float, t1: float, start: str, end: str
) -> list[tuple[float, float]]:
    """Epoch intervals of the local daily window ``start``-``end`` that lie within [t0, t1]."""
    d0 = datetime.fromtimestamp(t0, tz).date() - timedelta(days=1)
    d1 = datetime.fromtimestamp(t1, tz).date()
    out = []
    d: date = d0
    while d <= d1:
        a = _local(tz, d, start)
        b = _local(tz, d, end)
        lo, hi = max(a, t0), min(b, t1)
        if hi > lo:
            out.append((lo, hi))
        d += timedelta(days=1)
    return out


def _local(tz: ZoneInfo, d: date, hhmm: str) -> float:
    hh, mm = (int(x) for x in hhmm.split(":"))
    extra = timedelta(days=1) if hh == 24 else timedelta()
    return (datetime(d.year, d.month, d.day, hh % 24, mm, tzinfo=tz) + extra).timestamp()


def place(
    rng: np.random.Generator,
    windows: list[tuple[float, float]],
    duration: float,
    timeline: Timeline,
    margin: float = 5.0,
    tries: int = 60,
) -> float | None:
    """A random start in ``windows`` where [start - margin, start + duration + margin] is free."""
    spans = [(a, b - duration) for a, b in windows if b - duration > a]
    if not spans:
        return None
    lengths = np.array([b - a for a, b in spans])
    for _ in range(tries):
        a, b = spans[int(rng.choice(len(spans), p=lengths / lengths.sum()))]
        s = float(rng.uniform(a, b))
        if timeline.free(s - margin, s + duration + margin):
            timeline.take(s - margin, s + duration + margin)
            return s
    return None


def _runs(mask: npt.NDArray[np.bool_], ts: FloatArray) -> list[tuple[float, float]]:
    """Intervals [start, end) where ``mask`` holds on the grid ``ts``."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    step = float(ts[1] - ts[0]) if len(ts) > 1 else GRID_S
    return [(float(ts[a]), float(ts[e - 1]) + step) for a, e in zip(starts, ends, strict=True)]


def _inside(intervals: Iterable[tuple[float, float]], t: FloatArray) -> npt.NDArray[np.bool_]:
    out = np.zeros(len(t), dtype=bool)
    for a, b in intervals:
        out |= (t >= a) & (t < b)
    return out


# ----------------------------------------------------------------------------- geometry


def _en(
    lat0: float, lon0: float, lat: FloatArray, lon: FloatArray
) -> tuple[FloatArray, FloatArray]:
    north = (lat - lat0) * gps.M_PER_DEG_LAT
    east = (lon - lon0) * gps.M_PER_DEG_LAT * math.cos(math.radians(lat0))
    return east, north


def _polygon_distance(
    poly: list[tuple[float, float]], lat: FloatArray, lon: FloatArray
) -> FloatArray:
    """Signed distance (m) to a polygon: negative inside, positive outside (local plane)."""
    lat0, lon0 = poly[0]
    pe, pn = _en(lat0, lon0, np.array([p[0] for p in poly]), np.array([p[1] for p in poly]))
    x, y = _en(lat0, lon0, lat, lon)
    n = len(pe)
    dist = np.full(len(x), np.inf)
    inside = np.zeros(len(x), dtype=bool)
    for i in range(n):
        ax, ay, bx, by = pe[i], pn[i], pe[(i + 1) % n], pn[(i + 1) % n]
        dx, dy = bx - ax, by - ay
        u = np.clip(((x - ax) * dx + (y - ay) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
        dist = np.minimum(dist, np.hypot(x - ax - u * dx, y - ay - u * dy))
        cross = ((ay > y) != (by > y)) & (x < ax + (y - ay) * dx / np.where(dy == 0, 1e-12, dy))
        inside ^= cross
    return np.where(inside, -dist, dist)


def fence_distance(fence: dict[str, Any], lat: FloatArray, lon: FloatArray) -> FloatArray:
    """Signed distance (m) from each point to a registry fence (negative inside)."""
    if "circle" in fence:
        c = fence["circle"]
        e, n = _en(c["lat"], c["lon"], lat, lon)
        return np.asarray(np.hypot(e, n) - c["radius_m"], dtype=np.float64)
    return _polygon_distance([tuple(p) for p in fence["polygon"]], lat, lon)


def fence_active(fence: dict[str, Any], tz: ZoneInfo, ts: FloatArray) -> npt.NDArray[np.bool_]:
    """Whether the fence's local ``active`` window covers each instant (wrapping midnight)."""
    a, b = fence.get("active", "00:00-24:00").split("-")
    ma = int(a[:2]) * 60 + int(a[3:])
    mb = int(b[:2]) * 60 + int(b[3:])
    minute = ((ts + utc_offsets(tz, ts)) % 86_400.0) / 60.0
    if ma <= mb:
        return np.asarray((minute >= ma) & (minute < mb))
    return np.asarray((minute >= ma) | (minute < mb))


def outside_margin(
    fences: list[dict[str, Any]], tz: ZoneInfo, ts: FloatArray, lat: FloatArray, lon: FloatArray
) -> FloatArray:
    """Distance outside the nearest *active* fence (m; negative = inside one; NaN = none active)."""
    best = np.full(len(ts), np.nan)
    for f in fences:
        d = np.where(fence_active(f, tz, ts), fence_distance(f, lat, lon), np.nan)
        best = np.fmin(best, d)
    return best


# ----------------------------------------------------------------------------- one resident


@dataclass
class Resident:
    """What the generator decided about one resident (also written to scenario.json)."""

    rid: str
    city: str
    tz: str
    placement: str
    device: str
    rate: int
    chunk_s: float
    interval_s: float
    monitor: str | None
    oxygen: bool
    check_timeout_s: int
    day_centre: bool
    battery: str
    events: list[str] = field(default_factory=list)


def _registry_entry(
    rng: np.random.Generator,
    r: Resident,
    city: City,
    home: tuple[float, float],
    radius: float,
    centre: tuple[float, float] | None,
    idx: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if city.language == "zh-CN":
        name = str(rng.choice(list(_SURNAMES))) + str(rng.choice(list(_GIVEN)))
        family_name = name[0] + "伟"
    else:
        surname = str(rng.choice(list(_FAMILY)))
        name = f"{rng.choice(list(_WESTERN))} {surname}"
        family_name = f"Chris {surname}"
    fences: list[dict[str, Any]] = [
        {
            "name": "home",
            "circle": {"lat": round(home[0], 6), "lon": round(home[1], 6), "radius_m": radius},
            "active": "00:00-24:00",
        }
    ]
    if centre is not None:
        ang = rng.uniform(0, math.pi)
        corners = []
        for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            e, n = 60 * sx, 40 * sy
            ce, cn = e * math.cos(ang) - n * math.sin(ang), e * math.sin(ang) + n * math.cos(ang)
            la, lo = gps.offset(centre[0], centre[1], ce, cn)
            corners.append([round(float(la), 6), round(float(lo), 6)])
        fences.append({"name": "day-centre", "polygon": corners, "active": "08:00-17:30"})
        # The minibus route: a corridor from home to the centre, active around the day window.
        e1, n1 = _en(home[0], home[1], np.array([centre[0]]), np.array([centre[1]]))
        length = float(math.hypot(e1[0], n1[0]))
        ux, uy = float(e1[0]) / length, float(n1[0]) / length
        px, py = -uy, ux
        half, ext = 150.0, 150.0
        route = []
        for along, side in ((-ext, -1), (length + ext, -1), (length + ext, 1), (-ext, 1)):
            re_ = along * ux + side * half * px
            rn_ = along * uy + side * half * py
            la, lo = gps.offset(home[0], home[1], re_, rn_)
            route.append([round(float(la), 6), round(float(lo), 6)])
        fences.append({"name": "route", "polygon": route, "active": "07:30-18:00"})
    devices: dict[str, Any] = {r.device: {"placement": r.placement}}
    if r.monitor:
        # Spot checks a few times a day with long nights between: no check in a day is silence.
        devices[r.monitor] = {"type": "monitor", "expected_interval_s": 86_400}
    entry: dict[str, Any] = {
        "name": name,
        "timezone": r.tz,
        "language": city.language,
        "devices": devices,
        "geofences": fences,
    }
    if r.oxygen:
        entry["vitals"] = {"spo2_scale": 2}
    entry["family"] = [{"name": family_name, "phone": f"{city.phone}{idx:07d}", "relation": "son"}]
    entry["escalation"] = "default"
    if r.check_timeout_s != 30:
        entry["check_timeout_s"] = r.check_timeout_s
    return entry, fences


def _splice(base: gps.GpsTrack, track: gps.GpsTrack, t0: float) -> None:
    """Overwrite ``base`` (on the GRID_S grid from t0) with ``track`` where it has fixes."""
    idx = np.round((track.ts - t0) / GRID_S).astype(np.int64)
    ok = (idx >= 0) & (idx < len(base.ts))
    for name in ("lat", "lon", "acc", "true_lat", "true_lon"):
        getattr(base, name)[idx[ok]] = getattr(track, name)[ok]


def _grid_start(t: float, t0: float) -> float:
    return t0 + math.ceil((t - t0) / GRID_S) * GRID_S


class _ResidentGen:
    """Generates one resident's devices, messages and labels."""

    def __init__(
        self, seed: int, idx: int, n_residents: int, t0: float, hours: float, artefact_rate: float
    ):
        self.rng = np.random.default_rng([seed, idx])
        self.idx = idx
        self.rid = f"R{idx:03d}"
        self.t0 = t0
        self.t1 = t0 + hours * 3600.0
        self.hours = hours
        self.artefact_rate = artefact_rate
        rng = self.rng
        # A few fixed choices make sure a small fleet still shows every kind of resident.
        if idx == 3:
            city = CITIES[3]  # one in a DST zone (Berlin springs forward in the first day)
        elif idx == 5:
            city = CITIES[4]
        else:
            w = np.array([c.weight for c in CITIES])
            city = CITIES[int(rng.choice(len(CITIES), p=w / w.sum()))]
        self.city = city
        self.tz = ZoneInfo(city.tz)
        hoff = gps.offset(city.lat, city.lon, rng.normal(0, 2500), rng.normal(0, 2500))
        self.home = (round(float(hoff[0]), 6), round(float(hoff[1]), 6))
        self.radius = float(rng.choice([80.0, 100.0, 120.0, 150.0]))
        placement = str(rng.choice(["wrist", "waist", "pendant"], p=[0.6, 0.15, 0.25]))
        prefix = {"wrist": "W", "waist": "B", "pendant": "P"}[placement]
        rate, chunk = ((50, 1.0), (25, 2.0))[int(rng.integers(2))]
        interval = float(rng.choice([10.0, 15.0, 20.0, 30.0, 60.0]))
        monitor = f"M{idx:03d}" if (rng.random() < 0.3 or idx == 2) else None
        oxygen = bool(rng.random() < 0.1 or idx == 4)
        day_centre = bool(rng.random() < 0.3 or idx == 1)
        battery_kind = str(rng.choice(["normal", "charger", "forgetful"], p=[0.65, 0.25, 0.1]))
        if idx == 6:
            battery_kind = "forgetful"
        self.r = Resident(
            self.rid,
            city.name,
            city.tz,
            placement,
            f"{prefix}{idx:03d}",
            rate,
            chunk,
            interval,
            monitor,
            oxygen,
            int(rng.choice([30, 30, 30, 45])),  # at most 45: page within 60 s
            day_centre,
            battery_kind,
        )
        self.centre: tuple[float, float] | None = None
        if day_centre:
            dist, ang = rng.uniform(800, 3000), rng.uniform(0, 2 * math.pi)
            c = gps.offset(self.home[0], self.home[1], dist * math.sin(ang), dist * math.cos(ang))
            self.centre = (float(c[0]), float(c[1]))
        self.entry, self.fences = _registry_entry(
            rng, self.r, city, self.home, self.radius, self.centre, idx
        )
        self.labels: list[Label] = []
        self.episode = ""
        self.activities: list[tuple[float, str]] = []
        self.timeline = Timeline()
        self.grid = t0 + np.arange(0.0, hours * 3600.0, GRID_S)
        self.awake = local_windows(self.tz, t0 + 600.0, self.t1 - END_MARGIN_S, "07:00", "22:00")

    # -- the pieces ---------------------------------------------------------------------------
    def build(self) -> tuple[list[tuple[float, str, Any]], list[Label]]:
        rng, r = self.rng, self.r
        n = len(self.grid)
        unworn: list[tuple[float, float]] = []  # charging, bath: off the body, at home
        removed_events: list[float] = []  # removal starts announced by event "removed"
        outages: list[tuple[float, float, str]] = []  # silent / offline windows
        dead_from = math.inf

        # Battery: discharge, a charger routine for some, a forgotten charge for others.
        bkind = r.battery
        if bkind == "normal":
            bat = vitals.battery(
                rng,
                self.t0,
                n * GRID_S,
                GRID_S,
                float(rng.uniform(0.5, 1.0)),
                float(rng.uniform(60, 120)),
            )
        elif bkind == "charger":
            bat = vitals.battery(
                rng,
                self.t0,
                n * GRID_S,
                GRID_S,
                float(rng.uniform(0.3, 0.6)),
                float(rng.uniform(20, 40)),
                charge_below=0.2,
                charge_h=float(rng.uniform(1.5, 2.5)),
            )
            for a, b in _runs(bat.charging, bat.ts):
                unworn.append((a, b))
                self.timeline.take(a - 60, b + 60)
                r.events.append("charging")
        else:
            bat = vitals.battery(
                rng,
                self.t0,
                n * GRID_S,
                GRID_S,
                float(rng.uniform(0.22, 0.3)),
                float(rng.uniform(16, 22)),
            )
            empty = np.flatnonzero(bat.level <= 0.0)
            if len(empty):
                dead_from = float(bat.ts[empty[0]])
                self.timeline.take(dead_from, self.t1)
                r.events.append("battery_dies")

        # GPS: indoor jitter at home all day, then trips, gate walks and a wander spliced in.
        home_track = gps.at_home(
            rng,
            self.home,
            self.t0,
            n * GRID_S,
            GRID_S,
            acc_range=(30.0, 80.0),
            spot_m=min(20.0, self.radius / 4),
        )
        track = gps.GpsTrack(
            home_track.ts,
            home_track.lat.copy(),
            home_track.lon.copy(),
            home_track.acc.copy(),
            home_track.true_lat.copy(),
            home_track.true_lon.copy(),
        )
        away = Timeline()
        if self.centre is not None:
            for a, _b in local_windows(self.tz, self.t0, self.t1 - 3600, "08:05", "08:45"):
                dep = _grid_start(a + float(rng.uniform(0, 1800)), self.t0)
                stay = float(rng.uniform(7.0, 8.0)) * 3600.0
                trip = gps.day_centre_trip(
                    rng, self.home, self.centre, dep, stay_s=stay, interval_s=GRID_S
                )
                if trip.ts[-1] >= self.t1 or not self.timeline.free(dep, float(trip.ts[-1])):
                    continue
                _splice(track, trip, self.t0)
                away.take(dep - 600, float(trip.ts[-1]) + 600)
                r.events.append("day_centre")
        for _ in range(int(rng.poisson(1.5 * self.hours / 24))):
            s = place(rng, self.awake, 600.0, away, margin=300)
            if s is None:
                continue
            walk = gps.gate_and_back(
                rng,
                self.home,
                _grid_start(s, self.t0),
                gate_m=0.7 * self.radius,
                heading_deg=float(rng.uniform(0, 360)),
                interval_s=GRID_S,
            )
            _splice(track, walk, self.t0)
            r.events.append("gate_and_back")

        wander_span: tuple[float, float] | None = None
        if rng.random() < 0.2 or self.idx == 7:
            windows = local_windows(
                self.tz,
                self.t0 + 600,
                self.t1 - END_MARGIN_S - 3600,
                *(("18:30", "21:30") if self.centre else ("06:00", "21:30")),
            )
            s = place(rng, windows, 3000.0, self.timeline, margin=300)
            if s is not None and away.free(s, s + 3000):
                s = _grid_start(s, self.t0)
                w = gps.wander(
                    rng,
                    self.home,
                    s,
                    radius_m=self.radius,
                    distance_m=float(rng.uniform(1500, 2500)),
                    interval_s=GRID_S,
                )
                _splice(track, w, self.t0)
                wander_span = (s, float(w.ts[-1]))
                r.events.append("wander")

        # Device trouble: a bath without the watch, a crash (silent), a lost connection.
        for kind, p in (("removed", 0.15), ("silent", 0.1), ("offline", 0.1)):
            forced = {"removed": 8, "silent": 9, "offline": 10}[kind] == self.idx
            if not (rng.random() < p or forced):
                continue
            dur = float(rng.uniform(20, 50)) * 60
            s = place(rng, self.awake, dur, self.timeline, margin=120)
            if s is None:
                continue
            if kind == "removed":
                unworn.append((s, s + dur))
                if rng.random() < 0.5 or self.idx == 8:
                    removed_events.append(s)
            else:
                outages.append((s, s + dur, kind))
            r.events.append(kind)

        # Vitals: the resident's baseline, circadian drift, perhaps a deterioration.
        base = vitals.Baseline(
            hr=float(rng.uniform(62, 82)),
            spo2=90.5 if r.oxygen else float(rng.uniform(95.5, 98)),
            rr=float(rng.uniform(14, 18)),
            sbp=float(rng.uniform(118, 148)),
            dbp=float(rng.uniform(68, 85)),
            temp=float(rng.uniform(36.4, 36.9)),
        )
        episodes: list[vitals.Episode] = []
        onset = math.nan
        if rng.random() < 0.15 or self.idx == 11:
            onset = float(
                rng.uniform(self.t0 + 2 * 3600, max(self.t0 + 2 * 3600, self.t1 - 6 * 3600))
            )
            if rng.random() < 0.6:
                episodes.append(
                    vitals.sepsis(
                        onset, float(rng.uniform(2, 4)) * 3600, float(rng.uniform(0.8, 1.2))
                    )
                )
            else:
                episodes.append(
                    vitals.hypoxia(
                        onset, float(rng.uniform(0.5, 1.5)) * 3600, float(rng.uniform(0.8, 1.2))
                    )
                )
            self.episode = episodes[0].name
            r.events.append(self.episode)
        off_h = float(utc_offsets(self.tz, np.array([self.t0]))[0]) / 3600.0
        vit = vitals.day(
            rng,
            self.t0,
            n * GRID_S,
            GRID_S,
            base,
            off_h,
            episodes,
            artefact_rate=self.artefact_rate,
        )

        # Activities: falls (about one a resident-day) and hard daily activities.
        mount = motion.random_mount(r.placement, rng)
        placed: list[tuple[float, motion.Segment]] = []
        falls = int(rng.poisson(1.0 * self.hours / 24))
        kinds = [str(k) for k in rng.choice(np.array(motion.FALLS), size=falls)] if falls else []
        for k, lam in motion.daily_rates(r.placement).items():
            kinds += [k] * int(rng.poisson(lam * self.hours / 24.0))
        for k in kinds:
            seg = motion.segment(k, r.placement, rng, float(r.rate), 8.0, mount)
            dur = seg.g.shape[0] / r.rate + (40.0 if seg.is_fall else 0.0)
            s = place(rng, self.awake, dur, self.timeline, margin=15.0)
            if s is None:
                continue
            if wander_span and not (s + dur < wander_span[0] or s > wander_span[1] + 600):
                continue
            placed.append((s, seg))
            self.activities.append((round(s, 1), k))

        # SOS presses: now and then, in waking hours.
        sos_at: list[float] = []
        for _ in range(int(rng.poisson(0.3 * self.hours / 24))):
            s = place(rng, self.awake, 5.0, self.timeline, margin=10.0)
            if s is not None:
                sos_at.append(s)

        msgs = self._wearable_messages(
            bat,
            track,
            home_track,
            vit,
            unworn,
            removed_events,
            outages,
            dead_from,
            placed,
            sos_at,
            mount,
        )
        monitor_msgs = self._monitor_messages(vit) if r.monitor else []
        self._labels(
            msgs,
            track,
            unworn,
            removed_events,
            outages,
            dead_from,
            placed,
            sos_at,
            bat,
            wander_span,
        )
        if episodes:
            self._vitals_label(vit, msgs + monitor_msgs, onset)
        out = [(m.t, f"{PREFIX}/devices/{r.device}/{m.topic_kind}", m.payload) for m in msgs]
        if r.monitor:
            out += [
                (m.t, f"{PREFIX}/devices/{r.monitor}/telemetry", m.payload) for m in monitor_msgs
            ]
        return out, self.labels

    # -- messages -----------------------------------------------------------------------------
    def _latency(self, n: int) -> FloatArray:
        return np.asarray(0.15 + self.rng.lognormal(-1.6, 0.6, n), dtype=np.float64)

    def _gi(self, ts: float) -> int:
        return min(len(self.grid) - 1, max(0, int((ts - self.t0) // GRID_S)))

    def _wearable_messages(
        self,
        bat: vitals.BatterySeries,
        track: gps.GpsTrack,
        home_track: gps.GpsTrack,
        vit: vitals.VitalsSeries,
        unworn: list[tuple[float, float]],
        removed_events: list[float],
        outages: list[tuple[float, float, str]],
        dead_from: float,
        placed: list[tuple[float, motion.Segment]],
        sos_at: list[float],
        mount: FloatArray,
    ) -> list[Msg]:
        rng, r = self.rng, self.r
        rate, chunk_s = r.rate, r.chunk_s
        ns = round(rate * chunk_s)
        events: list[Msg] = []  # (ts, payload) before seq/arrival
        bursts: list[tuple[float, float]] = []
        for s, seg in placed:
            g = seg.g
            if seg.is_fall and seg.kind != "fall_recover":
                # Still on the floor: keep streaming the final posture (breathing, a faint
                # tremor, the device's noise) for 20 s.
                g = np.concatenate([g, motion.lying_still(seg, 20.0, rng)])
            k = 0
            for k in range(0, g.shape[0], ns):
                events.append(
                    Msg(s + k / rate, "telemetry", {"accel": {"rate": rate, "g": g[k : k + ns]}})
                )
            bursts.append((s, s + (k + ns) / rate))
            if seg.is_fall:
                impact = s + float(seg.impact_s or 0.0)
                if r.placement == "pendant" and rng.random() < 0.4:
                    events.append(
                        Msg(
                            impact + float(rng.uniform(1, 3)),
                            "telemetry",
                            {"event": "fall", "_loc": True},
                        )
                    )
                if seg.kind == "fall_recover" or rng.random() < 0.25:
                    delay = float(rng.uniform(6, min(25.0, r.check_timeout_s - 3)))
                    events.append(Msg(impact + delay, "telemetry", {"event": "ok"}))
        for s in sos_at:
            events.append(Msg(s, "telemetry", {"event": "sos", "_loc": True}))

        # Regular reports, on the device's own interval, except while streaming or down.
        phase = float(rng.uniform(0, r.interval_s))
        reg = self.t0 + phase + np.arange(0.0, self.t1 - self.t0 - phase, r.interval_s)
        reg = reg + rng.uniform(-0.2, 0.2, len(reg))
        keep = ~_inside([(a - 1.0, b + 1.0) for a, b in bursts], reg)
        keep &= ~_inside([(a, b) for a, b, _k in outages], reg) & (reg < dead_from)
        reg = reg[keep]
        off_body = _inside(unworn, reg)
        # Quiet wear: one posture per half hour (slow drift inside it), sliced into chunks.
        bout = ((reg - self.t0) // 1800).astype(np.int64)
        quiet = np.empty((len(reg), ns, 3))
        for b in np.unique(bout):
            sel = np.flatnonzero(bout == b)
            q = motion.quiet(len(sel) * chunk_s, r.placement, rng, float(rate), mount)
            quiet[sel] = q[: len(sel) * ns].reshape(len(sel), ns, 3)
        flat = np.round(np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.006, (len(reg), ns, 3)), 3)
        quiet[off_body] = flat[off_body]
        removal_msgs = {float(reg[np.argmax(reg >= a)]) for a in removed_events if (reg >= a).any()}
        spot_every = max(1, round(SPOT_S / r.interval_s))
        for i, ts in enumerate(reg):
            ts_f = float(ts) - chunk_s  # the chunk is the last chunk_s seconds before sending
            gi = self._gi(ts_f)
            worn = not bool(off_body[i])
            p: dict[str, Any] = {"worn": worn, "accel": {"rate": rate, "g": quiet[i]}}
            if worn:
                v: dict[str, Any] = {"hr": int(vit.hr[gi])}
                if i % spot_every == 0:  # SpO2, respiration and skin temperature: spot checks
                    v.update(spo2=int(vit.spo2[gi]), rr=int(vit.rr[gi]), temp=float(vit.temp[gi]))
                if r.oxygen:
                    v["o2"] = True
                p["vitals"] = v
            src = track if worn else home_track
            p["location"] = {
                "lat": round(float(src.lat[gi]), 6),
                "lon": round(float(src.lon[gi]), 6),
                "acc": round(float(src.acc[gi]), 1),
            }
            if float(ts) in removal_msgs:
                p["event"] = "removed"
            events.append(Msg(ts_f, "telemetry", p, t=float(ts)))
        events.sort(key=lambda m: m.ts)

        out: list[Msg] = []
        lat = self._latency(len(events))
        last_t = -math.inf
        seq = 0
        # The device comes online at its first message (retained status).
        first_ts = events[0].ts if events else self.t0
        out.append(Msg(first_ts, "status", "online", t=first_ts))
        outage_iter = sorted(outages)
        oi = 0
        for j, m in enumerate(events):
            if m.ts >= dead_from or any(a <= m.ts < b for a, b, _k in outages):
                continue
            while oi < len(outage_iter) and outage_iter[oi][0] <= m.ts:
                a, b, kind = outage_iter[oi]
                if kind == "offline":
                    out.append(Msg(a, "status", "offline", t=max(last_t, a) + WILL_DELAY_S))
                    out.append(Msg(b, "status", "online", t=b))
                    last_t = b
                oi += 1
            gi = self._gi(m.ts)
            p = dict(m.payload)
            if p.pop("_loc", False):
                p["location"] = {
                    "lat": round(float(track.lat[gi]), 6),
                    "lon": round(float(track.lon[gi]), 6),
                    "acc": round(float(track.acc[gi]), 1),
                }
            payload = {"ts": round(m.ts, 3), "seq": seq, "battery": float(bat.level[gi]), **p}
            seq += 1
            if m.t == 0.0:  # streamed chunk: sent once complete
                g = p.get("accel", {}).get("g")
                m.t = m.ts + (len(g) / r.rate if g is not None else 0.0)
            t = max(m.t + float(lat[j]), last_t + 0.001)
            last_t = t
            out.append(Msg(m.ts, "telemetry", payload, t=round(t, 3)))
        out.sort(key=lambda m: m.t)
        return out

    def _monitor_messages(self, vit: vitals.VitalsSeries) -> list[Msg]:
        """A BP cuff / oximeter used morning, midday and evening."""
        rng, r = self.rng, self.r
        out: list[Msg] = []
        for hhmm in ("08:00", "13:00", "19:00"):
            for a, _b in local_windows(self.tz, self.t0, self.t1 - 3600, hhmm, "23:59"):
                ts = a + float(rng.uniform(0, 2400))
                gi = self._gi(ts)
                v: dict[str, Any] = {
                    "sbp": int(vit.sbp[gi]),
                    "dbp": int(vit.dbp[gi]),
                    "hr": int(vit.hr[gi]),
                    "spo2": int(vit.spo2[gi]),
                }
                if r.oxygen:
                    v["o2"] = True
                out.append(
                    Msg(
                        ts,
                        "telemetry",
                        {"ts": round(ts, 3), "seq": 0, "battery": 0.8, "vitals": v},
                        t=round(ts + 0.5 + float(rng.uniform(0, 1.5)), 3),
                    )
                )
        out.sort(key=lambda m: m.ts)
        for seq, m in enumerate(out):
            m.payload["seq"] = seq
        return out

    # -- labels -------------------------------------------------------------------------------
    def _add(
        self,
        kind: str,
        start: float,
        deadline: float,
        note: str,
        end: float | None = None,
        answered: str = "",
    ) -> None:
        self.labels.append(Label(self.rid, kind, start, deadline, note, end, answered))

    def _labels(
        self,
        msgs: list[Msg],
        track: gps.GpsTrack,
        unworn: list[tuple[float, float]],
        removed_events: list[float],
        outages: list[tuple[float, float, str]],
        dead_from: float,
        placed: list[tuple[float, motion.Segment]],
        sos_at: list[float],
        bat: vitals.BatterySeries,
        wander_span: tuple[float, float] | None,
    ) -> None:
        r = self.r
        tele = [m for m in msgs if m.topic_kind == "telemetry"]
        ts = np.array([m.ts for m in tele])
        arr = np.array([m.t for m in tele])
        oks = np.array([m.ts for m in tele if m.payload.get("event") == "ok"])
        for s, seg in placed:
            if seg.is_fall:
                impact = s + float(seg.impact_s or 0.0)
                ok = bool(((oks >= impact) & (oks <= impact + r.check_timeout_s)).any())
                deadline = impact + FALL_DEADLINE_S
                self._add("fall", impact, deadline, seg.kind, answered="ok" if ok else "")
        for s in sos_at:
            self._add("sos", s, s + SOS_DEADLINE_S, "button")
        if wander_span is not None:
            fixes = [
                m
                for m in tele
                if "location" in m.payload and wander_span[0] <= m.ts <= wander_span[1]
            ]
            if fixes:
                fts = np.array([m.ts for m in fixes])
                loc = [m.payload["location"] for m in fixes]
                margin = outside_margin(
                    self.fences,
                    self.tz,
                    fts,
                    np.array([x["lat"] for x in loc]),
                    np.array([x["lon"] for x in loc]),
                )
                acc = np.array([x["acc"] for x in loc])
                out = np.flatnonzero(margin > 2 * acc)
                if len(out):
                    start = float(fts[out[0]])
                    self._add(
                        "wander",
                        start,
                        start + WANDER_DEADLINE_S,
                        "walked off",
                        wander_span[1] + 60.0,
                    )
        # Device trouble, on arrival times (the pipeline's clock for these rules).
        for a, b, kind in outages:
            before = arr[ts < a]
            if not len(before):
                continue
            if kind == "silent" and b - before[-1] > SILENT_AFTER_S + DEVICE_DEADLINE_S:
                start = float(before[-1]) + SILENT_AFTER_S
                self._add("device", start, start + DEVICE_DEADLINE_S, "silent", b)
            if kind == "offline":
                off = [
                    m.t
                    for m in msgs
                    if m.topic_kind == "status" and m.payload == "offline" and a <= m.ts < b
                ]
                if off and b - off[0] > OFFLINE_GRACE_S + DEVICE_DEADLINE_S:
                    start = off[0] + OFFLINE_GRACE_S
                    self._add("device", start, start + DEVICE_DEADLINE_S, "offline", b)
        for a, b in unworn:
            # A report's chunk starts up to chunk_s before it is sent: look from a - chunk_s.
            sel = [
                int(i)
                for i in np.flatnonzero((ts >= a - r.chunk_s - 1.0) & (ts < b))
                if tele[int(i)].payload.get("worn") is False
            ]
            if not sel:
                continue
            first = float(arr[sel[0]])
            if any(abs(a - e) < 1e-6 for e in removed_events):
                self._add("device", first, first + DEVICE_DEADLINE_S, "removed (event)", b)
            elif b - first > REMOVED_GRACE_S + DEVICE_DEADLINE_S:
                start = first + REMOVED_GRACE_S
                note = "removed (charging)" if r.battery == "charger" else "removed"
                self._add("device", start, start + DEVICE_DEADLINE_S, note, b)
        low = [i for i, m in enumerate(tele) if m.payload.get("battery", 1.0) < 0.15]
        if low:
            start = float(arr[low[0]])
            # Low until it is charged or dies: a later critical (5 %) is the same discharge.
            self._add(
                "device", start, start + DEVICE_DEADLINE_S, "battery_low", min(dead_from, self.t1)
            )
        if math.isfinite(dead_from) and len(arr):
            start = float(arr[-1]) + SILENT_AFTER_S
            if start + DEVICE_DEADLINE_S < self.t1:
                self._add(
                    "device", start, start + DEVICE_DEADLINE_S, "silent (battery empty)", self.t1
                )

    def _vitals_label(self, vit: vitals.VitalsSeries, msgs: list[Msg], onset: float) -> None:
        """First time the chart is reached, by the true signal or by what was sent."""
        r = self.r
        scale = 2 if r.oxygen else 1
        tr = vit.truth
        nan = np.full(len(vit.ts), np.nan)
        totals, scores = news2.score_arrays(
            tr["rr"], tr["spo2"], 1.0 if r.oxygen else nan, nan, tr["hr"], nan, tr["temp"], scale
        )
        hit = (vit.ts >= onset) & ((totals >= 5) | (scores.max(axis=1) >= 3))
        starts = [float(vit.ts[np.argmax(hit)])] if hit.any() else []
        latest: dict[str, tuple[Any, float]] = {}
        for m in sorted((m for m in msgs if m.topic_kind == "telemetry"), key=lambda m: m.t):
            v = m.payload.get("vitals") if isinstance(m.payload, dict) else None
            if not v:
                continue
            ts = float(m.payload["ts"])
            for k, val in v.items():
                latest[k] = (val, ts)
            if ts < onset:
                continue
            fresh = {k: x[0] for k, x in latest.items() if ts - x[1] <= 900.0}
            res = news2.score(fresh, scale)
            if res.total >= 5 or res.max_single >= 3:
                starts.append(ts)
                break
        if starts and min(starts) < self.t1 - END_MARGIN_S:
            start = min(starts)
            # The episode is held to the end of the scenario: re-raises are not false alarms.
            self._add("vitals", start, start + VITALS_DEADLINE_S, self.episode, self.t1)


# ----------------------------------------------------------------------------- the folder


def _build_resident(
    args: tuple[int, int, int, float, float, float],
) -> tuple[str, dict[str, Any], dict[str, Any], list[tuple[float, bytes]], list[Label]]:
    """One resident's registry entry, summary, message lines and labels (a process's task)."""
    gen = _ResidentGen(*args)
    msgs, lab = gen.build()
    opt = orjson.OPT_SERIALIZE_NUMPY
    lines = [
        (t, orjson.dumps({"t": t, "topic": topic, "payload": payload}, option=opt))
        for t, topic, payload in msgs
    ]
    person = {**gen.r.__dict__, "home": gen.home, "activities": sorted(gen.activities)}
    return gen.rid, gen.entry, person, lines, lab


def generate(
    out_dir: Path,
    residents: int = 20,
    hours: float = 24.0,
    seed: int = 1,
    t0: float = DEFAULT_T0,
    artefact_rate: float = 0.0,
    jobs: int = 1,
) -> dict[str, Any]:
    """Write a scenario folder; returns its summary (also in ``scenario.json``).

    Each resident is generated from its own seed, so ``jobs`` processes write the same bytes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    registry: dict[str, Any] = {}
    lines: list[tuple[float, bytes]] = []
    all_labels: list[Label] = []
    people: list[dict[str, Any]] = []
    args = [(seed, idx, residents, t0, hours, artefact_rate) for idx in range(1, residents + 1)]
    if jobs > 1 and residents > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            built = list(pool.map(_build_resident, args))
    else:
        built = [_build_resident(a) for a in args]
    for rid, entry, person, resident_lines, lab in built:
        registry[rid] = entry
        all_labels += lab
        people.append(person)
        lines += resident_lines
    lines.sort(key=lambda x: x[0])  # stable: each device's own order is kept
    with (out_dir / "registry.yaml").open("w", encoding="utf-8") as f:
        f.write(
            f"# generated by `anxin scenario generate --residents {residents} --hours {hours}"
            f" --seed {seed}`\n"
        )
        yaml.safe_dump({"residents": registry}, f, allow_unicode=True, sort_keys=False)
    with (out_dir / "messages.jsonl").open("wb") as fb:
        fb.write(b"\n".join(line for _t, line in lines) + b"\n")
    all_labels.sort(key=lambda x: (x.start, x.resident))
    with (out_dir / "labels.jsonl").open("wb") as fb:
        fb.write(b"".join(orjson.dumps(x.to_json()) + b"\n" for x in all_labels))
    kinds: dict[str, int] = {}
    for x in all_labels:
        kinds[x.kind] = kinds.get(x.kind, 0) + 1
    summary = {
        "generator": "anxin scenario generate",
        "seed": seed,
        "residents": residents,
        "hours": hours,
        "t0": t0,
        "artefact_rate": artefact_rate,
        "messages": len(lines),
        "labels": kinds,
        "people": people,
    }
    (out_dir / "scenario.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return summary
