"""Bad input through the real bridge: 10,500 malformed messages mixed with 4,500 good ones.

A bridge of its own (own MQTT prefix on the session's Mosquitto, own registry, own Kafka topics,
throttle off) so that every record on its topics is this test's and can be counted exactly:
every bad message is on the dead-letter topic once, with the reason its kind calls for; every
good one is on the readings topic once; messages with an unknown field are both (the reading
flows on, the field is dead-lettered as ``partial``); the bridge is alive and answers afterwards.
"""

from __future__ import annotations

import base64
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest

from anxin.services import Endpoints
from tests.bridge_helpers import PrivateBridge, private_bridge
from tests.kafka_helpers import collect

REGISTRY = """
residents:
  R801:
    name: Fuzz Resident One
    timezone: UTC
    devices:
      F801: {placement: wrist}
      F802: {placement: pendant}
  R802:
    name: Fuzz Resident Two
    timezone: UTC
    devices:
      F803: {placement: waist}
      F804: {type: monitor}
"""
GOOD_DEVICES = ["F801", "F802", "F803", "F804"]
N_BAD, N_GOOD, N_PARTIAL = 10_500, 4_000, 500
SEQ0 = 8_000_000
MARK = re.compile(rb"fz:(\d+);")


@pytest.fixture(scope="module")
def fuzz_bridge(services: Endpoints, anxin_env: dict[str, str]) -> Iterator[PrivateBridge]:
    env = {"ANXIN_INGEST__RATE_PER_S": "0"}  # content, not rate
    with private_bridge(anxin_env, "fuzz", REGISTRY, env) as bridge:
        yield bridge


# -- the messages -------------------------------------------------------------------------------
# A bad kind: (device id in the topic, "telemetry"/"status", payload maker, needle of the reason).
BadKind = tuple[str, str, Callable[[int, float, random.Random], bytes], str]


def _pad(i: int, size: int) -> bytes:
    head = b'{"m": "fz:%d;", "pad": "' % i
    return head + b"x" * (size - len(head) - 2) + b'"}'


BAD_KINDS: list[BadKind] = [
    ("F801", "telemetry", lambda i, now, r: b'{"ts": fz:%d; ' % i, "invalid JSON"),
    ("F801", "telemetry", lambda i, now, r: b"fz:%d;" % i, "invalid JSON"),
    ("F802", "telemetry", lambda i, now, r: b'{"ts": "fz:%d;"}' % i, "ts:"),
    ("F802", "telemetry", lambda i, now, r: b'{"seq": 1, "m": "fz:%d;"}' % i, "ts:"),
    ("F802", "telemetry", lambda i, now, r: b'{"ts": true, "m": "fz:%d;"}' % i, "ts:"),
    ("F803", "telemetry", lambda i, now, r: b'{"ts": NaN, "m": "fz:%d;"}' % i, "NaN/Infinity"),
    (
        "F803",
        "telemetry",
        lambda i, now, r: b'{"ts": 1767225600, "vitals": {"hr": -Infinity}, "m": "fz:%d;"}' % i,
        "NaN/Infinity",
    ),
    ("F803", "telemetry", lambda i, now, r: b'{"ts": 1e400, "m": "fz:%d;"}' % i, "invalid JSON"),
    ("F804", "telemetry", lambda i, now, r: _pad(i, r.randint(65_537, 120_000)), "too large"),
    (
        "F804",
        "telemetry",
        lambda i, now, r: b'{"ts": 1767225600, "m": "fz:%d;\xff\xfe\xc3("}' % i,
        "not UTF-8",
    ),
    ("F804", "telemetry", lambda i, now, r: b'["fz:%d;", 1, 2]' % i, "JSON object"),
    ("F801", "telemetry", lambda i, now, r: b'{"ts": 12345, "m": "fz:%d;"}' % i, "before 2000"),
    (
        "F801",
        "telemetry",
        lambda i, now, r: b'{"ts": 946684799.9, "m": "fz:%d;"}' % i,
        "before 2000",
    ),
    (
        "F802",
        "telemetry",
        lambda i, now, r: orjson.dumps({"ts": now + r.uniform(7200, 1e9), "m": f"fz:{i};"}),
        "in the future",
    ),
    ("ab$cd", "telemetry", lambda i, now, r: orjson.dumps({"ts": now, "m": f"fz:{i};"}), "topic"),
    ("x" * 65, "telemetry", lambda i, now, r: orjson.dumps({"ts": now, "m": f"fz:{i};"}), "topic"),
    ("a b", "telemetry", lambda i, now, r: orjson.dumps({"ts": now, "m": f"fz:{i};"}), "topic"),
    (
        "F899",
        "telemetry",
        lambda i, now, r: orjson.dumps({"ts": now, "seq": 1, "m": f"fz:{i};"}),
        "unknown device",
    ),
    (
        "F803",
        "telemetry",
        lambda i, now, r: orjson.dumps({"ts": now, "battery": f"fz:{i};", "worn": 1}),
        "no usable field",
    ),
    (
        "F803",
        "telemetry",
        lambda i, now, r: orjson.dumps(
            {"ts": now, "seq": -1, "vitals": [f"fz:{i};"], "accel": {"rate": 50, "g": [[0, 0]]}}
        ),
        "no usable field",
    ),
    (
        "F804",
        "telemetry",
        lambda i, now, r: b'{"m": "fz:%d;", "ts": 1767225600, "v": ' % i + b"[" * 3000,
        "invalid JSON",
    ),
    ("F804", "status", lambda i, now, r: b"fz:%d; dead" % i, "status must be"),
    ("F801", "status", lambda i, now, r: b"\xff fz:%d;" % i, "not UTF-8"),
]


