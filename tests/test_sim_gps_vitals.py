"""GPS and vitals simulators: determinism, physical sanity, ground truth, and detector fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.geofence import Circle
from detectors.news2 import Raise, VitalsMonitor, score
from simulators import gps, vitals

HOME = (37.5135, 122.1203)
CENTRE = (37.51115, 122.1118)
T0 = 1_717_372_800.0  # 2024-06-03 00:00 UTC = 08:00 Asia/Shanghai


def arrays_equal(a: object, b: object, fields: tuple[str, ...]) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True) for f in fields)


GPS_FIELDS = ("ts", "lat", "lon", "acc", "true_lat", "true_lon")


@pytest.mark.parametrize(
    "make",
    [
        lambda r: gps.at_home(r, HOME, T0, 3600),
        lambda r: gps.wander(r, HOME, T0),
        lambda r: gps.gate_and_back(r, HOME, T0),
        lambda r: gps.day_centre_trip(r, HOME, CENTRE, T0, stay_s=600),
    ],
)
def test_gps_deterministic(make: object) -> None:
    a = make(np.random.default_rng(5))  # type: ignore[operator]
    b = make(np.random.default_rng(5))  # type: ignore[operator]
    c = make(np.random.default_rng(6))  # type: ignore[operator]
    assert arrays_equal(a, b, GPS_FIELDS) and a.events == b.events
    assert not np.array_equal(a.lat, c.lat)
    assert np.all(np.diff(a.ts) > 0)


def test_offset_roundtrip() -> None:
    lat, lon = gps.offset(*HOME, 300.0, -400.0)
    home = Circle("h", *HOME, 1.0)
    assert home.distance_m(float(lat), float(lon)) + 1.0 == pytest.approx(500.0, abs=0.2)


def test_at_home_noise_matches_accuracy() -> None:
    t = gps.at_home(np.random.default_rng(1), HOME, T0, 10 * 86_400, interval_s=60)
    assert t.acc.min() >= 30 and t.acc.max() <= 80
    home = Circle("h", *HOME, 1.0)
    err = np.hypot(
        (t.lat - t.true_lat) * gps.M_PER_DEG_LAT,
        (t.lon - t.true_lon) * gps.M_PER_DEG_LAT * math.cos(math.radians(HOME[0])),
    )
    # DRMS accuracy: mean squared error / acc^2 ~ 1
    assert np.mean(err**2 / t.acc**2) == pytest.approx(1.0, rel=0.15)
    assert np.all(home.distances_m(t.true_lat, t.true_lon) + 1.0 <= 20.0 + 1e-6)
    assert np.ptp(t.true_lat) == 0.0  # lying still


def test_wander_leaves_and_keeps_going() -> None:
    t = gps.wander(
        np.random.default_rng(2),
        HOME,
        T0,
        radius_m=120,
        distance_m=2000,
        speed_mps=1.2,
        interval_s=10,
    )
    home = Circle("h", *HOME, 120.0)
    d = home.distances_m(t.true_lat, t.true_lon)
    assert d[0] < 0 and d[-1] > 1500
    exit_ts = t.events["exit"]
    assert d[t.ts < exit_ts].max() <= 0 and d[t.ts == exit_ts][0] > 0
    assert np.all(np.diff(d[t.ts >= exit_ts]) > -15)  # never heads back home
    assert t.acc.min() >= 5 and t.acc.max() <= 15


def test_gate_and_back_stays_inside() -> None:
    t = gps.gate_and_back(np.random.default_rng(3), HOME, T0, gate_m=90, heading_deg=45)
    home = Circle("h", *HOME, 120.0)
    d = home.distances_m(t.true_lat, t.true_lon) + 120.0
    assert d.max() == pytest.approx(90.0, abs=0.5)
    assert d[0] == pytest.approx(0.0, abs=0.5) and d[-1] == pytest.approx(0.0, abs=0.5)


def test_day_centre_trip() -> None:
    t = gps.day_centre_trip(np.random.default_rng(4), HOME, CENTRE, T0, stay_s=3600)
    centre = Circle("c", *CENTRE, 1.0)
    at = (t.ts >= t.events["arrive"]) & (t.ts < t.events["leave"])
    assert np.all(centre.distances_m(t.true_lat[at], t.true_lon[at]) + 1.0 < 1.0)
    assert t.events["leave"] - t.events["arrive"] >= 3600


# ---------------------------------------------------------------- vitals


def test_vitals_deterministic_and_rounded() -> None:
    a = vitals.day(np.random.default_rng(9), T0, artefact_rate=0.02, dropout=0.1)
    b = vitals.day(np.random.default_rng(9), T0, artefact_rate=0.02, dropout=0.1)
    assert arrays_equal(a, b, ("ts", *vitals.SIGNALS))
    assert len(a) == 288
    ok = ~np.isnan(a.hr)
    assert np.array_equal(a.hr[ok], np.round(a.hr[ok]))
    t = a.temp[~np.isnan(a.temp)]
    assert np.allclose(t, np.round(t, 1))
    assert np.nanmax(a.spo2) <= 100
    assert 0.05 < np.isnan(a.hr).mean() < 0.15
    assert all(k in a.reading(0) or math.isnan(getattr(a, k)[0]) for k in vitals.SIGNALS)


def test_circadian_drift() -> None:
    s = vitals.day(
        np.random.default_rng(1), T0 - 8 * 3600, duration_s=86_400, interval_s=60, utc_offset_h=8.0
    )  # starts at local midnight
    hour = ((s.ts - s.ts[0]) // 3600).astype(int)
    at4, at16 = hour == 4, hour == 16
    assert s.hr[at16].mean() - s.hr[at4].mean() == pytest.approx(12.0, abs=2.0)
    assert s.temp[at16].mean() - s.temp[at4].mean() == pytest.approx(0.7, abs=0.1)
    assert s.sbp[at16].mean() > s.sbp[at4].mean() + 10


def test_sepsis_episode_direction() -> None:
    onset = T0 + 6 * 3600
    s = vitals.day(np.random.default_rng(2), T0, episodes=[vitals.sepsis(onset)])
    assert s.events == {"sepsis_onset": onset}
    before, after = s.ts < onset, s.ts > onset + 4 * 3600
    for k, sign in (("hr", 1), ("rr", 1), ("temp", 1), ("sbp", -1), ("spo2", -1)):
        change = np.mean(getattr(s, k)[after]) - np.mean(getattr(s, k)[before])
        assert sign * change > 0, k
    late = s.reading(len(s) - 1)
    assert score(late).total >= 7


def test_healthy_day_quiet_and_sepsis_detected() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        s = vitals.day(rng, T0, interval_s=300)
        m = VitalsMonitor()
        assert all(m.observe(float(t), s.reading(i), "W") is None for i, t in enumerate(s.ts))
    onset = T0 + 3 * 3600
    s = vitals.day(rng, T0, interval_s=300, episodes=[vitals.sepsis(onset)])
    m = VitalsMonitor()
    raises = [
        d
        for i, t in enumerate(s.ts)
        if isinstance(d := m.observe(float(t), s.reading(i), "W"), Raise)
    ]
    assert [r.severity for r in raises] == ["warning", "critical"]
    assert onset < raises[0].ts < raises[1].ts < onset + 4 * 3600


def test_only_thins_a_device() -> None:
    s = vitals.day(np.random.default_rng(4), T0)
    w = vitals.only(s, ("hr", "spo2"), every=3)
    assert np.isnan(w.sbp).all()
    assert (~np.isnan(w.hr)).sum() == math.ceil(len(s) / 3)
    assert set(w.reading(0)) == {"hr", "spo2"} and w.reading(1) == {}


def test_hypoxia_drops_spo2() -> None:
    s = vitals.day(np.random.default_rng(5), T0, episodes=[vitals.hypoxia(T0 + 3600)])
    assert s.truth["spo2"][-1] < 88 and s.truth["rr"][-1] > 22


# ---------------------------------------------------------------- battery


def test_battery_discharge() -> None:
    b = vitals.battery(np.random.default_rng(1), T0, 3 * 86_400, life_h=48)
    assert b.level[0] == pytest.approx(1.0, abs=0.02) and b.level[-1] == 0.0
    assert not b.charging.any()
    assert np.all(np.diff(b.level) <= 0.02 + 1e-9)  # jitter only, never a real rise
    assert 24 * 3600 < b.events["below_15"] - T0 < 60 * 3600
    assert b.events["below_5"] > b.events["below_15"]
    assert np.all(np.round(b.level, 2) == b.level)


def test_battery_recharges() -> None:
    b = vitals.battery(
        np.random.default_rng(2), T0, 5 * 86_400, life_h=30, charge_below=0.2, charge_h=2
    )
    assert b.charging.any()
    assert b.level.min() >= 0.15
    starts = np.flatnonzero(np.diff(b.charging.astype(int)) == 1)
    assert len(starts) >= 3
    c = vitals.battery(
        np.random.default_rng(2), T0, 5 * 86_400, life_h=30, charge_below=0.2, charge_h=2
    )
    assert np.array_equal(b.level, c.level)
