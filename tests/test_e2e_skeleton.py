"""End to end through real Mosquitto, the Kafka-protocol broker and the Faust worker."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from anxin.core.records import AlertRecord
from anxin.processes import ProcessGroup
from anxin.services import Endpoints
from tests.kafka_helpers import collect
from tests.mqtt_helpers import mosquitto_pub

PREFIX = "anxin/v1"


def test_sos_from_mosquitto_pub_reaches_alerts(services: Endpoints, pipeline: ProcessGroup) -> None:
    ts = round(time.time(), 3)
    payload = {
        "ts": ts,
        "seq": 4242,
        "event": "sos",
        "location": {"lat": 37.5136, "lon": 122.1204, "acc": 8},
    }
    mosquitto_pub(services, f"{PREFIX}/devices/W001/telemetry", [orjson.dumps(payload)])

    found = collect(
        services.kafka_bootstrap,
        "alerts",
        match=lambda a: a.get("kind") == "sos" and a.get("details", {}).get("seq") == 4242,
        until=lambda found: len(found) >= 1,
        timeout=60,
    )
    assert len(found) == 1, found
    alert = AlertRecord.model_validate(found[0])  # the DESIGN.md contract, no extra fields
    assert alert.resident_id == "R001"
    assert alert.device_id == "W001"
    assert alert.severity == "critical"
    assert alert.ts == ts
    assert alert.detected_at >= ts


def _bad_payloads(i: int, now: float) -> tuple[str, bytes, str]:
    """The i-th bad message: (device topic id, payload, what is wrong)."""
    kinds: list[tuple[str, bytes, str]] = [
        ("W001", b"{not json", "invalid JSON"),
        ("W001", b'{"ts": "yesterday"}', "ts"),
        ("W002", b'{"ts": NaN, "battery": 0.5}', "NaN"),
        ("W002", b'{"ts": 1767225600, "vitals": {"hr": Infinity}}', "NaN/Infinity"),
        ("P002", b'{"ts": 1767225600, "pad": "' + b"x" * 70_000 + b'"}', "too large"),
        ("P002", b'{"ts": 1767225600, "note": "\xff\xfe\xfa"}', "UTF-8"),
        ("B003", b"[1, 2, 3]", "JSON object"),
        ("B003", b'{"battery": 0.5}', "ts"),
        ("M001", b'{"ts": 12345}', "before 2000"),
        ("M001", orjson.dumps({"ts": now + 10 * 86400}), "future"),
        ("UNKNOWN9", orjson.dumps({"ts": now}), "unknown device"),
        ("ab$cd", orjson.dumps({"ts": now}), "topic"),
        ("x" * 65, orjson.dumps({"ts": now}), "topic"),
        ("W001", b'{"ts": 1767225600, "battery": "full", "worn": "yes"}', "no usable field"),
        ("W001", b"   ", "invalid JSON"),
    ]
    return kinds[i % len(kinds)]


def test_bad_payloads_are_dead_lettered_and_good_ones_all_arrive(
    services: Endpoints, pipeline: ProcessGroup
) -> None:
    t0 = time.time()
    good_devices = ["W001", "W002", "P002", "B003", "M001"]
    by_topic: dict[str, list[bytes]] = {}
    expected_reasons: list[str] = []
    for i in range(100):
        device, payload, reason = _bad_payloads(i, t0)
        by_topic.setdefault(f"{PREFIX}/devices/{device}/telemetry", []).append(payload)
        expected_reasons.append(reason)
        good = {
            "ts": round(t0 - 100 + i, 3),
            "seq": 900_000 + i,
            "battery": 0.8,
            "worn": True,
            "vitals": {"hr": 70 + i % 20, "spo2": 97},
        }
        by_topic.setdefault(f"{PREFIX}/devices/{good_devices[i % 5]}/telemetry", []).append(
            orjson.dumps(good)
        )
    for topic, lines in by_topic.items():
        # -l publishes line by line: payloads must not contain a newline (none here do).
        mosquitto_pub(services, topic, lines)

    readings = collect(
        services.kafka_bootstrap,
        "readings",
        match=lambda r: 900_000 <= r.get("seq", -1) < 900_100,
        until=lambda found: len(found) >= 100,
    )
    rejected = collect(
        services.kafka_bootstrap,
        "readings-rejected",
        match=lambda r: r.get("received_at", 0) >= t0 and r.get("stage") == "ingest",
        until=lambda found: len(found) >= 100,
    )
    assert sorted(r["seq"] for r in readings) == list(range(900_000, 900_100))
    assert all(r["resident_id"] in ("R001", "R002", "R003") for r in readings)
    assert all(r["partial"] is False for r in rejected)
    assert len(rejected) == 100, [r["reason"] for r in rejected]
    reasons = sorted(r["reason"] for r in rejected)
    for needle in set(expected_reasons):
        want = expected_reasons.count(needle)
        got = sum(1 for r in reasons if needle.lower() in r.lower())
        assert got >= want, (needle, want, got, reasons)
    non_utf8 = [r for r in rejected if "UTF-8" in r["reason"]]
    assert non_utf8 and all(r["payload_encoding"] == "base64" for r in non_utf8)
    assert all(r["topic"].startswith(PREFIX) and "payload" in r for r in rejected)


def test_a_bad_field_does_not_discard_the_good_reading(
    services: Endpoints, pipeline: ProcessGroup
) -> None:
    t0 = time.time()
    payload: dict[str, Any] = {
        "ts": round(t0, 3),
        "seq": 777_001,
        "battery": 1.7,  # out of range: dropped
        "vitals": {"hr": 400, "spo2": 96},  # hr impossible: dropped, spo2 kept
        "location": {"lat": 37.51, "lon": 122.12, "acc": 15},
    }
    mosquitto_pub(services, f"{PREFIX}/devices/W002/telemetry", [orjson.dumps(payload)])
    readings = collect(
        services.kafka_bootstrap,
        "readings",
        lambda r: r.get("seq") == 777_001,
        lambda f: len(f) >= 1,
    )
    partial = collect(
        services.kafka_bootstrap,
        "readings-rejected",
        lambda r: (
            r.get("received_at", 0) >= t0
            and r.get("partial") is True
            and r.get("device_id") == "W002"
        ),
        lambda f: len(f) >= 1,
    )
    assert len(readings) == 1
    reading = readings[0]
    assert reading["vitals"] == {"spo2": 96.0}
    assert reading["location"]["acc"] == 15
    assert "battery" not in reading
    assert sorted(reading["dropped"]) == ["battery", "vitals.hr"]
    assert len(partial) == 1
    assert "battery" in partial[0]["reason"] and "vitals.hr" in partial[0]["reason"]


@pytest.mark.parametrize("status", ["online", "offline"])
def test_status_goes_to_device_status(
    services: Endpoints, pipeline: ProcessGroup, status: str
) -> None:
    t0 = time.time()
    mosquitto_pub(services, f"{PREFIX}/devices/P002/status", [status.encode()])
    found = collect(
        services.kafka_bootstrap,
        "device-status",
        lambda r: r.get("device_id") == "P002" and r.get("received_at", 0) >= t0,
        lambda f: len(f) >= 1,
    )
    assert [r["status"] for r in found] == [status]


def test_two_bridges_split_the_load_with_a_shared_subscription(
    services: Endpoints, pipeline: ProcessGroup, run_root
) -> None:
    """Two more bridges on their own prefix, in one share group: each message once, both busy."""
    env = {"ANXIN_MQTT__PREFIX": "anxin-shared/v1", "ANXIN_MQTT__SHARE_GROUP": "ingest"}
    bridges = []
    for name in ("shared-a", "shared-b"):
        ready = run_root / f"{name}.ready"
        child = pipeline.spawn(
            name,
            "ingest",
            "--ready-file",
            str(ready),
            env={**env, "ANXIN_MQTT__CLIENT_ID": f"anxin-{name}"},
        )
        pipeline.wait_until(child, ready.exists)
        bridges.append(child)
    base, t0 = 7_000_000, round(time.time() - 3600, 3)
    lines = [orjson.dumps({"ts": t0 + k, "seq": base + k, "battery": 0.7}) for k in range(400)]
    mosquitto_pub(services, "anxin-shared/v1/devices/W001/telemetry", lines)
    found = collect(
        services.kafka_bootstrap,
        "readings",
        lambda r: base <= r.get("seq", -1) < base + 400,
        lambda f: len(f) >= 400,
    )
    assert sorted(r["seq"] for r in found) == list(range(base, base + 400))  # each exactly once
    shares = []
    for child in bridges:
        pipeline.stop(child)
        line = [x for x in child.log_path.read_text().splitlines() if "bridge stopped" in x][-1]
        shares.append(int(line.split("'readings': ")[1].split(",")[0].split("}")[0]))
    assert sum(shares) == 400 and min(shares) > 0, shares