def _good(i: int, now: float, r: random.Random) -> dict[str, Any]:
    msg: dict[str, Any] = {"ts": round(now - r.uniform(0, 3600), 3), "seq": SEQ0 + i}
    if r.random() < 0.8:
        msg["battery"] = round(r.uniform(0, 1), 3)
    if r.random() < 0.5:
        msg["worn"] = r.random() < 0.9
    if r.random() < 0.5:
        msg["vitals"] = {"hr": r.randint(40, 140), "spo2": r.randint(85, 100)}
    if r.random() < 0.3:
        msg["location"] = {"lat": r.uniform(-90, 90), "lon": r.uniform(-180, 180)}
    if r.random() < 0.3:
        msg["accel"] = {"rate": 50, "g": [[r.uniform(-4, 4) for _ in range(3)] for _ in range(5)]}
    return msg


@dataclass
class Plan:
    messages: list[tuple[str, bytes]]  # (topic, payload) in publish order
    bad: dict[int, str]  # marker -> needle of the expected reason
    good: set[int]  # seq of every message that must reach readings
    partial: dict[int, int]  # marker -> seq: reading and a partial dead letter


def make_plan(prefix: str, now: float, seed: int = 8) -> Plan:
    r = random.Random(seed)
    messages: list[tuple[str, bytes]] = []
    bad: dict[int, str] = {}
    for i in range(N_BAD):
        device, kind, make, needle = BAD_KINDS[i % len(BAD_KINDS)]
        huge = needle == "too large" and i % 200 == 8  # a few near the broker's 1 MiB limit
        payload = _pad(i, 900_000) if huge else make(i, now, r)
        assert MARK.search(payload), (device, needle)
        messages.append((f"{prefix}/devices/{device}/{kind}", payload))
        bad[i] = needle
    good: set[int] = set()
    for i in range(N_GOOD):
        messages.append(
            (f"{prefix}/devices/{GOOD_DEVICES[i % 4]}/telemetry", orjson.dumps(_good(i, now, r)))
        )
        good.add(SEQ0 + i)
    partial: dict[int, int] = {}
    for k in range(N_PARTIAL):
        i, mark = N_GOOD + k, N_BAD + k
        msg = _good(i, now, r)
        msg["battery"] = 0.5
        msg[r.choice(["colour", "note", "\u0000", "ts2", "x" * 300])] = f"fz:{mark};"
        messages.append((f"{prefix}/devices/{GOOD_DEVICES[i % 4]}/telemetry", orjson.dumps(msg)))
        good.add(SEQ0 + i)
        partial[mark] = SEQ0 + i
    r.shuffle(messages)
    return Plan(messages, bad, good, partial)


