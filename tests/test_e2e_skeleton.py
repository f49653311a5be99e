"""End to end through real Mosquitto, the Kafka-protocol broker and the Faust worker."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
import pytest

from anxin.core.records import AlertRecord, DeadLetter
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


TOPIC_REASON = "topic does not match anxin/v1/devices/<id>/telemetry with a valid id"
TS_REASON = "ts: required number of epoch seconds is missing or not a number"
FUTURE = "ts: {:.0f} s in the future"  # seconds ahead of the bridge's receive time


def _bad_payloads(i: int, now: float) -> tuple[str, bytes, str]:
    """The i-th bad message: (device topic id, payload, the exact dead-letter reason)."""
    kinds: list[tuple[str, bytes, str]] = [
        ("W001", b"{not json", "invalid JSON: unexpected character, expected a string key at position 1"),
        ("W001", b'{"ts": "yesterday"}', TS_REASON),
        ("W002", b'{"ts": NaN, "battery": 0.5}', "NaN/Infinity are not valid JSON numbers"),
        ("W002", b'{"ts": 1767225600, "vitals": {"hr": Infinity}}', "NaN/Infinity are not valid JSON numbers"),
        ("P002", b'{"ts": 1767225600, "pad": "' + b"x" * 70_000 + b'"}', "payload too large: 70029 bytes > 65536"),
        ("P002", b'{"ts": 1767225600, "note": "\xff\xfe\xfa"}', "payload is not UTF-8 (byte 28)"),
        ("B003", b"[1, 2, 3]", "payload must be a JSON object, not list"),
        ("B003", b'{"colour": "red"}', TS_REASON),  # without a ts, a battery would flow on
        ("M001", b'{"ts": 12345}', "ts: before 2000-01-01 (device clock not set?)"),
        ("M001", orjson.dumps({"ts": round(now + 10 * 86400, 3)}), FUTURE),
        ("UNKNOWN9", orjson.dumps({"ts": now}), "unknown device: not in the registry"),
        ("ab$cd", orjson.dumps({"ts": now}), TOPIC_REASON),
        ("x" * 65, orjson.dumps({"ts": now}), TOPIC_REASON),
        ("W001", b'{"ts": 1767225600, "battery": "full", "worn": "yes"}',
         "no usable field: battery: Input should be a valid number; "
         "worn: Input should be a valid boolean"),
        ("W001", b"   ", "invalid JSON: input data is empty at position 0"),
    ]  # fmt: skip
    return kinds[i % len(kinds)]


def _expected_dead_letter(topic: str, device: str, payload: bytes, reason: str) -> dict[str, Any]:
    """The whole ``DeadLetter`` the bridge must write for one bad message (but ``received_at``)."""
    kept = payload[:65536]
    try:
        text, encoding = kept.decode(), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(kept).decode(), "base64"
    return {
        "reason": reason,
        "stage": "ingest",
        "topic": topic,
        "device_id": device if reason != TOPIC_REASON else None,
        "ts": None,
        "seq": None,
        "partial": False,
        "payload": text,
        "payload_encoding": encoding,
        "payload_bytes": len(payload),
        "payload_truncated": len(payload) > 65536,
    }


def test_bad_payloads_are_dead_lettered_and_good_ones_all_arrive(
    services: Endpoints, pipeline: ProcessGroup
) -> None:
    t0 = time.time()
    good_devices = ["W001", "W002", "P002", "B003", "M001"]
    by_topic: dict[str, list[bytes]] = {}
    expected: list[dict[str, Any]] = []
    for i in range(100):
        device, payload, reason = _bad_payloads(i, t0)
        topic = f"{PREFIX}/devices/{device}/telemetry"
        by_topic.setdefault(topic, []).append(payload)
        expected.append(_expected_dead_letter(topic, device, payload, reason))
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
    ours = {(e["topic"], e["payload"]) for e in expected}
    rejected = collect(
        services.kafka_bootstrap,
        "readings-rejected",
        match=lambda r: (
            r.get("received_at", 0) >= t0 and (r.get("topic"), r.get("payload")) in ours
        ),
        until=lambda found: len(found) >= 100,
    )
    assert sorted(r["seq"] for r in readings) == list(range(900_000, 900_100))
    assert {r["device_id"]: r["resident_id"] for r in readings} == {
        "W001": "R001", "W002": "R002", "P002": "R002", "B003": "R003", "M001": "R001",
    }  # fmt: skip
    assert all(set(r) == set(DeadLetter.__annotations__) - {"count", "messages"} for r in rejected)
    assert all(t0 <= r["received_at"] <= time.time() for r in rejected)
    got = []
    for r in rejected:
        record = {k: v for k, v in r.items() if k != "received_at"}
        if record["reason"].endswith(" s in the future"):  # how far ahead: from its own clock
            ahead = orjson.loads(r["payload"])["ts"] - r["received_at"]
            assert record["reason"] == FUTURE.format(ahead)
            record["reason"] = FUTURE
        got.append(record)
    key = lambda d: orjson.dumps(d, option=orjson.OPT_SORT_KEYS)  # noqa: E731
    assert sorted(map(key, got)) == sorted(map(key, expected))  # each once, exactly as written


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
    assert [{k: v for k, v in r.items() if k != "received_at"} for r in partial] == [
        {
            "reason": "fields dropped: battery: Input should be less than or equal to 1; "
            "vitals.hr: hr: Input should be less than or equal to 300",
            "stage": "ingest",
            "topic": f"{PREFIX}/devices/W002/telemetry",
            "device_id": "W002",
            "ts": None,
            "seq": None,
            "partial": True,
            "payload": orjson.dumps(payload).decode(),
            "payload_encoding": "utf-8",
            "payload_bytes": len(orjson.dumps(payload)),
            "payload_truncated": False,
        }
    ]
    assert partial[0]["received_at"] == reading["received_at"]


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
        lambda r: r.get("device_id") == "W001" and base <= r.get("seq", -1) < base + 400,
        lambda f: len(f) >= 400,
    )
    assert sorted(r["seq"] for r in found) == list(range(base, base + 400))  # each exactly once
    shares = []
    for child in bridges:
        pipeline.stop(child)
        line = [x for x in child.log_path.read_text().splitlines() if "bridge stopped" in x][-1]
        shares.append(int(line.split("'readings': ")[1].split(",")[0].split("}")[0]))
    assert sum(shares) == 400 and min(shares) > 0, shares
