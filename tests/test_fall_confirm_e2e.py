"""Fall confirmation end to end (issue 15.1): mosquitto_pub → bridge → Kafka → Faust detector
worker → ``fall-suspicions`` / ``alerts`` → the alerts worker (PostgreSQL, Twilio mock).

A suspected fall whose wearer walks away reaches nobody: no alert record, no notification row.
One whose wearer lies still reaches the duty nurse's phone within 60 s of the impact (measured
on the record, ``detected_at - ts``, not on the test's clock). Both on R002's pendant (a 30 s
window). Signals: a simulated backward fall (tests/fall_signals.py), then 12 s of walking or
20 s of lying still.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from alerts.db import Database
from alerts.lifecycle import Lifecycle
from alerts.testing import TwilioRecorder
from anxin.processes import ProcessGroup
from anxin.services import Endpoints
from tests.fall_signals import physical_fall, walking
from tests.kafka_helpers import collect
from tests.mqtt_helpers import mosquitto_pub
from tests.signals import chunks
from tests.test_alerts_worker import T0, AlertsWorker

DEVICE, RESIDENT = "P002", "R002"
RATE = 50.0
NURSE = "nurse-li"  # on duty at the worker's clock T0 (08:00 in Shanghai)


@pytest.fixture
def worker(
    services: Endpoints, pipeline: ProcessGroup, anxin_env: dict[str, str], run_root: Path
) -> Iterator[AlertsWorker]:
    folder = run_root / f"fall-confirm-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    twilio = TwilioRecorder(services.twilio_url).start()
    group = ProcessGroup(folder, env=anxin_env)
    try:
        w = AlertsWorker(group, services, twilio, folder)
        w.start()
        isolate(w, services.kafka_bootstrap)
        yield w
    finally:
        group.stop()
        twilio.stop()


def produce(bootstrap: str, key: str, value: dict[str, Any]) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait("alerts", orjson.dumps(value), key=key.encode())
        finally:
            await producer.stop()

    asyncio.run(go())


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``check`` until truthy (a probe of an observable condition, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def isolate(w: AlertsWorker, bootstrap: str) -> None:
    """The fresh database took in every earlier alert of the session: once a marker on R002's
    partition is in, close them all, so an open fall of R002 cannot absorb ours."""
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    produce(
        bootstrap,
        RESIDENT,
        {
            "alert_id": marker,
            "kind": "device",
            "severity": "warning",
            "resident_id": RESIDENT,
            "device_id": DEVICE,
            "ts": T0,
            "detected_at": T0,
            "details": {"reason": "marker"},
        },
    )
    wait_for(
        "the marker",
        lambda: w.rows("select 1 from alert_sources where source_alert_id = %s", marker),
    )
    lc = Lifecycle(Database(w.dsn), w.clock)
    for r in w.rows(
        "select alert_id from alerts where state in ('open', 'notifying', 'acknowledged')"
    ):
        lc.cancel(r["alert_id"], "detector:test", "detector", "test isolation")


def publish(ep: Endpoints, g: np.ndarray, impact_s: float, ago_s: float = 0.0) -> float:
    """``g`` sent as 1 s chunks ending ``ago_s`` before now; returns the impact time."""
    t0 = round(time.time() - ago_s - len(g) / RATE, 3)
    lines = [orjson.dumps({"ts": ts, "worn": True, "accel": a}) for ts, a in chunks(g, RATE, t0)]
    mosquitto_pub(ep, f"anxin/v1/devices/{DEVICE}/telemetry", lines)
    return t0 + impact_s


def suspicions_of(ep: Endpoints, impact: float, count: int) -> list[dict[str, Any]]:
    return collect(
        ep.kafka_bootstrap,
        "fall-suspicions",
        lambda s: s["device_id"] == DEVICE and abs(s["ts"] - impact) < 0.5,
        lambda found: len(found) >= count,
    )


def test_walking_away_reaches_nobody_lying_still_reaches_the_nurse(
    services: Endpoints, worker: AlertsWorker
) -> None:
    w = worker
    # 1. Falls, then walks away: prompted, then cancelled quietly. A minute ago, so that the
    #    second fall below is another episode (falls within 30 s of each other are one).
    g, impact_s = physical_fall("pendant")
    walked = publish(services, np.vstack([g, walking(12.0)]), impact_s, ago_s=60.0)
    first = suspicions_of(services, walked, 2)
    assert [(s["outcome"], s["reason"]) for s in first] == [
        ("open", "suspected by the accelerometer"),
        ("cancelled", "up and about"),
    ]
    walked_id = first[0]["suspicion_id"]
    assert first[0]["resident_id"] == RESIDENT and first[0]["details"]["probability"] > 0

    # 2. Falls again, and lies still.
    lay = publish(services, *physical_fall("pendant", lying_s=20.0))
    second = suspicions_of(services, lay, 2)
    assert [(s["outcome"], s["reason"]) for s in second] == [
        ("open", "suspected by the accelerometer"),
        ("confirmed", "lying still"),
    ]
    lay_id = second[0]["suspicion_id"]
    (alert,) = collect(
        services.kafka_bootstrap,
        "alerts",
        lambda a: a["alert_id"] in (walked_id, lay_id),
        lambda found: len(found) >= 1,
    )
    # The confirmed one only (the walked-away one would come first on R002's partition).
    assert alert["alert_id"] == lay_id
    assert (alert["kind"], alert["severity"], alert["resident_id"]) == (
        "fall",
        "critical",
        RESIDENT,
    )
    assert alert["details"]["detected_by"] == "accelerometer"
    assert alert["details"]["confirmed_by"] == "lying still"
    assert abs(alert["ts"] - lay) < 0.2
    assert alert["detected_at"] - alert["ts"] <= 60  # impact to alert, confirmation included

    # The duty nurse is called and texted for it; nothing exists for the walked-away fall.
    def sent_to_nurse() -> list[str]:
        rows = w.rows(
            "select n.channel from notifications n join alert_sources s using (alert_id)"
            " where s.source_alert_id = %s and n.contact_id = %s and n.state = 'sent'",
            lay_id,
            NURSE,
        )
        return sorted(r["channel"] for r in rows)

    assert wait_for("the nurse's call and SMS", lambda: sent_to_nurse() == ["sms", "voice"])
    assert w.rows("select 1 from alert_sources where source_alert_id = %s", walked_id) == []
    assert w.rows("select 1 from alerts where alert_id = %s", walked_id) == []
