"""Device rules that fit the device, through ``DetectorPipeline`` with its timer ticks.

A spot-check monitor reports when it is used and is never ``silent``; a worn device expects a
report every 600 s until it has learned its own cadence (never less than 600 s, never more than
the 1800 s cap); an interval the registry sets wins over both.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from pydantic import ValidationError

from anxin.core.records import AlertRecord
from anxin.core.registry import Device, Registry
from detectors.device_health import LEARN_CAP_S, LEARN_MIN_GAPS
from detectors.pipeline import DetectorPipeline

T0 = 1_795_400_000.0
DAY = 86_400.0

REGISTRY = Registry.model_validate(
    {
        "residents": {
            "R1": {
                "name": "test resident one",
                "devices": {
                    "M1": {"type": "monitor"},
                    "W10": {"type": "watch"},
                    "W60": {"placement": "wrist"},
                    "T900": {"type": "tracker"},
                },
            },
            "R2": {
                "name": "test resident two",
                "devices": {
                    "M2": {"type": "monitor", "expected_interval_s": 43_200},
                    "W2": {"type": "watch", "expected_interval_s": 3_600},
                    "T2": {"type": "tracker", "expected_interval_s": 300},
                },
            },
        }
    }
)


def run(
    p: DetectorPipeline, device: str, reports: Iterable[float], until: float, tick_s: float = 10.0
) -> list[AlertRecord]:
    """Reports at the given arrival times, the device's timer ticked every ``tick_s`` between."""
    owner = REGISTRY.device_owner(device)
    assert owner
    alerts: list[AlertRecord] = []
    times = sorted(reports)
    now, i = T0, 0
    while now <= until:
        while i < len(times) and times[i] <= now:
            reading = {
                "device_id": device,
                "resident_id": owner[0],
                "ts": times[i],
                "received_at": times[i],
                "seq": i,
                "battery": 0.8,
            }
            alerts += p.process(reading, times[i]).alerts
            i += 1
        alerts += p.tick_device(device, now).alerts
        now += tick_s
    return alerts


def test_monitor_read_every_30_min_for_a_day_and_then_unused_raises_nothing() -> None:
    p = DetectorPipeline(lambda: REGISTRY)
    reports = [T0 + k * 1800.0 + 7 for k in range(48)]  # a reading every 30 min for a day
    assert run(p, "M1", reports, T0 + 3 * DAY, tick_s=60.0) == []  # then two unused days
    p.save_live_state("M1")  # the live detectors' forms into the state, as before a snapshot
    assert p.device_state["M1"]["health"]["after"] is None  # no silence timer at all


def test_watch_every_10_s_that_stops_is_silent_within_its_interval() -> None:
    p = DetectorPipeline(lambda: REGISTRY)
    reports = [T0 + 5 + 10.0 * k for k in range(360)]  # an hour, then nothing
    last = reports[-1]
    alerts = run(p, "W10", reports, last + 1200)
    (silent,) = alerts
    assert silent.details["reason"] == "silent" and silent.severity == "warning"
    assert silent.ts == last + 600 and silent.details["expected_s"] == 600
    assert last + 600 < silent.detected_at <= last + 610  # the first tick past its interval


def test_watch_every_60_s_learns_its_cadence_and_its_normal_gaps_stay_quiet() -> None:
    p = DetectorPipeline(lambda: REGISTRY)
    # 45-90 s apart (a watch's interval x 0.75-1.5), for a day: the longest is its normal.
    gaps = [45.0, 60.0, 90.0, 75.0, 60.0, 50.0]
    reports: list[float] = []
    t = T0
    while t < T0 + DAY:
        t += gaps[len(reports) % len(gaps)]
        reports.append(t)
    assert run(p, "W60", reports, reports[-1] + 30, tick_s=15.0) == []
    p.save_live_state("W60")
    health = p.device_state["W60"]["health"]
    assert sorted(set(health["gaps"])) == [45, 50, 60, 75, 90]  # its own cadence
    assert health["after"] == 600  # 1.5 x 90 s is under the floor: a dropout is still 10 min
    (silent,) = run(p, "W60", [], reports[-1] + 700)  # and when it stops
    assert silent.ts == reports[-1] + 600


def test_slow_tracker_learns_its_cadence_and_the_cap_bounds_it() -> None:
    """A tracker reporting every 15 min alarms only until it has learned that (600 s default)."""
    p = DetectorPipeline(lambda: REGISTRY)
    reports = [T0 + 900.0 * k for k in range(1, 97)]  # a day
    alerts = run(p, "T900", reports, reports[-1] + 1, tick_s=30.0)
    # Before LEARN_MIN_GAPS gaps the default holds: the first gaps are silences (then resolved).
    assert len(alerts) == LEARN_MIN_GAPS
    assert all(a.details["expected_s"] == 600 for a in alerts)
    assert max(a.detected_at for a in alerts) < reports[LEARN_MIN_GAPS]
    p.save_live_state("T900")
    assert p.device_state["T900"]["health"]["after"] == 1350  # 1.5 x 900 s
    (silent,) = run(p, "T900", [], reports[-1] + 2000, tick_s=30.0)
    assert silent.ts == reports[-1] + 1350
    # Slower still (every 40 min): the cap, 30 min, bounds what the device can teach.
    q = DetectorPipeline(lambda: REGISTRY)
    slow = [T0 + 2400.0 * k for k in range(1, 40)]
    run(q, "T900", slow, slow[-1] + 1, tick_s=60.0)
    q.save_live_state("T900")
    assert q.device_state["T900"]["health"]["after"] == LEARN_CAP_S == 1800


def test_an_interval_the_registry_sets_wins() -> None:
    # Over the type: a monitor with an interval is silent after it.
    p = DetectorPipeline(lambda: REGISTRY)
    (silent,) = run(p, "M2", [T0 + 1], T0 + DAY, tick_s=600.0)
    assert silent.ts == T0 + 1 + 43_200 and silent.details["expected_s"] == 43_200
    # Over the default: a watch allowed an hour is not silent after 10 minutes.
    p = DetectorPipeline(lambda: REGISTRY)
    reports = [T0 + 10.0 * k for k in range(1, 100)]
    (silent,) = run(p, "W2", reports, reports[-1] + 4000, tick_s=60.0)
    assert silent.ts == reports[-1] + 3600
    # Over learning: a tracker reporting every 15 min but expected every 5 is silent every gap.
    p = DetectorPipeline(lambda: REGISTRY)
    reports = [T0 + 900.0 * k for k in range(1, 25)]
    alerts = run(p, "T2", reports, reports[-1] + 1, tick_s=30.0)
    assert len(alerts) == 23 and {a.details["expected_s"] for a in alerts} == {300}


def test_registry_interval_is_optional_and_still_validated() -> None:
    assert Device(type="monitor").expected_interval_s is None
    assert Device(type="monitor").nominal_interval_s is None  # for the console's "stale"
    assert Device(placement="wrist").nominal_interval_s == 600
    assert Device(type="monitor", expected_interval_s=86_400).nominal_interval_s == 86_400
    assert Device(placement="wrist", expected_interval_s=600).expected_interval_s == 600
    with pytest.raises(ValidationError, match="greater than 0"):
        Device(placement="wrist", expected_interval_s=0)
