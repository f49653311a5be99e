"""Detectors end to end: real Mosquitto, the Kafka-protocol broker and the Faust worker."""

from __future__ import annotations

import time

import orjson

from anxin.core.records import AlertRecord
from anxin.processes import ProcessGroup
from anxin.services import Endpoints
from tests.kafka_helpers import collect
from tests.mqtt_helpers import Listener, mosquitto_pub
from tests.signals import chunks, clear_fall

PREFIX = "anxin/v1"


def publish_fall(ep: Endpoints, device: str, t0: float) -> float:
    g, impact = clear_fall()
    lines = [
        orjson.dumps({"ts": ts, "worn": True, "accel": accel}) for ts, accel in chunks(g, 50.0, t0)
    ]
    mosquitto_pub(ep, f"{PREFIX}/devices/{device}/telemetry", lines)
    return t0 + impact


def alerts_where(ep: Endpoints, match, count: int = 1, timeout: float = 60.0) -> list[AlertRecord]:
    found = collect(ep.kafka_bootstrap, "alerts", match, lambda f: len(f) >= count, timeout=timeout)
    return [AlertRecord.model_validate(a) for a in found]


def test_fall_check_window_ok_cancels_and_silence_upgrades(
    services: Endpoints, pipeline: ProcessGroup
) -> None:
    commands = Listener(services, f"{PREFIX}/devices/+/commands")
    try:
        # 1. A detected fall: warning, then "are you OK?" on the device's command topic.
        impact = publish_fall(services, "B003", round(time.time() - 20, 3))
        check = commands.wait_for(lambda c: c.get("cmd") == "check")
        (warning,) = alerts_where(services, lambda a: a["alert_id"] == check["alert_id"])
        assert warning.kind == "fall" and warning.severity == "warning"
        assert warning.resident_id == "R003" and warning.device_id == "B003"
        assert abs(warning.ts - impact) < 0.2  # impact time from the samples, not arrival
        assert warning.details["detected_by"] == "pipeline" and warning.details["peak_g"] > 4
        assert check["timeout_s"] == 5

        # 2. The wearer answers "I'm OK": the alert is cancelled and the device told so.
        mosquitto_pub(
            services,
            f"{PREFIX}/devices/B003/telemetry",
            [orjson.dumps({"ts": time.time(), "event": "ok"})],
        )
        cancel = commands.wait_for(
            lambda c: c.get("cmd") == "cancel" and c.get("alert_id") == check["alert_id"]
        )
        assert cancel
        updates = collect(
            services.kafka_bootstrap,
            "alert-updates",
            lambda u: u.get("alert_id") == check["alert_id"],
            lambda f: len(f) >= 1,
        )
        assert [u["action"] for u in updates] == ["cancel"]

        # 3. A second fall on another device with no answer becomes critical after the window.
        publish_fall(services, "G003", round(time.time() - 20, 3))
        check2 = commands.wait_for(
            lambda c: c.get("cmd") == "check" and c["alert_id"] != check["alert_id"]
        )
        versions = alerts_where(
            services, lambda a: a["alert_id"] == check2["alert_id"], count=2, timeout=30
        )
        assert [a.severity for a in versions] == ["warning", "critical"]
        assert versions[1].detected_at - versions[0].detected_at >= 5  # the window was waited out
        assert versions[1].details["upgraded"]
        # The cancelled alert was never upgraded.
        first = alerts_where(services, lambda a: a["alert_id"] == check["alert_id"], count=1)
        assert [a.severity for a in first] == ["warning"]
    finally:
        commands.close()


def test_device_fall_event_is_critical_at_once(services: Endpoints, pipeline: ProcessGroup) -> None:
    ts = round(time.time(), 3)
    mosquitto_pub(
        services,
        f"{PREFIX}/devices/S003/telemetry",
        [orjson.dumps({"ts": ts, "seq": 31, "event": "fall"})],
    )
    (alert,) = alerts_where(
        services, lambda a: a["kind"] == "fall" and a["device_id"] == "S003" and a["ts"] == ts
    )
    assert alert.severity == "critical" and alert.details["detected_by"] == "device"


def test_silent_device_alert_fires_with_nothing_arriving(
    services: Endpoints, pipeline: ProcessGroup
) -> None:
    t0 = time.time()
    mosquitto_pub(
        services, f"{PREFIX}/devices/Q004/telemetry", [orjson.dumps({"ts": t0, "battery": 0.9})]
    )
    (silent,) = alerts_where(
        services,
        lambda a: (
            a["device_id"] == "Q004"
            and a["details"].get("reason") == "silent"
            and a["detected_at"] >= t0
        ),
    )
    assert silent.kind == "device" and silent.severity == "warning"
    assert silent.detected_at - t0 >= 3  # the registry expects Q004 every 3 s
    mosquitto_pub(
        services,
        f"{PREFIX}/devices/Q004/telemetry",
        [orjson.dumps({"ts": time.time(), "battery": 0.9})],
    )
    resolved = collect(
        services.kafka_bootstrap,
        "alert-updates",
        lambda u: u.get("alert_id") == silent.alert_id,
        lambda f: len(f) >= 1,
    )
    assert resolved[0]["action"] == "resolve"


def test_wandering_out_of_the_home_fence(services: Endpoints, pipeline: ProcessGroup) -> None:
    t0 = round(time.time() - 30, 3)
    fixes = [  # home circle: 51.5007, -0.1246, radius 100 m; these are about 1.1 km north
        {"ts": t0, "location": {"lat": 51.5007, "lon": -0.1246, "acc": 15}},
        {"ts": t0 + 10, "location": {"lat": 51.5107, "lon": -0.1246, "acc": 15}},
        {"ts": t0 + 20, "location": {"lat": 51.5110, "lon": -0.1247, "acc": 12}},
    ]
    mosquitto_pub(services, f"{PREFIX}/devices/W002/telemetry", [orjson.dumps(f) for f in fixes])
    (alert,) = alerts_where(
        services, lambda a: a["kind"] == "wander" and a["device_id"] == "W002" and a["ts"] >= t0
    )
    assert alert.resident_id == "R002"
    assert alert.ts == t0 + 10  # the first confident fix outside
    assert alert.details["distance_m"] > 900 and alert.details["fences"] == ["home"]


def test_deteriorating_vitals_raise_news2_alert(
    services: Endpoints, pipeline: ProcessGroup
) -> None:
    t0 = round(time.time(), 3)
    vitals = {"rr": 26, "spo2": 90, "sbp": 95, "hr": 125, "temp": 39.3, "acvpu": "A", "o2": False}
    mosquitto_pub(
        services, f"{PREFIX}/devices/P002/telemetry", [orjson.dumps({"ts": t0, "vitals": vitals})]
    )
    (alert,) = alerts_where(
        services, lambda a: a["kind"] == "vitals" and a["resident_id"] == "R002" and a["ts"] >= t0
    )
    assert alert.severity == "critical"
    # rr 26 → 3, spo2 90 (scale 1) → 3, sbp 95 → 2, hr 125 → 2, temp 39.3 → 2, alert 0, air 0
    assert alert.details["news2"] == 12
    assert alert.details["scores"] == {
        "rr": 3,
        "spo2": 3,
        "o2": 0,
        "sbp": 2,
        "hr": 2,
        "acvpu": 0,
        "temp": 2,
    }
