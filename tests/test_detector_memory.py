"""The detectors' compact live state (issue 16, memory per device): the same behaviour as the
plain Python forms it replaced, the same saved state, and a bound on what each live object
holds."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detectors.device_health import DeviceHealth
from detectors.fall import STILL_RANGE_G, FallDetector
from detectors.geofence import Circle, GeofenceMonitor, Window
from detectors.news2 import VitalsMonitor

RATE = 25.0
T0 = 1_767_225_600.0
ORDINARY = {"rr": 16.0, "spo2": 97.0, "hr": 72.0, "sbp": 124.0, "temp": 36.6}


def _bytes_each(make: Callable[[], Any], n: int = 200) -> float:
    """Bytes held per object made by ``make`` (tracemalloc, ``n`` of them alive)."""
    make()  # first-call caches out of the figure
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        held = [make() for _ in range(n)]
        gc.collect()
        size = (tracemalloc.get_traced_memory()[0] - base) / n
    finally:
        tracemalloc.stop()
    assert len(held) == n
    return size


# -- fall ------------------------------------------------------------------------------------
def _quiet(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.02, (n, 3))


def test_queue_range_is_that_of_the_float_samples() -> None:
    """``still_for`` reads the queued samples' float |a|, not their milli-g form."""
    det = FallDetector("wrist")
    g = _quiet(150)
    for i in range(3):
        det.feed(T0 + i * 2.0, RATE, g[i * 50 : (i + 1) * 50])
    assert det.pend_n == 150
    m2 = np.einsum("ij,ij->i", g, g)
    assert (det.pend_lo2, det.pend_hi2) == (float(m2.min()), float(m2.max()))
    assert len(det.pend) == 150 * 3 * 2  # int16 milli-g


def test_still_for_on_the_edge_of_the_milli_g_grid() -> None:
    """A range just under ``STILL_RANGE_G`` that rounds up to it in milli-g is still still."""
    det = FallDetector("waist")
    low, high = [0.0, 0.0, 1.0], [0.0, 0.0, 1.0 + STILL_RANGE_G - 0.0004]
    chunk = np.array([low, high] * 25)
    assert np.ptp(np.rint(np.linalg.norm(chunk, axis=1) * 1000)) >= STILL_RANGE_G * 1000
    det.feed(T0, RATE, chunk)
    assert det.pend_n == 50
    assert det.still_for(T0 + 2) > 1.9


def test_queue_round_trip_and_old_float_queue() -> None:
    det = FallDetector("wrist")
    g = _quiet(400, seed=3)
    det.feed(T0, RATE, g[:100])
    s = json.loads(json.dumps(det.to_state()))
    back = FallDetector.from_state(s)
    assert back.pend == det.pend and back.pend_n == 100 and back.to_state() == s
    for d in (det, back):  # both continue alike
        d.feed(T0 + 4.0, RATE, g[100:300])
    assert back.to_state() == det.to_state()


def test_shared_defaults_are_not_shared_state() -> None:
    a, b = FallDetector("wrist"), FallDetector("wrist")
    a.feed(T0, RATE, _quiet(50))
    a.flush()
    assert a.part != b.part and b.part == (0, 0, 0, 0, 0, 0) and b.pend == b"" and b.held == ()


def test_live_fall_detector_with_a_queued_chunk_is_small() -> None:
    g = _quiet(50)

    def make() -> FallDetector:
        det = FallDetector("wrist")
        det.feed(T0, RATE, g)
        return det

    assert _bytes_each(make) < 800  # 50 queued samples: 300 bytes of them (1,400 as float64)


# -- NEWS2 -----------------------------------------------------------------------------------
def _day(m: VitalsMonitor, hours: float = 26.0, every_s: float = 600.0) -> None:
    for i in range(int(hours * 3600 / every_s)):
        m.observe(T0 + i * every_s, {**ORDINARY, "hr": 70.0 + i % 7}, "W001")


# The saved form's tests (round trip, the list form written before): tests/test_news2_state.py


def test_vitals_monitor_over_a_day_is_small() -> None:
    def make() -> VitalsMonitor:
        m = VitalsMonitor()
        _day(m)
        return m

    assert len(make().hours) == 3 * 26  # a day and the two hours before it
    assert _bytes_each(make, 50) < 1500  # with lists of lists: about 5,500


# -- device health, geofences ----------------------------------------------------------------
def test_health_shared_defaults_and_gaps() -> None:
    a, b = DeviceHealth(), DeviceHealth()
    for i in range(25):
        a.observe(T0 + i * 10.0, {"battery": 0.5 - i * 0.02, "worn": True})
    assert a.gaps == [10] * 20 and a.to_state()["gaps"] == [10] * 20
    assert dict(a.open) == {"battery_low": "critical"} and a.bat_armed == (False, False)
    assert dict(b.open) == {} and b.bat_armed == (True, True) and b.gaps == []
    back = DeviceHealth.from_state(json.loads(json.dumps(a.to_state())))
    assert back.to_state() == a.to_state()
    a.observe(T0 + 1000.0, {"battery": 0.9})
    assert dict(a.open) == {} and a.bat_armed == (True, True)


def test_health_gap_beyond_a_c_int_is_capped() -> None:
    h = DeviceHealth()
    h.observe(0.0, {})
    h.observe(3e9, {})
    assert h.gaps == [2**31 - 1]


def test_live_health_is_small() -> None:
    def make() -> DeviceHealth:
        h = DeviceHealth()
        for i in range(30):
            h.observe(T0 + i * 10.0, {"battery": 0.8, "worn": True})
        return h

    assert _bytes_each(make) < 400


def test_windows_are_shared_and_fences_have_no_dict() -> None:
    assert Window.parse("08:00-17:30") is Window.parse("08:00-17:30")
    with pytest.raises(ValueError):
        Window.parse("08:00-08:00")
    c = Circle("home", 37.5, 122.1, 120.0)
    assert not hasattr(c, "__dict__")
    zone = ZoneInfo("Asia/Shanghai")
    a = GeofenceMonitor.from_state(None, [c], zone)
    b = GeofenceMonitor.from_state(None, [c], zone)
    assert a.config is b.config
