"""Detectors end to end: real Mosquitto, the Kafka-protocol broker and the Faust worker."""

from __future__ import annotations

import time

import orjson

from anxin.core.records import AlertRecord
from anxin.processes import ProcessGroup
from anxin.services import Endpoints
from tests.fall_signals import physical_fall
from tests.kafka_helpers import collect
from tests.mqtt_helpers import Listener, mosquitto_pub
from tests.signals import chunks

PREFIX = "anxin/v1"


def publish_fall(ep: Endpoints, device: str, t0: float, placement: str) -> float:
    """A simulated backward fall (strong enough to page when unanswered), sent all at once."""
    g, impact = physical_fall(placement)
    lines = [
        orjson.dumps({"ts": ts, "worn": True, "accel": accel}) for ts, accel in chunks(g, 50.0, t0)
    ]
    mosquitto_pub(ep, f"{PREFIX}/devices/{device}/telemetry", lines)
    return t0 + impact


def alerts_where(ep: Endpoints, match, count: int = 1, timeout: float = 60.0) -> list[AlertRecord]:
    found = collect(ep.kafka_bootstrap, "alerts", match, lambda f: len(f) >= count, timeout=timeout)
    return [AlertRecord.model_validate(a) for a in found]


def suspicions_where(ep: Endpoints, match, count: int) -> list[dict]:
    return collect(ep.kafka_bootstrap, "fall-suspicions", match, lambda f: len(f) >= count)


def test_fall_is_a_prompt_ok_cancels_quietly_and_no_answer_pages(
    services: Endpoints, pipeline: ProcessGroup
) -> None:
    commands = Listener(services, f"{PREFIX}/devices/+/commands")
    try:
        # 1. A suspected fall: "are you OK?" on the device, a suspicion record, no alert.
        #    R004's pendant: a 30 s window, time enough to answer on a busy machine.
        impact = publish_fall(services, "Q004", round(time.time() - 20, 3), "pendant")
        check = commands.wait_for(lambda c: c.get("cmd") == "check")
        assert check["timeout_s"] == 30
        sid = check["alert_id"]
        (opened,) = suspicions_where(services, lambda s: s["suspicion_id"] == sid, 1)
        assert opened["outcome"] == "open" and opened["resident_id"] == "R004"
        assert opened["device_id"] == "Q004" and abs(opened["ts"] - impact) < 0.2
        assert opened["details"]["detected_by"] == "accelerometer"

        # 2. The wearer answers "I'm OK": cancelled, the device told so, nobody else.
        mosquitto_pub(
            services,
            f"{PREFIX}/devices/Q004/telemetry",
            [orjson.dumps({"ts": time.time(), "event": "ok"})],
        )
        cancel = commands.wait_for(lambda c: c.get("cmd") == "cancel" and c["alert_id"] == sid)
        assert cancel
        records = suspicions_where(services, lambda s: s["suspicion_id"] == sid, 2)
        assert [(s["outcome"], s["reason"]) for s in records] == [
            ("open", "suspected by the accelerometer"),
            ("cancelled", "wearer pressed I'm OK"),
        ]

        # 3. Another fall on another device, unanswered: after the window (R003: 5 s), a
        #    critical alert.
        publish_fall(services, "G003", round(time.time() - 20, 3), "waist")
        check2 = commands.wait_for(lambda c: c.get("cmd") == "check" and c["alert_id"] != sid)
        (alert,) = alerts_where(services, lambda a: a["alert_id"] == check2["alert_id"])
        assert (alert.kind, alert.severity, alert.device_id) == ("fall", "critical", "G003")
        assert alert.details["confirmed_by"] == "no answer"
        (opened2,) = suspicions_where(
            services,
            lambda s: s["suspicion_id"] == check2["alert_id"] and s["outcome"] == "open",
            1,
        )
        assert alert.detected_at - opened2["detected_at"] >= 5  # the window was waited out
        assert alert.detected_at - alert.ts <= 60
        # Nothing was ever raised for the cancelled one.
        assert (
            collect(
                services.kafka_bootstrap,
                "alerts",
                lambda a: a["alert_id"] == sid,
                lambda f: False,
                timeout=3,
            )
            == []
        )
        assert (
            collect(
                services.kafka_bootstrap,
                "alert-updates",
                lambda u: u.get("alert_id") == sid,
                lambda f: False,
                timeout=3,
            )
            == []
        )
    finally:
        commands.close()


def test_a_rebooted_watch_keeps_its_sos(services: Endpoints, pipeline: ProcessGroup) -> None:
    """Issue 18.1 as reported: seq 1-20, SOS at 21; reboot; seq 1-4, SOS at 5: two alerts."""
    t0 = round(time.time(), 3)
    lines = [orjson.dumps({"ts": t0 + s / 10, "seq": s, "battery": 0.8}) for s in range(1, 21)]
    lines.append(orjson.dumps({"ts": t0 + 2.1, "seq": 21, "event": "sos"}))
    lines += [orjson.dumps({"ts": t0 + 5 + s / 10, "seq": s, "battery": 0.8}) for s in range(1, 5)]
    lines.append(orjson.dumps({"ts": t0 + 5.5, "seq": 5, "event": "sos"}))
    mosquitto_pub(services, f"{PREFIX}/devices/S003/telemetry", lines)
    found = alerts_where(
        services,
        lambda a: a["kind"] == "sos" and a["device_id"] == "S003" and a["ts"] >= t0,
        count=2,
    )
    assert [(a.ts, a.details["seq"]) for a in found] == [(t0 + 2.1, 21), (t0 + 5.5, 5)]


def test_a_watch_whose_clock_is_not_set_still_pages_its_sos(
    services: Endpoints, pipeline: ProcessGroup
) -> None:
    """Restarted with its clock at 1970, the watch presses SOS: the bridge takes the press at
    its arrival time (the ts named in a partial dead letter) and the alert goes out."""
    before = time.time()
    mosquitto_pub(
        services,
        f"{PREFIX}/devices/S003/telemetry",
        [orjson.dumps({"ts": 0, "seq": 9001, "event": "sos"})],
    )
    (alert,) = alerts_where(
        services,
        lambda a: (
            a["kind"] == "sos" and a["device_id"] == "S003" and a["details"].get("seq") == 9001
        ),
    )
    assert before <= alert.ts <= time.time() and alert.severity == "critical"


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
    mosquitto_pub(services, f"{PREFIX}/devices/W081/telemetry", [orjson.dumps(f) for f in fixes])
    (alert,) = alerts_where(
        services, lambda a: a["kind"] == "wander" and a["device_id"] == "W081" and a["ts"] >= t0
    )
    assert alert.resident_id == "R081"
    assert alert.ts == t0 + 10  # the first confident fix outside
    assert alert.details["distance_m"] > 900 and alert.details["fences"] == ["home"]


def test_deteriorating_vitals_raise_news2_alert(
    services: Endpoints, pipeline: ProcessGroup
) -> None:
    t0 = round(time.time(), 3)
    vitals = {"rr": 26, "spo2": 90, "sbp": 95, "hr": 125, "temp": 39.3, "acvpu": "A", "o2": False}
    mosquitto_pub(
        services, f"{PREFIX}/devices/P082/telemetry", [orjson.dumps({"ts": t0, "vitals": vitals})]
    )
    (alert,) = alerts_where(
        services, lambda a: a["kind"] == "vitals" and a["resident_id"] == "R082" and a["ts"] >= t0
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
