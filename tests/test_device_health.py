"""Device trouble rules: silent, offline, removed, battery low; each raises once and resolves."""

from __future__ import annotations

import json

from detectors.device_health import (
    LEARN_GAPS,
    DeviceHealth,
    DeviceHealthConfig,
    Raise,
    Resolve,
    config_for,
    learned_silence,
)


def rt(h: DeviceHealth) -> DeviceHealth:
    return DeviceHealth.from_state(json.loads(json.dumps(h.to_state())), h.config)


def test_silent_raise_and_resolve() -> None:
    h = DeviceHealth()
    assert h.observe(1000, {"battery": 0.8, "worn": True}) == []
    assert h.check(1600) == []  # exactly 600 s: not yet
    h = rt(h)
    got = h.check(1601)
    assert got == [
        Raise("silent", "warning", 1600, {"last_seen": 1000, "silent_s": 601.0, "expected_s": 600})
    ]
    assert h.check(5000) == []  # one alert
    assert h.observe(5010, {}) == [Resolve("silent", 5010)]
    assert h.check(5020) == []


def test_never_seen_is_not_silent() -> None:
    assert DeviceHealth().check(10**9) == []


def test_offline_after_grace_then_online_resolves() -> None:
    h = DeviceHealth()
    h.observe(0, {})
    assert h.status(10, "offline") == []
    assert h.check(129) == []
    h = rt(h)
    assert h.check(130) == [Raise("offline", "warning", 10, {"offline_since": 10})]
    assert h.check(5000) == []  # offline covers it: no silent alert as well
    assert h.status(6000, "online") == [Resolve("offline", 6000)]
    # reconnected: the silence clock restarts from the reconnection
    assert h.check(6600) == []
    assert [d.reason for d in h.check(6601) if isinstance(d, Raise)] == ["silent"]
    assert h.status(6700, "online") == []  # a retained "online" again is not a reconnection
    assert h.check(6800) == []


def test_brief_offline_is_not_an_alert() -> None:
    h = DeviceHealth()
    h.observe(0, {})
    h.status(10, "offline")
    assert h.status(60, "online") == []
    assert h.check(200) == []


def test_telemetry_clears_offline() -> None:
    h = DeviceHealth()
    h.status(0, "offline")
    assert [d.reason for d in h.check(200)] == ["offline"]
    assert h.observe(300, {}) == [Resolve("offline", 300)]


def test_removed_after_grace_and_resolve() -> None:
    h = DeviceHealth()
    assert h.observe(0, {"worn": False}) == []
    assert h.observe(299, {"worn": False}) == []
    h = rt(h)
    got = h.observe(300, {"worn": False})
    assert got == [Raise("removed", "warning", 0, {"since": 0, "event": False})]
    assert h.observe(310, {"worn": False}) == []
    assert h.observe(320, {"worn": True}) == [Resolve("removed", 320)]


def test_removed_by_timer() -> None:
    h = DeviceHealth()
    h.observe(0, {"worn": False})
    assert [d.reason for d in h.check(300)] == ["removed"]


def test_short_unworn_is_not_an_alert() -> None:
    h = DeviceHealth()
    h.observe(0, {"worn": False})
    assert h.observe(200, {"worn": True}) == []
    assert h.check(700) == []


def test_removed_event_at_once() -> None:
    h = DeviceHealth()
    h.observe(0, {"worn": True})
    got = h.observe(50, {"event": "removed"})
    assert got == [Raise("removed", "warning", 50, {"since": 50, "event": True})]
    assert h.observe(60, {"worn": True}) == [Resolve("removed", 60)]


