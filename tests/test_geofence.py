"""Geofence shapes, local-time windows (midnight wrap, DST), accuracy handling, hysteresis."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.geofence import (
    ALWAYS,
    Circle,
    Fence,
    GeofenceConfig,
    GeofenceMonitor,
    Polygon,
    Raise,
    Resolve,
    Window,
    active_fences,
    fence_from_dict,
    fences_from_registry,
    haversine_m,
    signed_distances,
)
from simulators import gps

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
HOME = (37.5135, 122.1203)
REGISTRY: list[dict[str, Any]] = [
    {
        "name": "home",
        "circle": {"lat": 37.5135, "lon": 122.1203, "radius_m": 120},
        "active": "00:00-24:00",
    },
    {
        "name": "day-centre",
        "polygon": [
            [37.5101, 122.1101],
            [37.5122, 122.1101],
            [37.5122, 122.1135],
            [37.5101, 122.1135],
        ],
        "active": "08:00-17:30",
    },
]


def local_ts(tz: ZoneInfo, y: int, mo: int, d: int, h: int, mi: int) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


# ---------------------------------------------------------------- windows


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("00:00-24:00", 0, 1440),
        ("08:00-17:30", 480, 1050),
        ("20:00-07:00", 1200, 420),
        (" 7:05 - 9:00 ", 425, 540),
    ],
)
def test_window_parse(text: str, start: int, end: int) -> None:
    assert Window.parse(text) == Window(start, end)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "8-17",
        "08:00",
        "25:00-26:00",
        "08:60-09:00",
        "24:00-08:00",
        "08:00-08:00",
        "24:30-01:00",
        "aa:bb-cc:dd",
    ],
)
def test_window_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        Window.parse(text)


def test_window_contains_and_wrap() -> None:
    w = Window.parse("20:00-07:00")
    assert w.contains(20 * 60) and w.contains(23 * 60 + 59.9) and w.contains(0)
    assert w.contains(6 * 60 + 59.9) and not w.contains(7 * 60) and not w.contains(12 * 60)
    day = Window.parse("08:00-17:30")
    assert day.contains(480) and not day.contains(479.99) and not day.contains(1050)
    assert ALWAYS.contains(0) and ALWAYS.contains(1439.99)
    assert str(w) == "20:00-07:00"


def test_active_in_shanghai() -> None:
    fences = fences_from_registry(REGISTRY)
    names = lambda ts: [f.name for f in active_fences(fences, ts, SHANGHAI)]  # noqa: E731
    assert names(local_ts(SHANGHAI, 2024, 6, 3, 7, 59)) == ["home"]
    assert names(local_ts(SHANGHAI, 2024, 6, 3, 8, 0)) == ["home", "day-centre"]
    assert names(local_ts(SHANGHAI, 2024, 6, 3, 17, 29)) == ["home", "day-centre"]
    assert names(local_ts(SHANGHAI, 2024, 6, 3, 17, 30)) == ["home"]
    # Asia/Shanghai is UTC+8 all year: 00:00 UTC is 08:00 local in winter and summer alike
    for month in (1, 7):
        utc0 = datetime(2024, month, 10, 0, 0, tzinfo=ZoneInfo("UTC")).timestamp()
        assert names(utc0) == ["home", "day-centre"]
        assert names(utc0 - 60) == ["home"]


def test_midnight_wrap_window() -> None:
    night = [Circle("night", *HOME, 100.0, Window.parse("20:00-07:00"))]
    assert active_fences(night, local_ts(SHANGHAI, 2024, 6, 3, 23, 0), SHANGHAI)
    assert active_fences(night, local_ts(SHANGHAI, 2024, 6, 4, 3, 0), SHANGHAI)
    assert not active_fences(night, local_ts(SHANGHAI, 2024, 6, 4, 7, 0), SHANGHAI)
    assert not active_fences(night, local_ts(SHANGHAI, 2024, 6, 4, 12, 0), SHANGHAI)


def test_dst_europe_london() -> None:
    utc = ZoneInfo("UTC")
    day = [Circle("day", 51.5, -0.12, 100.0, Window.parse("08:00-17:30"))]
    # GMT (UTC+0) before 2024-03-31, BST (UTC+1) after: the window follows local clocks
    assert not active_fences(day, datetime(2024, 3, 30, 7, 30, tzinfo=utc).timestamp(), LONDON)
    assert active_fences(day, datetime(2024, 4, 1, 7, 30, tzinfo=utc).timestamp(), LONDON)
    assert active_fences(day, datetime(2024, 3, 30, 17, 0, tzinfo=utc).timestamp(), LONDON)
    assert not active_fences(day, datetime(2024, 4, 1, 17, 0, tzinfo=utc).timestamp(), LONDON)
    # across the change itself (01:00 UTC: 01:00 GMT -> 02:00 BST)
    night = [Circle("n", 51.5, -0.12, 100.0, Window.parse("00:30-02:30"))]
    at = lambda h, m: datetime(2024, 3, 31, h, m, tzinfo=utc).timestamp()  # noqa: E731
    assert active_fences(night, at(0, 45), LONDON)  # 00:45 GMT
    assert active_fences(night, at(1, 15), LONDON)  # 02:15 BST
    assert not active_fences(night, at(1, 45), LONDON)  # 02:45 BST
    # autumn back: 2024-10-27 01:00 UTC (02:00 BST -> 01:00 GMT); 01:30 local happens twice
    back = [Circle("b", 51.5, -0.12, 100.0, Window.parse("01:00-02:00"))]
    at2 = lambda h, m: datetime(2024, 10, 27, h, m, tzinfo=utc).timestamp()  # noqa: E731
    assert active_fences(back, at2(0, 30), LONDON)  # 01:30 BST
    assert active_fences(back, at2(1, 30), LONDON)  # 01:30 GMT
    assert not active_fences(back, at2(2, 0), LONDON)  # 02:00 GMT


# ---------------------------------------------------------------- shapes


def test_fence_from_dict() -> None:
    home, centre = fences_from_registry(REGISTRY)
    assert isinstance(home, Circle) and home.radius_m == 120 and home.active == ALWAYS
    assert isinstance(centre, Polygon) and centre.active == Window(480, 1050)
    assert (
        fence_from_dict({"name": "x", "circle": {"lat": 1, "lon": 2, "radius_m": 5}}).active
        == ALWAYS
    )
    for bad in (
        {"name": "x"},
        {"name": "x", "circle": {"lat": 1, "lon": 2, "radius_m": 0}},
        {"name": "x", "polygon": [[0, 0], [0, 1]]},
        {"name": "x", "polygon": [[0, 0], [0, 1], [95, 1]]},
        {"name": "x", "circle": {"lat": 1, "lon": 2, "radius_m": 5}, "active": "x"},
    ):
        with pytest.raises((ValueError, KeyError)):
            fence_from_dict(bad)


def test_circle_distance() -> None:
    c = Circle("home", *HOME, 120.0)
    assert c.distance_m(*HOME) == pytest.approx(-120.0)
    lat, lon = gps.offset(*HOME, 0.0, 200.0)
    assert c.distance_m(float(lat), float(lon)) == pytest.approx(80.0, abs=0.05)
    lat, lon = gps.offset(*HOME, 100.0, 0.0)
    assert c.distance_m(float(lat), float(lon)) == pytest.approx(-20.0, abs=0.05)
    # one degree of latitude ~ 111.195 km on the mean sphere
    assert haversine_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-4)


def square_m(size: float) -> list[tuple[float, float]]:
    e = [0.0, size, size, 0.0]
    n = [0.0, 0.0, size, size]
    lat, lon = gps.offset(*HOME, e, n)
    return list(zip(lat.tolist(), lon.tolist(), strict=True))


@pytest.mark.parametrize("reverse", [False, True])
def test_polygon_square_any_order(reverse: bool) -> None:
    verts = square_m(200.0)
    poly = Polygon("sq", tuple(reversed(verts) if reverse else verts))

    def at(e: float, n: float) -> float:
        lat, lon = gps.offset(*HOME, e, n)
        return poly.distance_m(float(lat), float(lon))

    assert at(100, 100) == pytest.approx(-100, abs=0.5)
    assert at(30, 100) == pytest.approx(-30, abs=0.5)
    assert at(-50, 100) == pytest.approx(50, abs=0.5)
    assert at(-30, -40) == pytest.approx(50, abs=0.5)  # nearest is the corner
    assert at(100, 260) == pytest.approx(60, abs=0.5)


def test_polygon_concave_and_closed_ring() -> None:
    # U shape: 300 x 300 with a notch 100 wide, 200 deep cut from the top middle
    e = [0, 300, 300, 200, 200, 100, 100, 0]
    n = [0, 0, 300, 300, 100, 100, 300, 300]
    lat, lon = gps.offset(*HOME, e, n)
    ring = list(zip(lat.tolist(), lon.tolist(), strict=True))
    poly = Polygon("u", (*ring, ring[0]))
    assert len(poly.vertices) == 8

    def at(e_: float, n_: float) -> float:
        la, lo = gps.offset(*HOME, e_, n_)
        return poly.distance_m(float(la), float(lo))

    assert at(150, 250) == pytest.approx(50, abs=0.5)  # in the notch: outside
    assert at(150, 50) == pytest.approx(-50, abs=0.5)  # below the notch: inside
    assert at(50, 250) == pytest.approx(-50, abs=0.5)  # left arm: inside
    assert at(250, 200) == pytest.approx(-50, abs=0.5)  # right arm: inside
    assert at(150, 90) == pytest.approx(-10, abs=0.5)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_vector_matches_scalar(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 9))
    ang = np.sort(rng.uniform(0, 2 * math.pi, k))
    rad = rng.uniform(50, 400, k)
    lat, lon = gps.offset(*HOME, rad * np.cos(ang), rad * np.sin(ang))
    verts = list(zip(lat.tolist(), lon.tolist(), strict=True))
    if rng.random() < 0.5:
        verts.reverse()
    fences: list[Fence] = [
        Polygon("p", tuple(verts)),
        Circle("c", *HOME, float(rng.uniform(20, 300))),
    ]
    plat, plon = gps.offset(*HOME, rng.uniform(-600, 600, 64), rng.uniform(-600, 600, 64))
    for f in fences:
        vec = f.distances_m(plat, plon)
        ref = [f.distance_m(a, b) for a, b in zip(plat.tolist(), plon.tolist(), strict=True)]
        np.testing.assert_allclose(vec, ref, atol=1e-6)
    both = signed_distances(fences, plat, plon)
    np.testing.assert_allclose(
        both, np.minimum(fences[0].distances_m(plat, plon), fences[1].distances_m(plat, plon))
    )


# ---------------------------------------------------------------- monitor

T0 = local_ts(SHANGHAI, 2024, 6, 3, 19, 0)  # day-centre closed: only home is active


def monitor(**cfg: float) -> GeofenceMonitor:
    return GeofenceMonitor.from_state(
        None, fences_from_registry(REGISTRY), "Asia/Shanghai", GeofenceConfig(**cfg)
    )  # type: ignore[arg-type]


def fix(
    m: GeofenceMonitor, t: float, north_m: float, acc: float | None = 10.0, east_m: float = 0.0
) -> Raise | Resolve | None:
    lat, lon = gps.offset(*HOME, east_m, north_m)
    return m.observe(t, float(lat), float(lon), acc)


def roundtrip(m: GeofenceMonitor) -> GeofenceMonitor:
    return GeofenceMonitor.from_state(
        json.loads(json.dumps(m.to_state())), m.fences, m.tz, m.config
    )


def test_two_confident_fixes_raise_then_resolve() -> None:
    m = monitor()
    assert fix(m, T0, 0) is None
    assert fix(m, T0 + 10, 135) is None  # 15 m out, acc 10: not confident (needs > 20)
    assert fix(m, T0 + 20, 150) is None  # 30 m out: first confident fix
    m = roundtrip(m)
    d = fix(m, T0 + 30, 165)
    assert isinstance(d, Raise)
    assert d.ts == T0 + 20 and d.severity == "warning"
    assert d.details["fences"] == ["home"]
    assert d.details["distance_m"] == pytest.approx(45, abs=0.5)
    assert d.details["acc"] == 10.0
    assert d.details["lat"] == round(d.details["lat"], 4)
    assert fix(m, T0 + 40, 180) is None  # already open
    assert fix(m, T0 + 50, 100) is None  # 20 m inside, acc 10: confident inside (> 5)
    assert fix(m, T0 + 80, 0) is None  # 2 fixes but only 30 s
    m = roundtrip(m)
    assert fix(m, T0 + 110, 0) == Resolve(T0 + 110)
    assert not m.open


def test_accuracy_overlapping_fence_is_not_evidence() -> None:
    m = monitor()
    for i in range(50):  # 60 m outside with acc 40: the accuracy circle still reaches home
        assert fix(m, T0 + 10 * i, 180, acc=40.0) is None
    assert fix(m, T0 + 600, 200, acc=None) is None  # 80 m out, default acc 20: confident
    assert isinstance(fix(m, T0 + 610, 200, acc=0), Raise)  # 0 = unknown -> default


def test_ambiguous_fix_breaks_streak() -> None:
    m = monitor()
    assert fix(m, T0, 200) is None
    assert fix(m, T0 + 10, 125) is None
    assert fix(m, T0 + 20, 200) is None
    assert isinstance(fix(m, T0 + 30, 200), Raise)


def test_far_outside_raises_at_once() -> None:
    m = monitor()
    d = fix(m, T0, 120 + 300 + 10 + 1)
    assert isinstance(d, Raise) and d.ts == T0 and d.details["fixes"] == 1


def test_inside_any_active_fence_is_inside() -> None:
    m = monitor()
    centre = (37.51115, 122.1118)
    t = local_ts(SHANGHAI, 2024, 6, 3, 10, 0)
    for i in range(10):  # at the day-centre during opening hours: no alert
        assert m.observe(t + 10 * i, *centre, 10.0) is None
    t = local_ts(SHANGHAI, 2024, 6, 3, 17, 30)
    d = m.observe(t, *centre, 10.0)  # closed now, and far from home: outside
    assert isinstance(d, Raise) and d.details["fences"] == ["home"]


def test_no_active_fence_no_alert_and_resolves() -> None:
    fences = [Circle("day", *HOME, 120.0, Window.parse("08:00-17:30"))]
    m = GeofenceMonitor(fences, SHANGHAI)
    t = local_ts(SHANGHAI, 2024, 6, 3, 17, 0)
    assert fix(m, t, 500) is not None  # far outside while active
    assert fix(m, t + 1800, 500) == Resolve(t + 1800)  # 17:30: no active fence
    for i in range(10):
        assert fix(m, t + 1810 + 10 * i, 2000) is None


def test_stale_and_bad_fixes_ignored() -> None:
    m = monitor()
    assert fix(m, T0, 200) is None
    assert fix(m, T0, 200) is None  # duplicate
    assert fix(m, T0 - 5, 200) is None  # out of order
    assert m.observe(T0 + 5, math.nan, 122.0, 10.0) is None
    assert m.observe(T0 + 6, 91.0, 122.0, 10.0) is None
    assert isinstance(fix(m, T0 + 10, 200), Raise)


def test_a_walk_out_after_the_clock_stepped_back_is_caught_on_the_new_clock() -> None:
    """Fixes older than the last by more than a minute are the device's clock having stepped
    back (a sync after running fast): ignored, they blinded the monitor until the clock caught
    up, ten minutes here. A fix less than that older is still a late one, ignored."""
    m = monitor()
    for i in range(6):
        assert fix(m, T0 + 10 * i, 0) is None  # at home
    assert fix(m, T0 + 50 - 30, 200) is None  # 30 s late: ignored, no streak
    back = T0 + 60 - 600  # the clock stepped back ten minutes
    assert fix(m, back, 0) is None  # at home on the new clock
    assert fix(m, back + 10, 200) is None  # out: the first confident fix
    d = fix(m, back + 20, 210)
    assert isinstance(d, Raise) and d.ts == back + 10
    assert fix(m, back + 30, 100) is None  # back inside ...
    m = roundtrip(m)
    assert fix(m, back + 100, 0) == Resolve(back + 100)  # ... and resolved on the new clock


def test_one_glitch_far_away_is_not_a_wearer_gone_in_ten_seconds() -> None:
    """A fix 2 km out 10 s after one at home (a network fix with an optimistic accuracy, a
    multipath jump) would need 200 m/s: it needs confirming like a near one, where a fix that far
    raised at once. A far fix that could have been reached raises at once as before."""
    m = monitor()
    for i in range(6):
        assert fix(m, T0 + 10 * i, 0) is None
    assert fix(m, T0 + 60, 2000, acc=15.0) is None  # the glitch
    m = roundtrip(m)  # what the glitch left is state too
    for i in range(7, 20):
        assert fix(m, T0 + 10 * i, 0) is None  # home all along
    assert fix(m, T0 + 200, 2000) is None  # two far fixes in a row ...
    assert isinstance(fix(m, T0 + 210, 2010), Raise)  # ... are confirmed, as any two are
    later = monitor()
    assert fix(later, T0, 0) is None
    d = fix(later, T0 + 1800, 2000)  # half an hour later, 2 km out: reachable by bus
    assert isinstance(d, Raise) and d.details["fixes"] == 1


def test_state_is_small() -> None:
    m = monitor()
    fix(m, T0, 200)
    assert len(json.dumps(m.to_state())) < 120


# ---------------------------------------------------------------- on generated data


def run(m: GeofenceMonitor, track: gps.GpsTrack) -> list[Raise | Resolve]:
    out = []
    for t, la, lo, a in zip(
        track.ts.tolist(), track.lat.tolist(), track.lon.tolist(), track.acc.tolist(), strict=True
    ):
        d = m.observe(t, la, lo, a)
        if d is not None:
            out.append(d)
    return out


def test_at_home_jitter_never_alerts() -> None:
    """20 resident-days of a device lying still at home, 30-80 m accuracy, fix every 10 s."""
    rng = np.random.default_rng(20240603)
    for _day in range(20):
        track = gps.at_home(rng, HOME, T0, 86_400.0, interval_s=10.0)
        assert run(monitor(), track) == []


def test_walk_out_detected_within_60s() -> None:
    rng = np.random.default_rng(7)
    cfg = GeofenceConfig()
    home = Circle("home", *HOME, 120.0)
    for _ in range(20):
        track = gps.wander(rng, HOME, T0, radius_m=120.0, interval_s=10.0)
        got = run(monitor(), track)
        assert len(got) == 1 and isinstance(got[0], Raise)
        d = home.distances_m(track.lat, track.lon)
        first_confident = float(track.ts[np.flatnonzero(d > cfg.k * track.acc)[0]])
        assert got[0].ts >= first_confident  # raised ts = first confident fix of the streak
        detected_at = float(track.ts[np.flatnonzero(track.ts >= got[0].ts)[1]])
        assert detected_at - first_confident <= 60.0
        assert got[0].ts - track.events["exit"] <= 120.0


def test_gate_and_back_never_alerts() -> None:
    rng = np.random.default_rng(11)
    for heading in range(0, 360, 30):
        track = gps.gate_and_back(rng, HOME, T0, gate_m=90.0, heading_deg=heading)
        assert run(monitor(), track) == []
