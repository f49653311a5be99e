"""A dead letter of the detector stage, end to end: a reading the bridge accepts (telemetry v1
allows it) but a detector cannot use lands on ``readings-rejected`` with ``stage: "detectors"``
and the exact reason, while the good part of the same reading still reaches its consumers.

Real Mosquitto, the session's bridge and detector worker, the Kafka-protocol broker. Own ``seq``
range 9.3M.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from anxin.processes import ProcessGroup
from anxin.services import Endpoints
from tests.kafka_helpers import collect
from tests.mqtt_helpers import mosquitto_pub

PREFIX = "anxin/v1"
SEQ = 9_300_000


def _detector_dead_letter(reading: dict[str, Any], received_at: float, reason: str) -> Any:
    """The whole ``DeadLetter`` the detector stage writes for a part it set aside."""
    return {
        "reason": reason,
        "stage": "detectors",
        "topic": None,
        "device_id": "D071",
        "received_at": received_at,
        "ts": reading["ts"],
        "seq": reading["seq"],
        "partial": True,  # the rest of the reading went on
        "payload": None,
        "payload_encoding": None,
        "payload_bytes": None,
        "payload_truncated": False,
    }


def test_a_part_the_detectors_cannot_use_is_dead_lettered_and_the_rest_goes_on(
    services: Endpoints, pipeline: ProcessGroup
) -> None:
    t0 = round(time.time(), 3)
    seqs = (SEQ + 1, SEQ + 2)
    # 10 Hz passes telemetry v1 (1-2000 Hz) but not the fall detector (20-200 Hz).
    slow_accel = {
        "ts": t0,
        "seq": seqs[0],
        "event": "sos",
        "vitals": {"hr": 72, "spo2": 97, "rr": 26},
        "accel": {"rate": 10, "g": [[0.0, 0.0, 1.0]] * 10},
    }
    # Each value is in its own range, but a systolic below the diastolic is no real pressure.
    impossible_bp = {
        "ts": t0 + 1,
        "seq": seqs[1],
        "event": "sos",
        "vitals": {"sbp": 80, "dbp": 90},
        "location": {"lat": 37.5136, "lon": 122.1204, "acc": 8},
    }
    mosquitto_pub(
        services,
        f"{PREFIX}/devices/D071/telemetry",
        [orjson.dumps(slow_accel), orjson.dumps(impossible_bp)],
    )

    readings = collect(
        services.kafka_bootstrap,
        "readings",
        lambda r: r.get("device_id") == "D071" and r.get("seq") in seqs,
        lambda f: len(f) >= 2,
    )
    assert sorted(r["seq"] for r in readings) == list(seqs)
    assert all("dropped" not in r for r in readings)  # the bridge found nothing wrong
    received = {r["seq"]: r["received_at"] for r in readings}

    rejected = collect(
        services.kafka_bootstrap,
        "readings-rejected",
        lambda r: r.get("device_id") == "D071" and r.get("seq") in seqs,
        lambda f: len(f) >= 2,
    )
    assert sorted(rejected, key=lambda r: r["seq"]) == [
        _detector_dead_letter(slow_accel, received[seqs[0]], "accel: rate 10.0 outside 20..200 Hz"),
        _detector_dead_letter(
            impossible_bp, received[seqs[1]], "vitals: sbp=80.0 not above dbp=90.0"
        ),
    ]

    # The good parts: both SOS presses raise their alerts; the good vitals go on to NEWS2.
    alerts = collect(
        services.kafka_bootstrap,
        "alerts",
        lambda a: a.get("kind") == "sos" and a.get("details", {}).get("seq") in seqs,
        lambda f: len(f) >= 2,
    )
    assert sorted((a["details"]["seq"], a["resident_id"], a["ts"]) for a in alerts) == [
        (seqs[0], "R071", t0),
        (seqs[1], "R071", t0 + 1),
    ]
    # NEWS2 scored the good vitals (rr 26 alone scores 3: a warning) and not the impossible ones.
    (news2,) = collect(
        services.kafka_bootstrap,
        "alerts",
        lambda a: a.get("kind") == "vitals" and a.get("resident_id") == "R071",
        lambda f: len(f) >= 1,
    )
    assert (news2["device_id"], news2["ts"], news2["severity"]) == ("D071", t0, "warning")
    assert news2["details"]["news2"] == 3