def test_battery_once_per_discharge() -> None:
    h = DeviceHealth()
    levels = [0.5, 0.2, 0.149, 0.151, 0.148, 0.10, 0.049, 0.03, 0.06, 0.02]
    got = [
        (d.reason, getattr(d, "severity", None))
        for i, b in enumerate(levels)
        for d in h.observe(i, {"battery": b})
    ]
    # 0.151 does not resolve (only a charge above 30 % does): one episode, warning then critical
    assert got == [("battery_low", "warning"), ("battery_low", "critical")]
    h = rt(h)
    assert h.observe(20, {"battery": 0.2}) == []
    assert h.observe(21, {"battery": 0.1}) == []  # not re-armed: no recharge above 30 %
    assert h.observe(22, {"battery": 0.04}) == []
    assert h.observe(23, {"battery": 0.9}) == [Resolve("battery_low", 23)]  # charged: re-armed
    got2 = h.observe(24, {"battery": 0.12})
    assert got2 == [Raise("battery_low", "warning", 24, {"battery": 0.12})]


def test_battery_critical_first_then_no_warning() -> None:
    h = DeviceHealth()
    assert [d.severity for d in h.observe(0, {"battery": 0.03}) if isinstance(d, Raise)] == [
        "critical"
    ]
    assert h.observe(1, {"battery": 0.10}) == []
    assert h.observe(2, {"battery": 0.16}) == []
    assert h.observe(3, {"battery": 0.31}) == [Resolve("battery_low", 3)]
    assert h.observe(4, {"battery": 0.10}) == [Raise("battery_low", "warning", 4, {"battery": 0.1})]


def test_battery_ignores_nonsense() -> None:
    h = DeviceHealth()
    for b in (None, True, "0.1", 1.5, -0.1, float("nan")):
        assert h.observe(0, {"battery": b}) == []
    assert h.battery is None


def test_custom_config_and_small_state() -> None:
    h = DeviceHealth(DeviceHealthConfig(silent_after_s=60, battery_warning=0.3, battery_rearm=0.5))
    assert [d.reason for d in h.observe(0, {"battery": 0.25})] == ["battery_low"]
    assert [d.reason for d in h.check(61)] == ["silent"]
    assert len(json.dumps(h.to_state())) < 200


def test_learned_silence_is_a_high_quantile_between_floor_and_cap() -> None:
    assert learned_silence([900] * 5, 600, 1800) is None  # too few gaps: the default holds
    assert learned_silence([900] * 6, 600, 1800) == 1350
    assert learned_silence([10] * 20, 600, 1800) == 600  # never below the floor
    assert learned_silence([3000] * 20, 600, 1800) == 1800  # never above the cap
    # Two outages among 20 gaps do not teach the device to be silent: the 90th percentile.
    assert learned_silence([60] * 18 + [2400, 3000], 600, 1800) == 600
    # Three in twenty are a pattern, not an outage: learned, up to the cap.
    assert learned_silence([60] * 17 + [800, 800, 3000], 600, 1800) == 1200


def test_a_device_keeps_only_its_last_gaps_and_a_small_state() -> None:
    h = DeviceHealth()
    for k in range(200):
        h.observe(900.0 * k, {"battery": 0.8})
    assert h.gaps == [900] * LEARN_GAPS and h.silent_after() == 1350
    h = rt(h)
    assert h.silent_after() == 1350 and h.check(199 * 900 + 1350) == []
    assert [d.reason for d in h.check(199 * 900 + 1351)] == ["silent"]
    assert len(json.dumps(h.to_state())) < 400


def test_config_for_the_registry_device() -> None:
    base = DeviceHealthConfig()
    assert config_for(base, "watch", None) == base and config_for(base, None, None) == base
    monitor = config_for(base, "monitor", None)
    assert monitor.silent_after_s is None and not monitor.learn
    assert config_for(base, "monitor", 7200).silent_after_s == 7200
    set_ = config_for(base, "watch", 60)
    assert set_.silent_after_s == 60 and not set_.learn
    h = DeviceHealth(monitor)
    h.observe(0, {})
    h.observe(1800, {})
    assert h.check(10**7) == [] and h.gaps == [] and h.to_state()["after"] is None