def publish_all(ep: Endpoints, messages: list[tuple[str, bytes]]) -> None:
    """One paho client at QoS 1; returns once the broker acknowledged every message."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"fuzzer-{uuid.uuid4().hex[:6]}"
    )
    client.max_inflight_messages_set(500)
    acked: set[int] = set()
    client.on_publish = lambda c, u, mid, rc, p: acked.add(mid)
    client.connect(ep.host, ep.mqtt_port)
    client.loop_start()
    try:
        mids = {client.publish(topic, payload, qos=1).mid for topic, payload in messages}
        deadline = time.monotonic() + 120
        while not mids <= acked and time.monotonic() < deadline:
            time.sleep(0.05)  # polling paho's acknowledgement set, not waiting for readiness
        assert mids <= acked, f"{len(mids - acked)} publishes never acknowledged"
    finally:
        client.disconnect()
        client.loop_stop()


def _marker(record: dict[str, Any]) -> int | None:
    raw = record["payload"].encode()
    if record["payload_encoding"] == "base64":
        raw = base64.b64decode(raw)
    found = MARK.search(raw)
    return int(found.group(1)) if found else None


def test_fuzz_run_through_the_real_bridge(services: Endpoints, fuzz_bridge: PrivateBridge) -> None:
    fb = fuzz_bridge
    plan = make_plan(fb.prefix, time.time())
    n_in = len(plan.messages)
    t_start = time.monotonic()
    publish_all(services, plan.messages)
    t_published = time.monotonic()

    readings = collect(
        fb.bootstrap, fb.readings, lambda r: True, lambda f: len(f) >= len(plan.good), timeout=180
    )
    want_rejected = len(plan.bad) + len(plan.partial)
    rejected = collect(
        fb.bootstrap, fb.rejected, lambda r: True, lambda f: len(f) >= want_rejected, timeout=180
    )
    t_done = time.monotonic()

    # Good: each once on readings, nothing else there.
    seqs = Counter(r["seq"] for r in readings)
    assert set(seqs) == plan.good, (len(plan.good - set(seqs)), len(set(seqs) - plan.good))
    assert max(seqs.values()) == 1, "duplicated readings"
    assert {r["device_id"] for r in readings} <= set(GOOD_DEVICES)
    assert all(isinstance(r["ts"], float) and r["ts"] == r["ts"] for r in readings)

    # Bad: each once on the dead-letter topic, with the reason of its kind.
    marks = Counter(_marker(r) for r in rejected)
    assert None not in marks, [r for r in rejected if _marker(r) is None][:3]
    assert set(marks) == set(plan.bad) | set(plan.partial)
    assert max(marks.values()) == 1, "duplicated dead letters"
    wrong = []
    for record in rejected:
        mark = _marker(record)
        assert mark is not None
        if mark in plan.partial:
            ok = record["partial"] is True and "unknown field" in record["reason"]
        else:
            ok = record["partial"] is False and plan.bad[mark].lower() in record["reason"].lower()
        if not ok:
            wrong.append((plan.bad.get(mark, "partial"), record["reason"]))
    assert not wrong, wrong[:10]
    huge = [r for r in rejected if r["payload_bytes"] > 65_536]
    assert huge and all(r["payload_truncated"] for r in huge)
    assert all(len(r["payload"]) <= 4 * 65_536 // 3 + 4 for r in rejected)

    # Still alive and answering: one more good message goes through.
    assert fb.child.alive()
    late = SEQ0 + 99_999
    publish_all(
        services,
        [(f"{fb.prefix}/devices/F801/telemetry", orjson.dumps({"ts": time.time(), "seq": late}))],
    )
    assert collect(fb.bootstrap, fb.readings, lambda r: r["seq"] == late, lambda f: bool(f))
    log = fb.child.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    print(
        f"fuzz: {n_in} in ({len(plan.bad)} bad, {len(plan.good) - len(plan.partial)} good, "
        f"{len(plan.partial)} good with an unknown field); out: {len(readings)} readings, "
        f"{len(rejected)} dead letters ({sum(1 for r in rejected if r['partial'])} partial); "
        f"published in {t_published - t_start:.1f} s, all out after {t_done - t_start:.1f} s"
    )
